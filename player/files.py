"""Files the player keeps whole across a power cut: each replaced by a temporary file, fsynced, then renamed."""

from __future__ import annotations

import os
from pathlib import Path


def replace_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new one, never a part."""
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


__all__ = ["replace_atomically"]
