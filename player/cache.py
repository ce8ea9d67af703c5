"""The player's media cache (issue 5 item 3): every file the plan needs, fetched ahead of time, verified.

Layout under `root`: ready files at `ab/<sha256>` (like the server's store), downloads in progress at
`partial/<sha256>.part`. A file reaches its ready place only by an atomic `os.replace` after its sha256 was
checked over the whole file, so whatever sits at a ready path is complete and right, also after a power cut.

Downloads use the server's GET /media/{sha256} (docs/design.md §3 media table: `{server_url}{url}`) with HTTP Basic
`player_id:secret`. A partial file is resumed with `Range: bytes=N-`, without `If-Range`: the URL names the
content by its sha256, so what it serves never changes (and the whole file's sha256 is checked at the end). That
keeps resumes working behind nginx's X-Accel-Redirect, whose ETag is nginx's own (docs/deploy.md). A 200 instead
of a 206 means the server sends the whole file, so the partial starts over.
Redirects are not followed (the credentials go to the configured server only); proxies from the environment
(`http_proxy`, `no_proxy`) are honoured, as urllib does.

Failures and retries. Every failed item gets a retry time from the injected clock: 2 s doubling per
consecutive failure up to 10 min, with "equal jitter" (the delay drawn uniformly from [d/2, d]) so a fleet that
lost its server does not come back in step. `sync` skips items whose retry time is in the future. Not
retryable (`DownloadFailed.retryable` False, `SyncReport.fatal`): 401 and 403 (the server refuses this player's
credentials: re-register it and install the new config) and the other 4xx that say the request itself is
wrong (400, 405, 410, 422, ...), and a media entry the cache cannot use (bad sha256 or url). Those are not
tried again until `sync(..., ignore_backoff=True)` (the `sync_now` command) or a restart. Retryable: network
errors and timeouts, 5xx, 404 (the server may get its file back), 408, 409, 425, 429, a sha256 mismatch
(`CorruptMedia`: the server's file may be repaired) and a full disk (which, for a download, starts
`DISK_RESERVE_BYTES` before the disk is really full: that room is the journal's).

Eviction. Files that no plan needs (not in the plan's media, not playing) are deleted, oldest first (by the time
they were stored), partial downloads before ready files, only while the cache's disk use (ready and partial
files) plus the bytes still to download is over `budget_bytes`: before the downloads of a pass, to make room,
and again after them. A file in `playing` is never deleted, moved or rewritten.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import http.client
import json
import logging
import os
import random
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from pydantic import ValidationError

from signage.clock import Clock
from signage.protocol import MediaEntry

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"[0-9a-f]{64}")
CONTENT_RANGE_RE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")
CHUNK = 64 * 1024
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)
RETRYABLE_4XX = frozenset({404, 408, 409, 425, 429})
DISK_FULL = "disk full"
# Room a download never takes: the journal and the plan share the cache's disk, and a play that cannot be journaled
# is proof-of-play lost. A download that would eat into it stops as a full disk (its partial file kept).
DISK_RESERVE_BYTES = 32 << 20
PARTIAL_DIR = "partial"
PARTIAL_SUFFIX = ".part"


def retryable_status(status: int) -> bool:
    """Whether asking again later with the same request and credentials may succeed."""
    return not (400 <= status < 500) or status in RETRYABLE_4XX


class CacheError(Exception):
    def __init__(self, sha256: str, reason: str, *, retryable: bool) -> None:
        super().__init__(f"media {sha256}: {reason}")
        self.sha256 = sha256
        self.reason = reason
        self.retryable = retryable


class DownloadFailed(CacheError):
    """The download did not complete; `status` is the HTTP status when the server answered one."""

    def __init__(self, sha256: str, status: int | None, detail: str, *, retryable: bool = True) -> None:
        reason = f"HTTP {status}: {detail}" if status is not None else detail
        super().__init__(sha256, reason, retryable=retryable)
        self.status = status
        self.detail = detail


class CorruptMedia(CacheError):
    """The downloaded file's sha256 is not its name: nothing was stored and the partial file is gone."""

    def __init__(self, sha256: str, got: str) -> None:
        super().__init__(sha256, f"the downloaded file's sha256 is {got}, not {sha256}: the server's copy is "
                                 "damaged or was replaced; an operator should import its campaign file again",
                         retryable=True)
        self.got = got


class CacheCounts(NamedTuple):
    """For the status message: plan media ready and missing, and the cache's bytes on disk (ready and partial)."""

    ready: int
    missing: int
    bytes: int


@dataclass
class SyncReport:
    downloaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sha -> reason, for items tried and failed this pass
    corrupt: set[str] = field(default_factory=set)  # those of `failed` whose sha256 did not match
    evicted: list[str] = field(default_factory=list)
    deferred: dict[str, datetime | None] = field(default_factory=dict)  # not tried: retry time (None: not retried
    # until ignore_backoff)
    fatal: set[str] = field(default_factory=set)  # those of `failed` that retrying cannot fix
    over_budget: bool = False  # still over budget_bytes after evicting everything allowed


@dataclass
class _Failure:
    attempts: int
    retry_at: datetime | None  # None: not retryable
    reason: str


class _StartOver(Exception):
    """The partial file cannot be resumed (a 416, or a range the server did not align): fetch it whole."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # the HTTPError of the 3xx reaches the caller


def _open_for_append(path: Path) -> BinaryIO:
    # Unbuffered: every write is one write(2), so an ENOSPC leaves exactly the bytes written before it.
    return open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the caller's `with`


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or SHA256_RE.fullmatch(sha256) is None:
        raise ValueError(f"{sha256!r} is not a media id: a sha256 in 64 lowercase hex characters")
    return sha256


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _problem_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(4096)
    except (OSError, http.client.HTTPException):
        body = b""
    finally:
        exc.close()
    try:
        detail = json.loads(body).get("detail")
        if isinstance(detail, str) and detail:
            return detail
    except (ValueError, AttributeError):
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or str(exc.reason)


class MediaCache:
    """The media cache at `root` for one player, fetching from `server_url` as `player_id` with `secret`.

    `clock` drives the retry times. `rng` draws the jitter (pass `random.Random(seed)` for repeatable runs).
    `open_partial(path)` opens a partial file for appending, unbuffered; it is a seam for tests only (e.g. a
    function opening /dev/full, to meet a full disk) and defaults to `open(path, "ab", buffering=0)`.
    Downloads leave `reserve_bytes` free on the cache's disk (for the journal beside it): short of that, they
    stop as on a full disk.
    One pass at a time: `sync` and `download` hold a lock; `path_for` and `figures` may be called meanwhile.
    """

    def __init__(self, root: Path, server_url: str, player_id: str, secret: str, budget_bytes: int, clock: Clock,
                 timeout_s: float = 30, *, rng: random.Random | None = None,
                 open_partial: Callable[[Path], BinaryIO] = _open_for_append,
                 reserve_bytes: int = DISK_RESERVE_BYTES) -> None:
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server_url must start with http:// or https://, not {server_url!r}")
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes cannot be negative ({budget_bytes})")
        self.root = Path(root)
        self.server_url = server_url.rstrip("/")
        self.player_id = player_id
        self.budget_bytes = budget_bytes
        self.clock = clock
        self.timeout_s = timeout_s
        self._authorization = "Basic " + base64.b64encode(f"{player_id}:{secret}".encode()).decode("ascii")
        self._rng = rng or random.Random()
        self._open_partial = open_partial
        self.reserve_bytes = reserve_bytes
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._lock = threading.RLock()
        self._failures: dict[str, _Failure] = {}
        (self.root / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)

    # -- where files are ------------------------------------------------------------------------------------

    def _ready_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _partial_path(self, sha256: str) -> Path:
        return self.root / PARTIAL_DIR / f"{sha256}{PARTIAL_SUFFIX}"

    def path_for(self, sha256: str) -> Path | None:
        """The verified file for `sha256`, or None when it is not (yet) in the cache."""
        path = self._ready_path(_check_sha(sha256))
        return path if path.is_file() else None

    def _files(self) -> Iterable[tuple[str, Path, bool]]:
        """(sha256, path, is_partial) of every file the cache holds."""
        for folder in self.root.iterdir():
            if folder.name == PARTIAL_DIR:
                for path in folder.glob(f"*{PARTIAL_SUFFIX}"):
                    sha = path.name.removesuffix(PARTIAL_SUFFIX)
                    if SHA256_RE.fullmatch(sha):
                        yield sha, path, True
            elif len(folder.name) == 2 and folder.is_dir():
                for path in folder.iterdir():
                    if SHA256_RE.fullmatch(path.name) and path.name.startswith(folder.name):
                        yield path.name, path, False

    def disk_bytes(self) -> int:
        """Bytes the cache holds on disk: ready files and partial downloads."""
        total = 0
        for _, path, _ in self._files():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def figures(self, media: dict[str, Any]) -> CacheCounts:
        """(ready, missing, bytes): the plan's media items cached and not, and the cache's bytes on disk."""
        ready = sum(1 for sha in media if SHA256_RE.fullmatch(sha) and self._ready_path(sha).is_file())
        return CacheCounts(ready, len(media) - ready, self.disk_bytes())

    # -- downloading ----------------------------------------------------------------------------------------

    def download(self, sha256: str, entry: dict[str, Any] | MediaEntry) -> Path:
        """Fetch one media file (resuming a partial one), verify it and put it in place; returns its path.

        Raises CorruptMedia on a sha256 mismatch (the partial file is deleted, nothing is stored),
        DownloadFailed otherwise (the partial file is kept for the next attempt), ValueError for an
        unusable entry.
        """
        sha = _check_sha(sha256)
        with self._lock:
            ready = self._ready_path(sha)
            if ready.is_file():
                return ready
            try:
                spec = MediaEntry.model_validate(entry)
            except ValidationError as exc:
                raise ValueError(f"the plan's media entry for {sha} is not usable: {exc}") from None
            if not spec.url.startswith("/") or spec.url.startswith("//"):
                raise ValueError(f"the plan's media url {spec.url!r} for {sha} is not a path on the server")
            url = self.server_url + spec.url
            partial = self._partial_path(sha)
            partial.parent.mkdir(parents=True, exist_ok=True)
            # At most two rounds: a resumed download that does not verify (or cannot be resumed) is fetched
            # once more from the start, since the bad bytes may be those of an old partial file.
            for _ in range(2):
                offset = partial.stat().st_size if partial.exists() else 0
                if offset >= spec.bytes and partial.exists():
                    # Left complete by a run that stopped before moving it in place: check it as it is.
                    if offset == spec.bytes and _sha256_of(partial) == sha:
                        return self._place(partial, ready)
                    partial.unlink()
                    offset = 0
                try:
                    started = self._fetch(sha, url, partial, offset, spec.bytes)
                except _StartOver:
                    partial.unlink(missing_ok=True)
                    continue
                got = _sha256_of(partial)
                if got == sha:
                    return self._place(partial, ready)
                partial.unlink(missing_ok=True)
                if started == 0:
                    raise CorruptMedia(sha, got)
                log.warning("media %s resumed from byte %d does not verify; fetching it whole", sha, started)
            raise DownloadFailed(sha, None, "the server would not resume the partial download nor send it whole")

    def _place(self, partial: Path, ready: Path) -> Path:
        ready.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, ready)
        _fsync_dir(ready.parent)
        _fsync_dir(partial.parent)
        return ready

    def _fetch(self, sha: str, url: str, partial: Path, offset: int, expected: int) -> int:
        """Fetch the file from `offset` on into `partial`; returns where the server's answer started (0: whole)."""
        headers = {"Authorization": self._authorization, "Accept-Encoding": "identity",
                   "User-Agent": f"signage-player/{self.player_id}"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            response = self._opener.open(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            detail = _problem_detail(exc)
            if exc.code == 416 and offset:
                raise _StartOver from None
            raise DownloadFailed(sha, exc.code, detail, retryable=retryable_status(exc.code)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadFailed(sha, None, f"cannot fetch {url}: {reason}") from None
        with response:
            if response.status == 206:
                match = CONTENT_RANGE_RE.fullmatch((response.headers.get("Content-Range") or "").strip())
                if match is None or int(match.group(1)) != offset:
                    raise _StartOver
            elif response.status == 200:
                offset = 0  # the whole file: what the partial held is not a prefix of it
                with partial.open("wb"):
                    pass
            else:
                raise DownloadFailed(sha, response.status, "the server answered neither 200 nor 206")
            written = self._receive(sha, response, partial, offset, expected)
        if written < expected:
            raise DownloadFailed(sha, None, f"the server's answer ended after {written} of {expected} bytes; "
                                            "the download resumes from there")
        return offset

    def _receive(self, sha: str, response: Any, partial: Path, offset: int, expected: int) -> int:
        """Append the response's body to the partial file; returns the partial file's size."""
        written = offset
        try:
            with self._open_partial(partial) as sink:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise DownloadFailed(sha, None, f"the download broke off after {written} of {expected} "
                                                        f"bytes ({exc!r}); it resumes from there") from None
                    if not chunk:
                        break
                    if _free_bytes(partial.parent) - len(chunk) < self.reserve_bytes:
                        raise OSError(errno.ENOSPC, f"less than {self.reserve_bytes} bytes would be left free")
                    view = memoryview(chunk)
                    while view:
                        count = sink.write(view)
                        view = view[count:]
                        written += count
                    if written > expected:
                        break  # longer than the plan says: it cannot match; the check below says so
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            if _is_disk_full(exc):
                raise DownloadFailed(sha, None, DISK_FULL) from None
            raise DownloadFailed(sha, None, f"cannot write {partial}: {exc}") from None
        return written

    # -- one pass -------------------------------------------------------------------------------------------

    def sync(self, media: dict[str, dict[str, Any]] | dict[str, MediaEntry], playing: set[str], *,
             ignore_backoff: bool = False) -> SyncReport:
        """Download what `media` (the plan's media table: sha256 -> {url, bytes, mime, duration_ms} as dicts or
        MediaEntry) lacks, then evict what nothing needs while over budget.

        Items waiting out a retry time are skipped (`deferred`) unless `ignore_backoff`. Never raises for one
        item's failure; each goes into the report with its reason.
        """
        with self._lock:
            report = SyncReport()
            keep = set(media) | set(playing)
            missing = [sha for sha in media if not (SHA256_RE.fullmatch(sha) and self._ready_path(sha).is_file())]
            report.evicted += self._evict(keep, self._bytes_to_come(media, missing))
            for sha in missing:
                failure = self._failures.get(sha)
                if failure is not None and not ignore_backoff and (
                        failure.retry_at is None or failure.retry_at > self.clock.now()):
                    report.deferred[sha] = failure.retry_at
                    continue
                try:
                    self.download(sha, media[sha])
                except CacheError as exc:
                    report.failed[sha] = exc.reason
                    if isinstance(exc, CorruptMedia):
                        report.corrupt.add(sha)
                    if not exc.retryable:
                        report.fatal.add(sha)
                    self._failed(sha, exc.reason, retryable=exc.retryable)
                except ValueError as exc:
                    report.failed[sha] = str(exc)
                    report.fatal.add(sha)
                    self._failed(sha, str(exc), retryable=False)
                except OSError as exc:  # the cache's own folders: permissions, a full disk when truncating
                    reason = DISK_FULL if _is_disk_full(exc) else f"cannot write in {self.root}: {exc}"
                    report.failed[sha] = reason
                    self._failed(sha, reason, retryable=True)
                else:
                    report.downloaded.append(sha)
                    self._failures.pop(sha, None)
            report.evicted += self._evict(keep, 0)
            report.over_budget = self.disk_bytes() > self.budget_bytes
            for sha in [sha for sha in self._failures if sha not in media]:
                del self._failures[sha]  # a plan that no longer needs it: start afresh if one needs it again
            return report

    def _failed(self, sha: str, reason: str, *, retryable: bool) -> None:
        previous = self._failures.get(sha)
        attempts = (previous.attempts if previous else 0) + 1
        retry_at = None
        if retryable:
            ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(attempts - 1, 30))
            retry_at = self.clock.now() + ceiling * (0.5 + 0.5 * self._rng.random())
        self._failures[sha] = _Failure(attempts, retry_at, reason)
        log.warning("media %s not cached (attempt %d): %s; %s", sha, attempts, reason,
                    f"next try at {retry_at.isoformat()}" if retry_at else "not retried until sync_now or restart")

    def retry_at(self, sha256: str) -> datetime | None:
        """When a failed item will next be tried (None: not failing, or not retried until ignore_backoff)."""
        failure = self._failures.get(sha256)
        return failure.retry_at if failure else None

    def _bytes_to_come(self, media: dict[str, Any], missing: list[str]) -> int:
        total = 0
        for sha in missing:
            entry = media[sha]
            size = entry.get("bytes") if isinstance(entry, dict) else getattr(entry, "bytes", None)
            if not isinstance(size, int) or not SHA256_RE.fullmatch(sha):
                continue
            partial = self._partial_path(sha)
            total += max(size - (partial.stat().st_size if partial.exists() else 0), 0)
        return total

    def _evict(self, keep: set[str], room: int) -> list[str]:
        """Delete files not in `keep`, partial ones first, then oldest first, while over budget with `room`."""
        files = list(self._files())
        used = 0
        candidates = []
        for sha, path, is_partial in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            used += stat.st_size
            if sha not in keep:
                candidates.append((not is_partial, stat.st_mtime_ns, str(path), sha, path, stat.st_size))
        evicted = []
        for *_, sha, path, size in sorted(candidates):
            if used + room <= self.budget_bytes:
                break
            path.unlink(missing_ok=True)
            used -= size
            evicted.append(sha)
            log.info("evicted media %s (%d bytes) from the cache: no plan needs it", sha, size)
        return evicted


__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "DISK_FULL", "DISK_RESERVE_BYTES", "CacheCounts", "CacheError",
           "CorruptMedia", "DownloadFailed", "MediaCache", "SyncReport", "retryable_status"]
