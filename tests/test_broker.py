"""The broker as players meet it: a real Mosquitto, run by the supervisor, with files written from the database.

Each check talks MQTT 5 with paho to the broker the test started, and waits on the broker's own replies
(CONNACK, SUBACK, PUBACK reason codes, deliveries) or on the supervisor's reload and start counters.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from campaigns.fleet_file import import_fleet
from scheduler.broker import (
    MOSQUITTO_ACCOUNT,
    RELOAD_LINE,
    SERVER_ACCOUNT,
    BrokerSupervisor,
    BrokerTls,
    server_broker_secret,
)
from scheduler.database import Database
from scheduler.players import register_player, revoke_player
from signage.clock import VirtualClock
from signage.config import Settings
from signage.db import transaction
from signage.player_config import PlayerConfig
from signage.protocol import TOPIC_ROOT, player_topic
from signage.signing import Signer
from tests.pg_server import free_port

HOST = "127.0.0.1"
WAIT = 10.0  # seconds: the most any single broker reply may take here
NOT_AUTHORIZED = 0x87
REFUSED_AT_CONNECT = {0x86, 0x87}  # bad user name or password / not authorised: Mosquitto 2.0.11 sends 0x87
SIGNAGE = [str(Path(sys.executable).parent / "signage")]
SCREENS = ("scr-a", "scr-b", "scr-c")
BOTH_BACKENDS = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

FLEET = """
schema: signage.fleet/1
organisations: [{id: hn, name: UBND Thành phố Hà Nội, kind: city}]
sites: [{id: ga-hn, name: Ga Hà Nội, kind: office, organisation: hn}]
screens:
""" + "".join(f"  - {{id: {screen}, site: ga-hn, name: {screen}, kind: lcd, resolution: 1920x1080}}\n"
              for screen in SCREENS)


class Probe:
    """One MQTT 5 connection whose broker replies a test can wait on. A refused or dropped connection
    stays down: a reconnect is a new Probe."""

    def __init__(self, port: int, username: str | None, password: str | None = None, *, client_id: str | None = None,
                 clean_start: bool = True, session_expiry: int = 0, tls_ca: Path | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.connack: ReasonCode | None = None
        self.session_present = False
        self.disconnected = threading.Event()
        self.messages: list[mqtt.MQTTMessage] = []
        self._replies: dict[int, Any] = {}
        self._changed = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = session_expiry
        self.client.connect(HOST, port, keepalive=30, clean_start=clean_start, properties=properties)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnected.is_set(), "CONNACK")

    @property
    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure and not self.disconnected.is_set()

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self.client.subscribe(topic, qos=1)
        self._wait(lambda: mid in self._replies, f"SUBACK for {topic}")
        return self._replies[mid][0]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        return self.publish_all([(topic, payload)], retain=retain)[0]

    def publish_all(self, messages: list[tuple[str, bytes]], *, retain: bool = False) -> list[ReasonCode]:
        """Publish at QoS 1 and return each PUBACK's reason code."""
        mids = [self.client.publish(topic, payload, qos=1, retain=retain).mid for topic, payload in messages]
        self._wait(lambda: all(mid in self._replies for mid in mids), f"{len(mids)} PUBACKs", timeout=30)
        return [self._replies[mid] for mid in mids]

    def wait_for_messages(self, count: int, timeout: float = WAIT) -> list[mqtt.MQTTMessage]:
        self._wait(lambda: len(self.messages) >= count, f"{count} messages (got {len(self.messages)})", timeout)
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _wait(self, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        with self._changed:
            if not self._changed.wait_for(done, timeout):
                raise TimeoutError(f"no {what} from the broker within {timeout}s")

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.session_present = bool(flags.session_present)
        self.connack = reason_code
        self._notify()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnected.set()
        self._notify()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._replies[mid] = reason_codes
        self._notify()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._replies[mid] = reason_code
        self._notify()

    def _on_message(self, client, userdata, message) -> None:
        self.messages.append(message)
        self._notify()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite, unless a test asks for both backends (where the database matters to what it checks)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'signage.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Started as root, Mosquitto drops to the `mosquitto` account and reads its files as that account;
    # pytest's tmp_path sits under a 0700 directory it cannot enter, so the data directory lives elsewhere.
    directory = Path(tempfile.mkdtemp(prefix="signage-broker-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir / "var", database_url=database_url, broker_port=free_port())


@pytest.fixture
def fleet(database: Database, tmp_path: Path) -> list[str]:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET, encoding="utf-8")
    with transaction(database.sessions) as session:
        import_fleet(session, path, "Asia/Ho_Chi_Minh")
    return list(SCREENS)


def register(database: Database, settings: Settings, clock: VirtualClock, screen_id: str) -> PlayerConfig:
    clock.advance(timedelta(seconds=1))  # each change of the credentials at its own instant, as in real time
    with transaction(database.sessions) as session:
        return register_player(session, screen_id, settings, Signer.load_or_create(settings.data_dir),
                               "http://127.0.0.1:8000", clock.now())


@pytest.fixture
def players(fleet: list[str], database: Database, settings: Settings, clock: VirtualClock) -> dict[str, PlayerConfig]:
    """scr-a and scr-b registered; scr-c left for tests that register it later."""
    return {screen: register(database, settings, clock, screen) for screen in fleet[:2]}


@pytest.fixture
def broker(settings: Settings, database: Database, players: dict[str, PlayerConfig]) -> Iterator[BrokerSupervisor]:
    supervisor = BrokerSupervisor(settings, database, watch_interval=0.2)
    supervisor.start()
    yield supervisor
    supervisor.stop()


@pytest.fixture
def connect(broker: BrokerSupervisor, settings: Settings, players: dict[str, PlayerConfig]):
    """connect('scr-a') as that player, connect('server') as the server's account; closed after the test."""
    probes: list[Probe] = []

    def open_probe(who: str, **options: Any) -> Probe:
        if who == "server":
            probe = Probe(broker.port, SERVER_ACCOUNT, server_broker_secret(settings), **options)
        else:
            probe = Probe(broker.port, players[who].username, players[who].password, **options)
        probes.append(probe)
        return probe

    yield open_probe
    for probe in probes:
        probe.close()


def payloads(messages: list[mqtt.MQTTMessage]) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in messages]


def test_a_player_receives_the_retained_plan_the_server_published_on_its_own_plan_topic(connect):
    server = connect("server")
    assert not server.publish(player_topic("scr-a", "plan"), b"plan v1", retain=True).is_failure
    player = connect("scr-a")
    assert player.subscribe(player_topic("scr-a", "plan")).value == 1  # granted at QoS 1
    [message] = player.wait_for_messages(1)
    assert (message.topic, message.payload, message.retain) == (player_topic("scr-a", "plan"), b"plan v1", True)


@pytest.mark.security
def test_a_player_receives_nothing_from_another_players_plan_cmd_or_ack(connect):
    server = connect("server")
    others = [player_topic("scr-b", kind) for kind in ("plan", "cmd", "ack")]
    server.publish_all([(topic, b"for scr-b only") for topic in others], retain=True)
    server.publish(player_topic("scr-a", "plan"), b"plan of scr-a", retain=True)
    player = connect("scr-a")
    for topic in others:
        # Mosquitto 2.0.11's ACL file is enforced on delivery: it grants the SUBACK and then delivers nothing.
        assert player.subscribe(topic).value in (1, NOT_AUTHORIZED)
    player.subscribe(player_topic("scr-a", "plan"))
    # Its own retained plan comes after any retained message of the earlier subscriptions would have.
    assert payloads(player.wait_for_messages(1)) == [(player_topic("scr-a", "plan"), b"plan of scr-a")]
    server.publish_all([(topic, b"live, for scr-b only") for topic in others])
    server.publish(player_topic("scr-a", "plan"), b"barrier")  # delivered after those, in order
    assert payloads(player.wait_for_messages(2)) == [(player_topic("scr-a", "plan"), b"plan of scr-a"),
                                                     (player_topic("scr-a", "plan"), b"barrier")]


@pytest.mark.security
def test_a_player_cannot_publish_to_another_players_pop_or_status_nor_to_any_plan_cmd_or_ack(connect):
    listener = connect("server")
    listener.subscribe(f"{TOPIC_ROOT}/#")
    player = connect("scr-a")
    forbidden = [player_topic("scr-b", "pop"), player_topic("scr-b", "status")] + [
        player_topic(screen, kind) for screen in ("scr-a", "scr-b") for kind in ("plan", "cmd", "ack")]
    codes = player.publish_all([(topic, b"forged") for topic in forbidden])
    assert {topic: code.value for topic, code in zip(forbidden, codes, strict=True)} == dict.fromkeys(
        forbidden, NOT_AUTHORIZED)
    assert not player.publish(player_topic("scr-a", "status"), b"online", retain=True).is_failure
    assert not player.publish(player_topic("scr-a", "pop"), b"batch").is_failure
    # The server saw only what the player may write, and the forged messages (sent before) never.
    assert payloads(listener.wait_for_messages(2)) == [(player_topic("scr-a", "status"), b"online"),
                                                       (player_topic("scr-a", "pop"), b"batch")]


def test_the_server_account_takes_every_players_pop_through_the_shared_ingest_subscription(connect):
    server = connect("server")
    assert not server.subscribe(f"$share/ingest/{TOPIC_ROOT}/+/pop").is_failure
    for screen in ("scr-a", "scr-b"):
        connect(screen).publish(player_topic(screen, "pop"), screen.encode())
    assert sorted(payloads(server.wait_for_messages(2))) == [(player_topic("scr-a", "pop"), b"scr-a"),
                                                             (player_topic("scr-b", "pop"), b"scr-b")]


@pytest.mark.security
def test_a_wrong_password_an_unknown_user_and_an_anonymous_client_are_refused_at_connect(broker, players):
    a, b = players["scr-a"], players["scr-b"]
    attempts = {"wrong password": (a.username, "not-the-secret"), "another player's secret": (a.username, b.password),
                "unknown user": ("scr-z", a.password), "no credentials": (None, None)}
    refused = {}
    for name, (username, password) in attempts.items():
        probe = Probe(broker.port, username, password)
        refused[name] = (probe.connack is not None and probe.connack.value in REFUSED_AT_CONNECT, probe.connected)
        probe.close()
    assert refused == dict.fromkeys(attempts, (True, False))


@pytest.mark.security
@BOTH_BACKENDS
def test_a_revoked_player_is_disconnected_and_refused_once_the_supervisor_notices(broker, connect, database, clock,
                                                                                  players):
    revoked, other = connect("scr-a"), connect("scr-b")
    seen = broker.reloads
    clock.advance(timedelta(seconds=1))
    with transaction(database.sessions) as session:
        assert revoke_player(session, "scr-a", clock.now())
    assert broker.wait_for_reload(seen, WAIT), "the supervisor did not reload the broker after the revocation"
    assert revoked.disconnected.wait(WAIT), "the broker kept the revoked player's live connection"
    again = Probe(broker.port, players["scr-a"].username, players["scr-a"].password)
    assert again.connack is not None and again.connack.value in REFUSED_AT_CONNECT
    again.close()
    assert other.connected
    assert not other.publish(player_topic("scr-b", "pop"), b"still in").is_failure


def test_a_player_registered_while_the_broker_runs_is_let_in_once_the_supervisor_notices(broker, database, settings,
                                                                                       clock):
    seen = broker.reloads
    newcomer = register(database, settings, clock, "scr-c")
    assert broker.wait_for_reload(seen, WAIT)
    probe = Probe(broker.port, newcomer.username, newcomer.password)
    assert probe.connected
    assert not probe.publish(player_topic("scr-c", "pop"), b"hello").is_failure
    probe.close()


def test_a_persistent_session_gets_all_1500_messages_queued_while_it_was_offline(connect):
    session = {"client_id": "scr-a", "clean_start": False, "session_expiry": 2 * 86400}
    player = connect("scr-a", **session)
    player.subscribe(player_topic("scr-a", "ack"))
    player.close()
    server = connect("server")
    codes = server.publish_all([(player_topic("scr-a", "ack"), str(n).encode()) for n in range(1500)])
    assert not any(code.is_failure for code in codes)
    back = connect("scr-a", **session)
    assert back.session_present
    received = back.wait_for_messages(1500, timeout=30)
    assert [m.payload for m in received] == [str(n).encode() for n in range(1500)]  # Mosquitto's default keeps 1000


def test_retained_plans_and_persistent_sessions_survive_a_broker_restart(broker, connect):
    session = {"client_id": "scr-a", "clean_start": False, "session_expiry": 2 * 86400}
    player = connect("scr-a", **session)
    player.subscribe(player_topic("scr-a", "plan"))
    player.close()
    server = connect("server")
    server.publish(player_topic("scr-a", "plan"), b"plan v2", retain=True)
    server.close()
    broker.restart()
    back = connect("scr-a", **session)
    assert back.session_present, "the persistent session did not survive the restart"
    assert payloads(back.wait_for_messages(1)) == [(player_topic("scr-a", "plan"), b"plan v2")]
    fresh = connect("scr-a", client_id="scr-a-fresh")
    fresh.subscribe(player_topic("scr-a", "plan"))
    [retained] = fresh.wait_for_messages(1)
    assert (retained.payload, retained.retain) == (b"plan v2", True)


def test_the_supervisor_starts_mosquitto_again_after_it_is_killed(broker, connect):
    first, starts = broker.pid, broker.starts
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert broker.wait_for_start(starts, WAIT), "Mosquitto was not started again"
    # Players get in again: that proves it runs (reading its pid at once could race a second restart under load).
    assert connect("scr-a").connected
    assert broker.pid != first


def test_mosquitto_started_as_root_drops_to_its_own_account_and_still_reads_its_files_on_reload(broker, connect):
    uid = next(int(line.split()[1]) for line in Path(f"/proc/{broker.pid}/status").read_text().splitlines()
               if line.startswith("Uid:"))
    expected = pwd.getpwnam(MOSQUITTO_ACCOUNT).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected
    seen = broker.reloads
    broker.reload()
    assert broker.reloads > seen
    assert broker.pid is not None and connect("scr-a").connected


def test_a_tls_listener_takes_players_with_the_certificate_configured(settings, database, players, data_dir):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(HOST))]), critical=False)
                   .sign(key, hashes.SHA256()))
    certfile, keyfile = data_dir / "cert.pem", data_dir / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)  # readable by its owner only: the supervisor hands Mosquitto a copy it can read
    tls = BrokerTls(certfile=certfile, keyfile=keyfile, port=free_port(), host=HOST)
    with BrokerSupervisor(settings, database, tls=tls) as supervisor:
        supervisor.reload()  # Mosquitto loads the certificate again on reload, after dropping root
        player = players["scr-a"]
        probe = Probe(tls.port, player.username, player.password, tls_ca=certfile)
        assert probe.connected
        assert not probe.publish(player_topic("scr-a", "pop"), b"over tls").is_failure
        probe.close()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SIGNAGE, *args], env=env, capture_output=True, text=True, timeout=120)


@BOTH_BACKENDS
def test_signage_player_register_writes_a_0600_config_whose_secret_works_and_revoke_cuts_that_player_off(
        fleet, settings, cli_env, spawn):
    env = {**cli_env, "SIGNAGE_BROKER_PORT": str(settings.broker_port)}
    broker = spawn([*SIGNAGE, "broker", "--watch-interval", "0.2"], env)
    broker.wait_for(f"broker listening on {HOST}:{settings.broker_port}")
    registered = run(env, "player", "register", "scr-a")
    assert registered.returncode == 0, registered.stderr
    path = settings.data_dir / "players" / "scr-a.json"
    assert str(path) in registered.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = PlayerConfig.load(path)
    assert (config.player_id, config.username, config.broker_port) == ("scr-a", "scr-a", settings.broker_port)
    broker.wait_for(RELOAD_LINE)
    player = Probe(config.broker_port, config.username, config.password)
    assert player.connected
    revoked = run(env, "player", "revoke", "scr-a")
    assert revoked.returncode == 0, revoked.stderr
    broker.wait_for(RELOAD_LINE)
    assert player.disconnected.wait(WAIT)
    player.close()
    again = Probe(config.broker_port, config.username, config.password)
    assert again.connack is not None and again.connack.value in REFUSED_AT_CONNECT
    again.close()
    broker.process.terminate()
    assert broker.process.wait(WAIT) == 0
    with pytest.raises(ConnectionRefusedError):  # Mosquitto went with it
        socket.create_connection((HOST, settings.broker_port), timeout=WAIT).close()


def test_signage_player_register_refuses_an_unknown_screen_with_exit_2_and_the_fix(fleet, cli_env):
    result = run(cli_env, "player", "register", "no-such-screen")
    assert result.returncode == 2
    assert "no-such-screen" in result.stderr and "signage fleet import" in result.stderr


def test_signage_player_register_writes_the_players_data_directory_and_output_mode(fleet, cli_env, settings):
    result = run(cli_env, "player", "register", "scr-a", "--player-data-dir", "/var/lib/signage-player",
                 "--headless")
    assert result.returncode == 0, result.stderr
    config = PlayerConfig.load(settings.data_dir / "players" / "scr-a.json")
    assert (config.data_dir, config.headless) == ("/var/lib/signage-player", True)


def test_signage_broker_reads_its_tls_files_from_the_environment_too(cli_env, tmp_path):
    result = run({**cli_env, "SIGNAGE_BROKER_TLS_CERT": str(tmp_path / "broker.crt")}, "broker")
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr
