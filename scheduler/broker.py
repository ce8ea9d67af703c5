"""Mosquitto for the fleet: its config, password file and ACL written from the database, and a supervisor
that runs it, restarts it when it dies and reloads it when players are registered or revoked.

Everything lives in DATA_DIR/broker/: `mosquitto.conf`, `passwords`, `acl`, `server.secret` (the server's
own broker secret) and `persistence/` (retained plans and persistent sessions, kept across restarts).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from scheduler.database import Database
from scheduler.models import PlayerCredential
from scheduler.players import active_credentials, mosquitto_hash, new_secret
from signage.config import Settings
from signage.private_files import write_private
from signage.protocol import TOPIC_ROOT, player_topic

log = logging.getLogger(__name__)
mosquitto_log = logging.getLogger("mosquitto")

SERVER_ACCOUNT = "signage-server"
BROKER_DIR = "broker"
CONFIG_FILE = "mosquitto.conf"
PASSWORD_FILE = "passwords"
ACL_FILE = "acl"
SERVER_SECRET_FILE = "server.secret"
PERSISTENCE_DIR = "persistence"
TLS_CERT_FILE = "tls-cert.pem"
TLS_KEY_FILE = "tls-key.pem"
MOSQUITTO_ACCOUNT = "mosquitto"  # Debian's package makes it; Mosquitto drops to it when started as root

PLAYER_READS = ("plan", "cmd", "ack")
PLAYER_WRITES = ("pop", "status")
# What may appear in a password file or ACL line without changing its meaning (no ':', spaces, '+', '#', '/').
SAFE_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

# Queue and in-flight limits, set on purpose. Mosquitto's default max_queued_messages (1000) silently drops
# QoS 1 messages beyond it for an offline persistent client: a screen on a bus that is away for a day would
# lose acks and commands, and a paused ingest session would lose proof-of-play. 100,000 per client with no
# byte cap keeps them; memory is bounded in practice because plans are retained (one per player), not queued.
MAX_QUEUED_MESSAGES = 100_000
MAX_QUEUED_BYTES = 0  # no byte limit: the message count above is the bound
MAX_INFLIGHT_MESSAGES = 100  # default 20: more in flight keeps acks and batches moving on high-latency 4G links
# A PopBatch holds up to 5,000 records: ~2.5 MiB typically (~520 bytes a record), ~11.4 MiB at the worst the
# protocol allows (255-character ids, 500-character Vietnamese reasons). 16 MiB takes the worst case.
MAX_PACKET_SIZE = 16 * 1024 * 1024
AUTOSAVE_INTERVAL_S = 30  # how much in-memory state a kill -9 can lose; a clean stop saves everything
PERSISTENT_CLIENT_EXPIRATION = "14d"

RUNNING_LINE = re.compile(r"mosquitto version \S+ running")
RELOAD_LINE = "Reloading config."
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0  # a broker that ran this long before dying starts again at the initial backoff

Fingerprint = tuple[Any, ...]
_warned_running_as_root: set[Path] = set()


class BrokerFailed(RuntimeError):
    """Mosquitto could not be started, or did not do what it was asked."""


@dataclass(frozen=True)
class BrokerTls:
    """A TLS listener for players outside the machine (the plain listener stays on settings.broker_host)."""

    certfile: Path
    keyfile: Path
    port: int = 8883
    host: str | None = None  # None: every interface


@dataclass(frozen=True)
class BrokerFiles:
    directory: Path
    config: Path
    passwords: Path
    acl: Path
    persistence: Path
    run_as: str | None  # the `user` Mosquitto runs as when started as root; None when not root
    tls_certfile: Path | None = None  # copies of the TLS files, readable by the account Mosquitto runs as
    tls_keyfile: Path | None = None


def broker_dir(settings: Settings) -> Path:
    return (settings.data_dir / BROKER_DIR).resolve()


def server_broker_secret(settings: Settings) -> str:
    """The server's own broker secret (account `signage-server`), made once and kept in a 0600 file."""
    path = broker_dir(settings) / SERVER_SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if not secret:
            raise BrokerFailed(f"{path} is empty; delete it to have a new server secret made") from None
        return secret
    secret = new_secret()
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


def credentials_fingerprint(session: Session) -> Fingerprint:
    """A cheap summary of the credentials table that changes whenever a player is registered or revoked."""
    row = session.execute(select(func.count(), func.count(PlayerCredential.revoked_at),
                                 func.max(PlayerCredential.created_at), func.max(PlayerCredential.revoked_at))).one()
    return tuple(row)


def player_acl_lines(player_id: str) -> list[str]:
    return ([f"topic read {player_topic(player_id, kind)}" for kind in PLAYER_READS]
            + [f"topic write {player_topic(player_id, kind)}" for kind in PLAYER_WRITES])


def render_passwords(players: Iterable[tuple[str, str]], server_hash: str) -> str:
    """`user:hash` lines: the server's account first, then each (player_id, broker_hash)."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in [(SERVER_ACCOUNT, server_hash), *players])


def render_acl(player_ids: Iterable[str]) -> str:
    # Only per-user blocks and no `pattern` lines: a pattern applies to every user, so it would keep granting
    # a revoked player access; with user blocks alone, removing a player's block removes all its access.
    blocks = [f"user {SERVER_ACCOUNT}\ntopic readwrite {TOPIC_ROOT}/#\n"]
    blocks += [f"user {player_id}\n" + "".join(line + "\n" for line in player_acl_lines(player_id))
               for player_id in player_ids]
    return "# Written by `signage broker` from the database; edits are overwritten.\n\n" + "\n".join(blocks)


def render_config(settings: Settings, files: BrokerFiles, tls: BrokerTls | None = None) -> str:
    lines = [
        "# Written by `signage broker` from the database; edits are overwritten.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {files.passwords}",
        f"acl_file {files.acl}",
    ]
    if files.run_as:
        lines.append(f"user {files.run_as}")
    lines += [
        "",
        "persistence true",
        f"persistence_location {files.persistence}/",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
        "",
        "# Mosquitto's default max_queued_messages (1000) drops QoS 1 messages beyond it for an offline",
        "# persistent client; plans, commands, acks and proof-of-play must not be lost that way.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "# Room for a 5,000-record proof-of-play batch at the largest the protocol allows.",
        f"max_packet_size {MAX_PACKET_SIZE}",
        "",
        # stderr, not stdout: stdout is block-buffered when it is a pipe, so a supervisor would see nothing.
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "# information: the 'Reloading config.' line tells the supervisor a reload was applied.",
        "log_type information",
        "connection_messages true",
        "log_timestamp false",
        "",
        f"listener {settings.broker_port} {settings.broker_host}",
    ]
    if tls is not None:
        lines += [
            f"listener {tls.port}" + (f" {tls.host}" if tls.host else ""),
            f"certfile {files.tls_certfile or tls.certfile.resolve()}",
            f"keyfile {files.tls_keyfile or tls.keyfile.resolve()}",
        ]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"a broker setting holds a line break: {line!r}")
    return "\n".join(lines) + "\n"


def _searchable_by(account: pwd.struct_passwd, directory: Path) -> bool:
    """Whether the account may walk down to `directory` (the x bit on it and every parent)."""
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for path in [*reversed(directory.parents), directory]:
        info = path.stat()
        if info.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _account_to_run_as(directory: Path) -> pwd.struct_passwd | None:
    """Started as root, Mosquitto drops to the `mosquitto` account and then reads its files as that account
    (at start and on every reload): use it when it exists and can reach the files."""
    try:
        account = pwd.getpwnam(MOSQUITTO_ACCOUNT)
    except KeyError:
        return None
    data_dir = directory.parent
    if not _searchable_by(account, data_dir) and _searchable_by(account, data_dir.parent):
        # The data directory is private (0700, signage/private_files.py); the account may pass through it, not
        # list it, to reach the broker's own directory. Its database and keys stay 0600.
        os.chmod(data_dir, stat.S_IMODE(data_dir.stat().st_mode) | stat.S_IXOTH)
    return account if _searchable_by(account, data_dir) else None


def _usable_players(credentials: Iterable[PlayerCredential]) -> list[tuple[str, str]]:
    players = []
    for credential in credentials:
        if credential.player_id == SERVER_ACCOUNT or not SAFE_ACCOUNT.match(credential.player_id):
            log.error("player %r is left out of the broker's accounts: its id clashes with the server's account "
                      "or holds characters a broker account cannot have; rename the screen and register it again",
                      credential.player_id)
            continue
        players.append((credential.player_id, credential.broker_hash))
    return players


def _run_as(directory: Path) -> tuple[str | None, tuple[int, int] | None]:
    """The `user` line for Mosquitto and the (uid, gid) its files must belong to: both None unless root."""
    if os.geteuid() != 0:
        return None, None
    account = _account_to_run_as(directory)
    if account is not None:
        return account.pw_name, (account.pw_uid, account.pw_gid)
    if directory not in _warned_running_as_root:
        _warned_running_as_root.add(directory)
        log.warning("the %r account is missing or cannot reach %s, so Mosquitto will run as root; put "
                    "SIGNAGE_DATA_DIR where that account can reach it (e.g. /var/lib/signage) to have it drop root",
                    MOSQUITTO_ACCOUNT, directory)
    return "root", None


def write_broker_files(settings: Settings, database: Database, tls: BrokerTls | None = None) -> BrokerFiles:
    """Write mosquitto.conf, the password file (non-revoked players and the server) and the ACL into
    DATA_DIR/broker/, from the database."""
    directory = broker_dir(settings)
    persistence = directory / PERSISTENCE_DIR
    persistence.mkdir(parents=True, exist_ok=True)
    run_as, owner = _run_as(directory)
    os.chmod(directory, 0o711 if owner else 0o700)  # traversable by Mosquitto's account, listable by no one
    os.chmod(persistence, 0o700)
    if owner is not None:
        # Its database too: one saved by an earlier run as root would otherwise be unreadable after the drop.
        for path in [persistence, *persistence.iterdir()]:
            os.chown(path, *owner)
    if tls is not None:
        # Mosquitto 2.0 loads the certificate and key after dropping root (and again on each reload), so it
        # gets its own copies; a renewed certificate is picked up by the next reload.
        write_private(directory / TLS_CERT_FILE, tls.certfile.read_bytes(), owner=owner)
        write_private(directory / TLS_KEY_FILE, tls.keyfile.read_bytes(), owner=owner)
    files = BrokerFiles(directory=directory, config=directory / CONFIG_FILE, passwords=directory / PASSWORD_FILE,
                        acl=directory / ACL_FILE, persistence=persistence, run_as=run_as,
                        tls_certfile=directory / TLS_CERT_FILE if tls else None,
                        tls_keyfile=directory / TLS_KEY_FILE if tls else None)
    with database.sessions() as session:
        players = _usable_players(active_credentials(session))
    server_hash = mosquitto_hash(server_broker_secret(settings))
    write_private(files.passwords, render_passwords(players, server_hash), owner=owner)
    write_private(files.acl, render_acl(player_id for player_id, _ in players), owner=owner)
    write_private(files.config, render_config(settings, files, tls), owner=owner)
    return files


def find_mosquitto() -> str:
    # Debian installs it in /usr/sbin, which is not on an ordinary user's PATH.
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise BrokerFailed("mosquitto is not installed; install Debian's package (apt-get install mosquitto, "
                           "or `make setup`)")
    return found


@dataclass
class _Child:
    process: subprocess.Popen[str]
    started_at: float
    settled: threading.Event  # set once it runs, or once it has ended
    running: bool = False
    reader: threading.Thread | None = None


def _die_with_parent() -> None:
    # Runs in the child before exec: if the supervisor is killed outright (kill -9), Linux stops
    # Mosquitto too, instead of leaving it holding the port. (The signal follows the spawning thread:
    # spawns happen at start()/restart() and on the monitor thread, which lives as long as the supervisor.)
    # Elsewhere than Linux there is no prctl, and the supervisor's own stop() remains the way.
    import contextlib
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class BrokerSupervisor:
    """Runs Mosquitto as a child process: restarts it with backoff when it dies, and reloads it when the
    player credentials in the database change (polled every `watch_interval` seconds)."""

    def __init__(self, settings: Settings, database: Database, *, tls: BrokerTls | None = None,
                 watch_interval: float = 2.0, start_timeout: float = 20.0, executable: str | None = None) -> None:
        self.settings = settings
        self.database = database
        self.tls = tls
        self.watch_interval = watch_interval
        self.start_timeout = start_timeout
        self.executable = executable
        self.files: BrokerFiles | None = None
        self.starts = 0  # times Mosquitto reported it was running
        self.reloads = 0  # reloads Mosquitto reported it applied
        self._lock = threading.RLock()  # one spawn, signal or stop at a time
        self._counted = threading.Condition()
        self._stopping = threading.Event()
        self._child: _Child | None = None
        self._threads: list[threading.Thread] = []
        self._applied: Fingerprint | None = None
        self._tail: deque[str] = deque(maxlen=30)

    @property
    def port(self) -> int:
        return self.settings.broker_port

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child and child.process.poll() is None else None

    def start(self) -> None:
        """Write the files, start Mosquitto and return once it accepts connections."""
        if self._threads:
            raise RuntimeError("the broker supervisor is running already")
        executable = self.executable or find_mosquitto()
        self._stopping.clear()
        with self._lock:
            self._applied = self._write_files()
            child = self._spawn(executable)
        try:
            self._await_running(child, self.start_timeout)
        except BrokerFailed:
            self._end(child)
            raise
        self._threads = [threading.Thread(target=self._monitor, args=(executable,), name="broker-monitor",
                                          daemon=True),
                         threading.Thread(target=self._watch, name="broker-watch", daemon=True)]
        for thread in self._threads:
            thread.start()

    def reload(self, timeout: float = 10.0) -> None:
        """Rewrite the files from the database and have Mosquitto read them again (SIGHUP); returns once it has.

        Mosquitto re-reads its password file and ACL on SIGHUP and disconnects clients whose account is gone.
        """
        with self._lock:
            child = self._child
            if child is None or self._stopping.is_set():
                raise BrokerFailed("the broker is not running")
            self._await_running(child, timeout)
            fingerprint = self._write_files()
            with self._counted:
                seen = self.reloads
            child.process.send_signal(signal.SIGHUP)
        with self._counted:
            self._counted.wait_for(lambda: self.reloads > seen or self._stopping.is_set()
                                   or child.process.poll() is not None, timeout)
            confirmed = self.reloads > seen
        if not confirmed:
            raise BrokerFailed("Mosquitto stopped before it confirmed the reload" if child.process.poll() is not None
                               else f"Mosquitto did not confirm the reload within {timeout:.0f} s")
        self._applied = fingerprint

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Mosquitto (it saves its persistence on the way out) and the supervisor's threads."""
        self._stopping.set()
        with self._counted:
            self._counted.notify_all()  # a reload waiting for its confirmation gives up
        with self._lock:
            child = self._child
            if child is not None:
                self._end(child, timeout)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._child = None

    def restart(self) -> None:
        """Stop and start again on the same port, with the same persistence."""
        self.stop()
        self.start()

    def wait_for_start(self, after: int, timeout: float) -> bool:
        """Wait until Mosquitto has been (re)started more than `after` times in all."""
        with self._counted:
            return self._counted.wait_for(lambda: self.starts > after, timeout)

    def wait_for_reload(self, after: int, timeout: float) -> bool:
        """Wait until Mosquitto has applied more than `after` reloads in all."""
        with self._counted:
            return self._counted.wait_for(lambda: self.reloads > after, timeout)

    def __enter__(self) -> BrokerSupervisor:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # -- inside -------------------------------------------------------------------------------------------

    def _write_files(self) -> Fingerprint:
        # The fingerprint is read before the credentials, so the files are never older than it.
        with self.database.sessions() as session:
            fingerprint = credentials_fingerprint(session)
        self.files = write_broker_files(self.settings, self.database, self.tls)
        return fingerprint

    def _spawn(self, executable: str) -> _Child:
        assert self.files is not None
        # Its own session: Ctrl-C at a terminal reaches the supervisor, which stops Mosquitto cleanly
        # (saving persistence), rather than both racing each other.
        process = subprocess.Popen([executable, "-c", str(self.files.config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   encoding="utf-8", errors="replace", start_new_session=True,
                                   preexec_fn=_die_with_parent)
        child = _Child(process=process, started_at=time.monotonic(), settled=threading.Event())
        child.reader = threading.Thread(target=self._read_log, args=(child,), name="broker-log", daemon=True)
        child.reader.start()
        self._child = child
        return child

    def _read_log(self, child: _Child) -> None:
        assert child.process.stderr is not None
        for raw in child.process.stderr:
            line = raw.rstrip()
            self._tail.append(line)
            level = (logging.ERROR if line.startswith("Error") else
                     logging.WARNING if line.startswith("Warning") else logging.INFO)
            mosquitto_log.log(level, "%s", line)
            if RUNNING_LINE.search(line):
                child.running = True
                child.settled.set()
                with self._counted:
                    self.starts += 1
                    self._counted.notify_all()
            elif line == RELOAD_LINE:
                # Mosquitto logs this and applies the reload in one step of its loop, before handling any
                # more packets: once it is read here, every later connection sees the new files.
                with self._counted:
                    self.reloads += 1
                    self._counted.notify_all()
        child.settled.set()
        with self._counted:
            self._counted.notify_all()

    def _await_running(self, child: _Child, timeout: float) -> None:
        if child.settled.wait(timeout) and child.running and child.process.poll() is None:
            return
        tail = "\n".join(self._tail)
        if child.process.poll() is None and not child.settled.is_set():
            raise BrokerFailed(f"Mosquitto did not report it was running within {timeout:.0f} s:\n{tail}")
        hint = ""
        if "Address already in use" in tail:
            hint = (f"\nAnother process listens on port {self.port} (the system's mosquitto service?): stop it "
                    "or choose another port with SIGNAGE_BROKER_PORT.")
        raise BrokerFailed(f"Mosquitto exited (code {child.process.poll()}):\n{tail}{hint}")

    def _end(self, child: _Child, timeout: float = 10.0) -> None:
        if child.process.poll() is None:
            child.process.terminate()
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Mosquitto did not stop within %.0f s of SIGTERM; killing it", timeout)
                child.process.kill()
                child.process.wait()
        if child.reader is not None:
            child.reader.join(timeout)

    def _monitor(self, executable: str) -> None:
        delay = INITIAL_BACKOFF_S
        while True:
            child = self._child
            if child is None:
                return
            code = child.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - child.started_at > STABLE_AFTER_S:
                delay = INITIAL_BACKOFF_S
            log.error("Mosquitto exited with code %s; starting it again in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_BACKOFF_S)
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._applied = self._write_files()
                except (SQLAlchemyError, OSError):
                    log.exception("could not rewrite the broker files; starting Mosquitto with the last ones")
                try:
                    self._spawn(executable)
                except OSError:
                    log.exception("could not start Mosquitto")

    def _watch(self) -> None:
        while not self._stopping.wait(self.watch_interval):
            try:
                with self.database.sessions() as session:
                    fingerprint = credentials_fingerprint(session)
            except SQLAlchemyError as exc:
                log.warning("could not read the player credentials (%s); trying again", exc)
                continue
            if fingerprint == self._applied:
                continue
            log.info("player credentials changed; reloading the broker")
            try:
                self.reload()
            except (BrokerFailed, SQLAlchemyError, OSError) as exc:
                log.warning("the broker reload failed (%s); trying again", exc)
