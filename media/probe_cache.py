"""ffprobe's findings kept by content (sha256), in the user's cache directory: a what-if plan from files
(`signage plan --fleet --campaigns`) probes each media file once, not on every run, and again when it changes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from campaigns.kinds import MediaKind
from media.probe import ProbeResult, probe
from media.store import sha256_of
from signage.private_files import private_directory, write_private

log = logging.getLogger("signage")

CACHE_SCHEMA = "signage.probe-cache/1"


def default_cache_path() -> Path:
    """$XDG_CACHE_HOME/signage/probe.json, ~/.cache/signage/probe.json when XDG_CACHE_HOME is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "signage" / "probe.json"


class ProbeCache:
    """`probe()` answers from the cache when a file's content was probed before, else asks ffprobe and keeps the
    answer; `save()` writes what was added (0600, in a 0700 directory). A refusal (Invalid) is not kept."""

    def __init__(self, path: Path, ask: Callable[[Path], ProbeResult] = probe) -> None:
        self.path = path
        self._ask = ask
        self._results = self._load()
        self._asked = 0
        self._unsaved = False
        self._contents: dict[Path, tuple[str, int]] = {}

    @property
    def probed(self) -> int:
        """How many files this cache has asked ffprobe about."""
        return self._asked

    def content(self, path: Path) -> tuple[str, int]:
        """The file's sha256 and size, read once per cache."""
        path = path.resolve()
        if path not in self._contents:
            self._contents[path] = (sha256_of(path), path.stat().st_size)
        return self._contents[path]

    def probe(self, path: Path) -> ProbeResult:
        sha, _ = self.content(path)
        result = self._results.get(sha)
        if result is None:
            result = self._results[sha] = self._ask(path)
            self._asked += 1
            self._unsaved = True
        return result

    def save(self) -> None:
        """Writes the cache if it gained anything; a cache that cannot be written is said, not fatal."""
        if not self._unsaved:
            return
        document = {"schema": CACHE_SCHEMA,
                    "results": {sha: dataclasses.asdict(r) for sha, r in sorted(self._results.items())}}
        try:
            private_directory(self.path.parent)
            write_private(self.path, json.dumps(document, indent=1))
        except OSError as exc:
            log.warning("the probe cache %s was not written (%s): media will be probed again next time",
                        self.path, exc)
        self._unsaved = False

    def _load(self) -> dict[str, ProbeResult]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the probe cache %s is unreadable (%s): starting it again", self.path, exc)
            return {}
        results = {}
        if isinstance(document, dict) and document.get("schema") == CACHE_SCHEMA:
            for sha, fields in (document.get("results") or {}).items():
                try:
                    results[sha] = ProbeResult(**{**fields, "kind": MediaKind(fields["kind"])})
                except (TypeError, ValueError, KeyError):
                    continue  # an entry of another version: probed again when needed
        return results


__all__ = ["CACHE_SCHEMA", "ProbeCache", "default_cache_path"]
