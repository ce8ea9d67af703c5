"""Security suite: forged, tampered and replayed plans and commands, refused by the real player agent.

Real parts: Mosquitto with its ACLs, the server's MQTT bridge (which signs, and ingests the player's status and
proof-of-play into the database), and the player agent (its own loop, paho client, journal, alert book; the timed
playback backend, as the simulator uses). The forgeries go out on the server's own account, as from a broker or
server account in the wrong hands: the signature is what the player trusts, not the topic.

What a player held is read where the server reads it: its status (`player_presence`) and its proof-of-play (an info
alert the agent takes shows at once as a ticker, and its `started` record comes back; a refused one never shows).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.fleet_file import import_fleet
from player.agent import PlayerAgent
from player.playback import TimedPlayback
from scheduler.broker import SERVER_ACCOUNT, BrokerSupervisor, server_broker_secret
from scheduler.models import PlayerPresence, PlayRecord
from scheduler.mqtt_bridge import MqttBridge
from scheduler.players import register_player
from signage.clock import SystemClock
from signage.db import transaction
from signage.protocol import canonical_json, plan_version, player_topic
from signage.signing import Signer
from tests.pg_server import free_port

pytestmark = pytest.mark.security

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PLAYER, OTHER = "sec-a-001", "sec-b-001"
WAIT = 20.0
FLEET = f"""schema: signage.fleet/1
organisations: [{{id: sec, name: Phường thử, kind: ward}}]
sites:
  - {{id: sec-site, name: Điểm thử, kind: office, organisation: sec,
     operating_hours: {{daily: ["00:00-24:00"]}}, peak_windows: {{daily: ["00:00-24:00"]}}}}
screens:
  - {{id: {PLAYER}, site: sec-site, name: Màn A, kind: lcd, resolution: 1280x720}}
  - {{id: {OTHER}, site: sec-site, name: Màn B, kind: lcd, resolution: 1280x720}}
"""


@pytest.fixture
def database_url(tmp_path) -> str:
    # What is checked is the player's; the server's ingest on both databases is tests/test_security_ingest.py's.
    return f"sqlite:///{tmp_path / 'signage.db'}"


class Stack:
    """The broker, the server's bridge and PLAYER's agent, running; helpers to send and to wait."""

    def __init__(self, database, bridge: MqttBridge, agent: PlayerAgent) -> None:
        self.database, self.bridge, self.agent, self.signer = database, bridge, agent, bridge.signer
        self.generation = 0

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        with self.bridge.committed:
            if not self.bridge.committed.wait_for(condition, timeout=WAIT):
                raise TimeoutError(f"no {what} within {WAIT}s; presence: {self.presence()}")

    def presence(self) -> tuple[str | None, str | None]:
        with self.database.sessions() as session:
            row = session.get(PlayerPresence, PLAYER)
            return (row.plan_version, row.refused) if row is not None else (None, None)

    def alert_records(self, alert_id: str) -> list[tuple[str, str | None]]:
        with self.database.sessions() as session:
            return [(r.status, r.reason) for r in session.scalars(
                select(PlayRecord).where(PlayRecord.kind == "alert", PlayRecord.spot_id == alert_id)
                .order_by(PlayRecord.started_at, PlayRecord.status))]

    # -- plans --------------------------------------------------------------------------------------------------

    def plan(self, player_id: str = PLAYER, generated_at: datetime | None = None) -> dict[str, Any]:
        """A new plan body, each one different (and newer) than the last: no spots, the screen open all day."""
        self.generation += 1
        start = datetime.combine(datetime.now(HANOI).date(), time(0), HANOI)
        until = start + timedelta(days=2, minutes=self.generation)
        body = {"schema": "signage.plan/1", "player_id": player_id,
                "generated_at": (generated_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
                "timezone": "Asia/Ho_Chi_Minh", "valid_from": start.isoformat(), "valid_until": until.isoformat(),
                "operating_hours": [{"start": start.isoformat(), "end": until.isoformat()}],
                "peak_windows": [{"start": start.isoformat(), "end": until.isoformat()}],
                "filler": [], "spots": [], "media": {}}
        return {**body, "version": plan_version(body)}

    def send_plan(self, payload: bytes) -> None:
        self.bridge.client.publish(player_topic(PLAYER, "plan"), payload, qos=1, retain=True)

    def hold(self, body: dict[str, Any]) -> None:
        """Send a good plan and wait until the player's status confirms it (and says nothing is refused)."""
        self.send_plan(self.signer.envelope_json(canonical_json(body)))
        self.wait(lambda: self.presence() == (body["version"], None), f"status confirming plan {body['version']}")

    # -- commands -------------------------------------------------------------------------------------------------

    def command(self, name: str, args: dict[str, Any], *, player_id: str = PLAYER,
                expires_in: timedelta = timedelta(minutes=10)) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"schema": "signage.command/1", "command_id": str(uuid.uuid4()), "player_id": player_id,
                "name": name, "issued_at": now.isoformat().replace("+00:00", "Z"),
                "expires_at": (now + expires_in).isoformat().replace("+00:00", "Z"), "args": args}

    def alert_start(self, alert_id: str, **options: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        order = {"alert_id": alert_id, "severity": "info", "kind": "text", "text": f"Thông báo {alert_id}",
                 "starts_at": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                 "expires_at": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
        return self.command("alert_start", order, **options)

    def signed(self, body: dict[str, Any]) -> bytes:
        return canonical_json(self.signer.sign(body))

    def send_command(self, payload: bytes) -> None:
        self.bridge.client.publish(player_topic(PLAYER, "cmd"), payload, qos=1)

    def barrier(self) -> None:
        """A good alert sent after what is being tested: once it shows, the player has dealt with everything sent
        before it (one topic, QoS 1: in order), and has sent a status since."""
        marker = f"marker-{uuid.uuid4().hex[:8]}"
        self.send_command(self.signed(self.alert_start(marker)))
        self.wait(lambda: ("started", None) in self.alert_records(marker), f"the marker alert {marker} showing")
        with self.database.sessions() as session:
            shown = session.scalar(select(PlayRecord.started_at).where(PlayRecord.spot_id == marker))
        self.wait(lambda: (self.status_sent_at() or shown) > shown, "a status sent after the marker showed")

    def status_sent_at(self) -> datetime | None:
        with self.database.sessions() as session:
            return session.scalar(select(PlayerPresence.sent_at).where(PlayerPresence.player_id == PLAYER))


@pytest.fixture
def stack(settings, database, clock, tmp_path):
    settings = settings.model_copy(update={"mqtt": True, "broker_port": free_port()})
    (tmp_path / "fleet.yaml").write_text(FLEET, encoding="utf-8")
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        import_fleet(session, tmp_path / "fleet.yaml", settings.timezone)
        config = register_player(session, PLAYER, settings, signer, "http://127.0.0.1:9", clock.now())
    config = config.model_copy(update={"data_dir": str(tmp_path / "player"), "headless": True})
    with BrokerSupervisor(settings, database):
        bridge = MqttBridge(settings, database, signer, SystemClock(), username=SERVER_ACCOUNT,
                            password=server_broker_secret(settings), client_id=f"server-{uuid.uuid4().hex[:8]}")
        bridge.start()
        assert bridge.connected.wait(15), "the server did not connect to the broker"
        system = SystemClock()
        agent = PlayerAgent(config, system, lambda post: TimedPlayback(post, clock=system))
        runner = threading.Thread(target=agent.run, name="player-agent", daemon=True)
        runner.start()
        try:
            stack = Stack(database, bridge, agent)
            stack.hold(stack.plan())
            yield stack
        finally:
            agent.stop()
            runner.join(timeout=30)
            bridge.stop()


def tamper(envelope: bytes, change: Callable[[dict], None]) -> bytes:
    document = json.loads(envelope)
    change(document)
    return json.dumps(document).encode()


def test_unsigned_tampered_foreign_and_older_plans_are_refused_the_plan_held_stays_and_the_status_says_why(stack):
    refusals = {}

    def attempt(name: str, payload: bytes, expected_reason: str) -> None:
        held = stack.plan()
        stack.hold(held)
        stack.send_plan(payload)
        stack.wait(lambda: stack.presence()[1] is not None, f"a status naming the refusal of {name}")
        version, refused = stack.presence()
        on_disk = json.loads((stack.agent.data_dir / "plan.json").read_bytes())["payload"]["version"]
        refusals[name] = (version == held["version"] == on_disk, expected_reason in refused)

    other_signer = Signer.load_or_create(stack.agent.data_dir.parent / "not-the-server")
    body = stack.plan()
    attempt("unsigned", canonical_json(body), "for SignedEnvelope")
    attempt("no signature", canonical_json({"payload": body, "alg": "ed25519", "key_id": stack.signer.key_id}),
            "sig")
    attempt("alg none", tamper(stack.signer.envelope_json(canonical_json(body)), lambda e: e.update(alg="none")),
            "alg")
    attempt("body changed after signing", tamper(
        stack.signer.envelope_json(canonical_json(body)),
        lambda e: e["payload"]["operating_hours"][0].update(end=e["payload"]["valid_from"].replace("00:00:00",
                                                                                                     "00:30:00"))),
            "the signature does not match the payload")
    attempt("signed by another key", other_signer.envelope_json(canonical_json(stack.plan())),
            "which this player does not trust")
    forged = json.loads(other_signer.envelope_json(canonical_json(stack.plan())))
    forged["key_id"] = stack.signer.key_id
    attempt("another key claiming the server's id", json.dumps(forged).encode(),
            "the signature does not match the payload")
    first, second = stack.plan(), stack.plan()
    swapped = json.loads(stack.signer.envelope_json(canonical_json(first)))
    swapped["sig"] = json.loads(stack.signer.envelope_json(canonical_json(second)))["sig"]
    attempt("the signature of another body", json.dumps(swapped).encode(), "the signature does not match the payload")
    garbage = json.loads(stack.signer.envelope_json(canonical_json(stack.plan())))
    garbage["sig"] = base64.b64encode(b"\x00" * 64).decode()
    attempt("a signature of zeros", json.dumps(garbage).encode(), "the signature does not match the payload")
    attempt("for another player", stack.signer.envelope_json(canonical_json(stack.plan(OTHER))), "not this player")
    wrong_version = {**stack.plan(), "version": "0" * 64}
    attempt("a version that is not its body's", stack.signer.envelope_json(canonical_json(wrong_version)),
            "version does not match its body")
    older = stack.plan(generated_at=datetime.now(UTC) - timedelta(days=1))
    attempt("an older plan", stack.signer.envelope_json(canonical_json(older)), "older than the one held")
    assert refusals == dict.fromkeys(refusals, (True, True))


def test_a_plan_replayed_after_a_newer_one_is_refused(stack):
    first = stack.plan()
    stack.hold(first)
    replay = stack.signer.envelope_json(canonical_json(first))  # the very bytes the server sent, sent again
    second = stack.plan()
    stack.hold(second)
    stack.send_plan(replay)
    stack.wait(lambda: stack.presence()[1] is not None, "a status naming the refusal")
    assert stack.presence() == (second["version"], stack.presence()[1])
    assert "older than the one held" in stack.presence()[1]
    assert stack.agent.state.plan.version == second["version"]


def test_forged_commands_are_refused_and_change_nothing_the_player_holds(stack):
    other_signer = Signer.load_or_create(stack.agent.data_dir.parent / "not-the-server")
    # An alert the player holds: forged stops must not take it off.
    stack.send_command(stack.signed(stack.alert_start("held")))
    stack.wait(lambda: ("started", None) in stack.alert_records("held"), "the held alert showing")
    outcomes = {}

    def attempt(name: str, payload: bytes, expected_reason: str) -> None:
        stack.send_command(payload)
        stack.barrier()
        outcomes[name] = expected_reason in (stack.presence()[1] or "")

    start = stack.alert_start("forged-unsigned")
    attempt("unsigned", canonical_json(start), "for SignedEnvelope")
    attempt("body changed after signing", tamper(stack.signed(stack.alert_start("forged-tampered")),
                                                 lambda e: e["payload"]["args"].update(severity="urgent")),
            "the signature does not match the payload")
    attempt("signed by another key", canonical_json(other_signer.sign(stack.alert_start("forged-key"))),
            "which this player does not trust")
    swapped = json.loads(stack.signed(stack.alert_start("forged-swapped")))
    swapped["sig"] = json.loads(stack.signed(stack.alert_start("innocent")))["sig"]
    attempt("the signature of another body", json.dumps(swapped).encode(), "the signature does not match the payload")
    stop = stack.command("alert_stop", {"alert_id": "held"})
    attempt("a stop signed by another key", canonical_json(other_signer.sign(stop)), "which this player does not trust")
    attempt("a stop changed after signing", tamper(stack.signed(stack.command("alert_stop", {"alert_id": "x"})),
                                                   lambda e: e["payload"]["args"].update(alert_id="held")),
            "the signature does not match the payload")
    assert outcomes == dict.fromkeys(outcomes, True)
    for forged in ("forged-unsigned", "forged-tampered", "forged-key", "forged-swapped", "innocent"):
        assert stack.alert_records(forged) == [], forged
    assert stack.alert_records("held") == [("started", None)]  # still showing: no ending record


def test_expired_foreign_and_replayed_commands_change_nothing_the_player_holds(stack):
    stack.send_command(stack.signed(stack.alert_start("expired", expires_in=timedelta(seconds=-1))))
    stack.send_command(stack.signed(stack.alert_start("for-another-player", player_id=OTHER)))
    start = stack.signed(stack.alert_start("replayed"))
    stack.send_command(start)
    stack.wait(lambda: ("started", None) in stack.alert_records("replayed"), "the alert showing")
    stack.send_command(stack.signed(stack.command("alert_stop", {"alert_id": "replayed"})))
    stack.wait(lambda: len(stack.alert_records("replayed")) == 2, "the alert's end")
    stack.send_command(start)  # the very bytes of the start, sent again after the stop
    stack.barrier()
    assert stack.alert_records("expired") == [] and stack.alert_records("for-another-player") == []
    assert stack.alert_records("replayed") == [("completed", "stopped by the issuer"), ("started", None)]


@pytest.mark.parametrize("case", ["expired", "another player's", "sent again"])
def test_the_status_says_why_an_expired_foreign_or_replayed_command_was_refused(stack, case):
    if case == "expired":
        stack.send_command(stack.signed(stack.alert_start("late", expires_in=timedelta(seconds=-1))))
    elif case == "another player's":
        stack.send_command(stack.signed(stack.alert_start("other", player_id=OTHER)))
    else:
        sync = stack.signed(stack.command("sync_now", {}))
        stack.send_command(sync)
        stack.send_command(sync)
    stack.barrier()
    assert "command" in (stack.presence()[1] or "")
