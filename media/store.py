"""The content-addressed media store: each file lives once, under its sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

CHUNK = 1 << 20


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{sha256!r} is not a sha256 in lowercase hex")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def add_file(self, source: Path) -> tuple[str, int]:
        """Copy `source` into the store; returns (sha256, size). Adding the same content twice is a no-op."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as src, tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False) as tmp:
            try:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    tmp.write(chunk)
                    size += len(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)
                raise
        sha = digest.hexdigest()
        target = self.path_for(sha)
        if target.exists():
            Path(tmp.name).unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp.name, target)
        return sha, size


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["MediaStore", "sha256_of"]
