"""The content-addressed media store: each file lives once, under its sha256.

Files arrive through `incoming()`: written into the store's own tmp directory (same filesystem, so the
final move is an atomic rename) and hashed as they are written, then `adopt()`ed under their sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

CHUNK = 1 << 20
FILE_MODE = 0o640
SHA256_RE = re.compile(r"[0-9a-f]{64}")


class Incoming:
    """A file being written into the store's tmp directory, hashed as it goes."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=directory, prefix="incoming-")
        self.path = Path(name)
        self.size = 0
        self._file = os.fdopen(handle, "wb")
        self._digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Flushes the file to disk and returns its sha256."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self._digest.hexdigest()

    def discard(self) -> None:
        """Removes the file, if it was not adopted into the store; safe to call more than once."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        if SHA256_RE.fullmatch(sha256) is None:
            raise ValueError(f"{sha256!r} is not a sha256 in lowercase hex")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def incoming(self) -> Incoming:
        return Incoming(self.tmp_dir)

    def adopt(self, incoming: Incoming) -> tuple[str, bool]:
        """Moves a finished incoming file under its sha256; returns (sha256, whether the content is new).
        Content already in the store is kept and the incoming copy removed."""
        sha = incoming.finish()
        target = self.path_for(sha)
        if target.exists():
            incoming.discard()
            return sha, False
        target.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp made it 0600; the web server in front (nginx, in the store's group) sends it to players.
        os.chmod(incoming.path, FILE_MODE)
        os.replace(incoming.path, target)
        return sha, True

    def add_file(self, source: Path) -> tuple[str, int]:
        """Copy `source` into the store; returns (sha256, size). Adding the same content twice is a no-op."""
        incoming = self.incoming()
        try:
            with source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    incoming.write(chunk)
            sha, _ = self.adopt(incoming)
        except BaseException:
            incoming.discard()
            raise
        return sha, incoming.size

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["SHA256_RE", "Incoming", "MediaStore", "sha256_of"]
