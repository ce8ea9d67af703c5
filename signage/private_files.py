"""Files only their owner may read: the data directory (0700), the database, keys and secrets in it (0600).

Modes are set explicitly, whatever the process's umask, when the file or directory is made; one found with wider
modes (made by an older version, or copied in) is narrowed with a warning. The standard library only: the player
agent writes its config through `write_private` too.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("signage")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SEARCH_ONLY = 0o011  # group and other may pass through a directory, not list it


def _narrow(path: Path, mode: int, keep: int = 0) -> None:
    """Sets `path` to `mode` if any group or other bit is set beyond those in `keep` (which stay if set; a mode
    kept narrower by its owner stays)."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077 & ~keep:
        narrowed = mode | (current & keep)
        log.warning("%s had mode %04o, readable by other local users; set it to %04o", path, current, narrowed)
        os.chmod(path, narrowed)


def private_directory(path: Path) -> Path:
    """Makes `path` (and missing parents) mode 0700, or narrows it to 0700 (keeping any search bit, 0710 or
    0711) if it exists with wider modes."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode passes through the umask
        return path
    if path.stat().st_mode & stat.S_ISVTX:
        # A shared directory such as /tmp named as the data directory: narrowing it would lock every other user
        # and service out of it. Left alone, and said.
        log.warning("%s is a shared directory (sticky bit): its mode is left alone; give the server a data "
                    "directory of its own", path)
        return path
    # Search bits may stay (0710, 0711): they let nginx, in the server's group, reach the media store's files by
    # name (docs/deploy.md), and Mosquitto's account reach the broker's directory when the broker runs as root
    # (scheduler/broker.py), without listing the directory or reading the database and key, which are 0600.
    _narrow(path, PRIVATE_DIR, keep=SEARCH_ONLY)
    return path


def private_file(path: Path) -> Path:
    """Creates `path` empty with mode 0600 if it does not exist, or narrows it to 0600 if it does."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        _narrow(path, PRIVATE_FILE)
        return path
    try:
        os.fchmod(descriptor, PRIVATE_FILE)
    finally:
        os.close(descriptor)
    return path


def narrow_if_present(path: Path) -> None:
    """Narrows an existing file to 0600 (a database's -wal and -shm files, a key); nothing if it is absent."""
    if path.exists():
        _narrow(path, PRIVATE_FILE)


def write_private(path: Path, content: str | bytes, *, replace: bool = True,
                  owner: tuple[int, int] | None = None) -> None:
    """Replaces `path` in one step by a file of mode 0600 holding `content`: the old file's mode is not kept, and
    a reader never sees half of it. With `replace=False` an existing file is kept and FileExistsError raised (two
    processes making the same key: one wins). `owner` (uid, gid): the account the file is for, when root writes
    it for another (the broker's files for Mosquitto's account)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)  # gone after os.replace; the second name after os.link


__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "narrow_if_present", "private_directory", "private_file", "write_private"]
