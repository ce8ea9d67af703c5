"""Small JPEG previews of videos and images for the library pages, made with ffmpeg.

They live beside the store, never in it: the store holds only files named by their own sha256, which
players fetch. A thumbnail is made at upload and, for media that came another way (a campaign file),
the first time it is asked for.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

from campaigns.kinds import MediaKind
from media.store import SHA256_RE, MediaStore

log = logging.getLogger(__name__)

WIDTH = 320
FFMPEG_SECONDS = 120


class Thumbnails:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def beside(cls, store: MediaStore) -> Thumbnails:
        return cls(store.root.parent / "thumbnails")

    def path_for(self, sha256: str) -> Path:
        if SHA256_RE.fullmatch(sha256) is None:
            raise ValueError(f"{sha256!r} is not a sha256 in lowercase hex")
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def ensure(self, source: Path, sha256: str, kind: MediaKind, duration_ms: int | None) -> Path | None:
        """The thumbnail of the media file `source`, made now if there is none yet; None for audio, or when
        ffmpeg cannot make one (the library shows the item without a picture rather than failing)."""
        if kind is MediaKind.audio:
            return None
        target = self.path_for(sha256)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # A frame a little into a video, past a fade from black; the first and only frame of an image.
        seek = min(1.0, (duration_ms or 0) / 2000) if kind is MediaKind.video else 0.0
        handle, name = tempfile.mkstemp(dir=target.parent, prefix="making-", suffix=".jpg")
        os.close(handle)
        try:
            result = subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-ss", f"{seek:.3f}", "-i", str(source), "-frames:v", "1",
                 "-vf", f"scale='min({WIDTH},iw)':-2", "-q:v", "4", "-update", "1", name],
                capture_output=True, text=True, timeout=FFMPEG_SECONDS, errors="replace",
            )
            if result.returncode != 0 or os.path.getsize(name) == 0:
                log.warning("no thumbnail for %s: ffmpeg says %s", sha256, result.stderr.strip()[-500:])
                return None
            os.replace(name, target)
            return target
        except subprocess.TimeoutExpired:
            log.warning("no thumbnail for %s: ffmpeg took longer than %d s", sha256, FFMPEG_SECONDS)
            return None
        finally:
            Path(name).unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)


__all__ = ["Thumbnails"]
