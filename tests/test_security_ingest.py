"""Security suite: hostile proof-of-play and status payloads (hypothesis) through the real ingest path.

Whatever a player (or anyone holding its credentials) puts on its pop or status topic — random bytes, JSON of the
wrong shape, missing fields, NaN and infinities, numbers past any column, dates at the ends of the calendar, NUL
characters, non-UTF-8, JSON nested past any parser, strings of megabytes — ingest answers with a refusal, never an
exception, and the good records that came with it (in the same round, or the same batch) are stored and acked.
"""

from __future__ import annotations

import json
import math
import sqlite3
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import String, func, select
from sqlalchemy.exc import OperationalError

from campaigns.fleet_file import import_fleet
from scheduler import ingest
from scheduler.broker import SERVER_ACCOUNT, BrokerSupervisor, server_broker_secret
from scheduler.ingest import ScreenDirectory, ingest_pop, ingest_pop_record_by_record, ingest_status
from scheduler.models import PlayerPresence, PlayRecord
from scheduler.mqtt_bridge import MqttBridge
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import MAX_BATCH, PopRecord, Status
from signage.signing import Signer
from tests.conftest import FLEET_FILE
from tests.pg_server import free_port
from tests.protocol_client import ProtocolPlayer
from tests.test_ingest import PLAYER, batch, record

pytestmark = pytest.mark.security

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Values that have broken ingest somewhere: wrong types, the ends of numbers and calendars, NUL, huge text.
HOSTILE_VALUES = [
    None, "", True, [], {}, "x" * 100_000, "\x00", "a\x00b", math.nan, math.inf, -math.inf, 10**30, -(10**30),
    2**31, 2**63, -1, 1.5, "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2024-02-30T08:00:00+07:00",
    "2024-08-20T08:00:00", "yesterday", "2024-08-20T25:00:00+07:00", "\u202egnp.exe", "' OR 1=1 --",
    "../../etc/passwd",
]
hostile_value = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=300), st.integers(), st.floats())
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
                          lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                                      max_size=5),
                          max_leaves=30)


def dumps(value) -> bytes:
    # Python's json writes NaN and Infinity (not JSON): players' bugs and attackers can send them too.
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def hostile_record(draw) -> object:
    """A proof-of-play record with one field made hostile, one field missing, or not a record at all."""
    good = record()
    how = draw(st.sampled_from(["change", "drop", "add", "replace"]))
    if how == "change":
        return {**good, draw(st.sampled_from(sorted(good))): draw(hostile_value)}
    if how == "drop":
        field = draw(st.sampled_from(sorted(good)))
        return {key: value for key, value in good.items() if key != field}
    if how == "add":
        return {**good, draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in good)): draw(hostile_value)}
    return draw(json_value)


@st.composite
def hostile_payload(draw) -> bytes:
    """Bytes for a pop topic: noise, JSON of any shape, a batch with hostile records, deep JSON, broken UTF-8."""
    kind = draw(st.sampled_from(["bytes", "json", "batch", "deep", "not utf-8", "huge string", "bad batch"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    if kind == "json":
        return dumps(draw(json_value))
    if kind == "batch":
        return batch(draw(st.lists(hostile_record(), min_size=1, max_size=5)))
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1_000, 10_000, 200_000]))
        nested = b"[" * depth + b"]" * depth
        return draw(st.sampled_from([nested, b'{"schema":"signage.pop/1","batch_id":"b","records":' + nested + b"}",
                                     b'{"batch_id":' + nested + b"}"]))
    if kind == "not utf-8":
        good = batch([record()])
        cut = draw(st.integers(0, len(good)))
        return good[:cut] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + good[cut:]
    if kind == "huge string":
        return dumps({"schema": "signage.pop/1", "batch_id": "é" * 300_000, "records": [record()]})
    return dumps({"schema": draw(hostile_value), "batch_id": draw(hostile_value), "records": draw(hostile_value)})


@st.composite
def hostile_status(draw) -> bytes:
    good = {"player_id": PLAYER, "state": "online", "plan_version": "v1", "journal_backlog": 0,
            "cache": {"ready": 1, "missing": 0, "bytes": 10}, "clock_offset_ms": 0, "software_version": "0.1",
            "sent_at": "2024-08-20T03:00:00Z", "now_playing": {"kind": "spot"}, "refused": None, "alerts": []}
    how = draw(st.sampled_from(["change", "nested", "drop", "bytes", "deep"]))
    if how == "change":
        return dumps({**good, draw(st.sampled_from(sorted(good))): draw(hostile_value)})
    if how == "nested":
        field, inner = draw(st.sampled_from([("cache", "bytes"), ("cache", "ready"), ("now_playing", "kind")]))
        return dumps({**good, field: {**(good[field] or {}), inner: draw(hostile_value)}})
    if how == "drop":
        field = draw(st.sampled_from(sorted(good)))
        return dumps({key: value for key, value in good.items() if key != field})
    if how == "bytes":
        return draw(st.binary(max_size=500))
    depth = draw(st.sampled_from([150, 5_000, 200_000]))
    return b'{"player_id":"' + PLAYER.encode() + b'","state":"online","now_playing":{"a":' + b"[" * depth \
        + b"]" * depth + b"}}"


@pytest.fixture
def fleet(database, settings):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
    return database


def stored(database, play_ids: list[str]) -> set[str]:
    with database.sessions() as session:
        return set(session.scalars(select(PlayRecord.play_id).where(PlayRecord.play_id.in_(play_ids))))


# -- ingest_pop and ingest_status, on both databases -------------------------------------------------------------


@FUZZ
@given(junk=st.lists(hostile_payload(), min_size=1, max_size=4), mixed_in=st.lists(hostile_record(), max_size=4),
       position=st.integers(0, 4))
def test_hostile_batches_never_raise_out_of_ingest_and_never_cost_the_good_records_beside_them(
        fleet, clock, junk, mixed_in, position):
    good = [record() for _ in range(3)]
    # Good records in a batch of their own, and in the same batch as the hostile records.
    together = good[:2] + mixed_in
    messages = [(PLAYER, payload) for payload in junk]
    messages.insert(min(position, len(messages)), (PLAYER, batch(together, "mixed")))
    messages.append((PLAYER, batch([good[2]], "alone")))
    with transaction(fleet.sessions) as session:
        outcome = ingest_pop(session, messages, ScreenDirectory(), clock.now())
    acks = {ack.batch_id: ack for _, ack in outcome.acks}
    assert set(acks["mixed"].committed) >= {good[0]["play_id"], good[1]["play_id"]}
    assert acks["alone"].committed == [good[2]["play_id"]]
    assert stored(fleet, [r["play_id"] for r in good]) == {r["play_id"] for r in good}


@FUZZ
@given(payload=hostile_status())
def test_hostile_statuses_never_raise_out_of_ingest_and_a_good_status_still_lands_after(fleet, clock, payload):
    version = f"v-{uuid.uuid4().hex[:8]}"
    with transaction(fleet.sessions) as session:
        ingest_status(session, PLAYER, payload, clock.now(), ScreenDirectory())
    with transaction(fleet.sessions) as session:
        assert ingest_status(session, PLAYER, dumps({"player_id": PLAYER, "state": "online", "plan_version": version}),
                             clock.now())
    with fleet.sessions() as session:
        assert session.get(PlayerPresence, PLAYER).plan_version == version


@pytest.mark.parametrize("field, value", [
    ("clock_offset_ms", 10**30), ("journal_backlog", 2**40), ("software_version", "0.1\x00"),
    ("sent_at", "9999-12-31T23:59:59-12:00"), ("now_playing", {"kind": math.nan}),
    ("now_playing", {"kind": "x" * 1_000_000}), ("cache", {"ready": 2**31, "missing": 0, "bytes": 0}),
])
def test_a_status_with_values_no_column_can_hold_is_refused_not_an_error(fleet, clock, field, value):
    # Each of these once failed the whole ingest transaction (PostgreSQL: integer out of range, NUL in text, NaN
    # in JSON; both: OverflowError), taking the other messages of the round with it.
    payload = dumps({"player_id": PLAYER, "state": "online", field: value})
    with transaction(fleet.sessions) as session:
        assert ingest_status(session, PLAYER, payload, clock.now()) is False


@pytest.mark.parametrize("fields", [
    {"started_at": "9999-12-31T23:59:00-12:00", "ended_at": "9999-12-31T23:59:30-12:00"},
    {"scheduled_start": "0001-01-01T00:00:00+14:00"},
    {"spot_id": "spot\x00one"}, {"reason": "NUL\x00", "status": "failed"}, {"plan_version": "\x00"},
])
def test_a_record_no_column_can_hold_is_refused_by_name_and_its_batch_mates_are_stored(fleet, clock, fields):
    bad, good = record(**fields), record()
    with transaction(fleet.sessions) as session:
        [(_, ack)] = ingest_pop(session, [(PLAYER, batch([bad, good]))], ScreenDirectory(), clock.now()).acks
    assert (ack.committed, list(ack.rejected)) == ([good["play_id"]], [bad["play_id"]])
    assert stored(fleet, [good["play_id"], bad["play_id"]]) == {good["play_id"]}


def test_a_batch_of_more_than_the_largest_allowed_is_refused_whole_with_the_reason(fleet, clock):
    records = [record() for _ in range(MAX_BATCH + 1)]
    with transaction(fleet.sessions) as session:
        [(_, ack)] = ingest_pop(session, [(PLAYER, batch(records, "too-big"))], ScreenDirectory(), clock.now()).acks
    assert ack.committed == [] and "5000" in ack.rejected["#batch"]
    assert stored(fleet, [r["play_id"] for r in records[:10]]) == set()


# -- the MQTT bridge: real Mosquitto, the server's worker, a player sending junk among good records --------------


@pytest.fixture
def wire(settings, fleet, clock):
    """Mosquitto with PLAYER registered, the server's bridge connected, and PLAYER's client: (bridge, player)."""
    settings = settings.model_copy(update={"mqtt": True, "broker_port": free_port()})
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(fleet.sessions) as session:
        config = register_player(session, PLAYER, settings, signer, "http://127.0.0.1:9", clock.now())
    with BrokerSupervisor(settings, fleet):
        bridge = MqttBridge(settings, fleet, signer, clock, username=SERVER_ACCOUNT,
                            password=server_broker_secret(settings), client_id=f"server-{uuid.uuid4().hex[:8]}")
        bridge.start()
        assert bridge.connected.wait(15), "the server did not connect to the broker"
        player = ProtocolPlayer(PLAYER, config.password, "127.0.0.1", settings.broker_port).start()
        try:
            yield bridge, player
        finally:
            player.stop()
            bridge.stop()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(junk=st.lists(st.one_of(hostile_payload(), hostile_status().map(lambda p: ("status", p))), min_size=1,
                     max_size=6))
def test_junk_on_the_wire_never_stops_the_bridge_nor_costs_the_good_records_of_its_round(fleet, wire, junk):
    bridge, player = wire
    good = [record() for _ in range(5)]
    for item in junk:
        if isinstance(item, tuple):
            player.client.publish(f"signage/v1/players/{PLAYER}/status", item[1], qos=1)
        else:
            player.send_raw(item)
    player.record(good[:3])
    player.send_raw(batch(good[:3] + [{**record(), "duration_ms": math.nan}, {**record(), "spot_id": "\x00"}]))
    player.record(good[3:])
    player.drain(timeout=30, resend_after=3)
    assert not set(player.rejected) & {r["play_id"] for r in good}
    assert stored(fleet, [r["play_id"] for r in good]) == {r["play_id"] for r in good}
    assert bridge.stats["failed rounds"] == 0 and bridge._worker.is_alive()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_record_the_database_cannot_store_is_rejected_by_name_and_costs_neither_its_batch_nor_its_round(
        fleet, wire):
    # A real failure inside the database for one play_id (a constraint of the test's own, which validation cannot
    # foresee): the round fails, the bridge stores the round's messages one by one, and the poisoned batch record by
    # record: its good record is committed, the poisoned one is named as refused by the database, nothing is left
    # for the player to send again forever.
    bridge, player = wire
    poison, beside = record(play_id="poison-0001"), record()
    with fleet.engine.begin() as connection:
        if fleet.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("CREATE TRIGGER poison BEFORE INSERT ON play_records WHEN NEW.play_id = "
                                       "'poison-0001' BEGIN SELECT RAISE(ABORT, 'poisoned record'); END")
        else:
            connection.exec_driver_sql("ALTER TABLE play_records ADD CONSTRAINT poison "
                                       "CHECK (play_id <> 'poison-0001')")
    good = [record() for _ in range(20)]
    player.record(good + [poison, beside])
    with bridge.committed:
        # Held while the messages arrive (the worker waits for it after its first round), so they meet in one round.
        for item in good[:10]:
            player.send_raw(batch([item]))
        player.send_raw({"schema": "signage.pop/1", "batch_id": "poisoned", "records": [poison, beside]})
        for item in good[10:]:
            player.send_raw(batch([item]))
    with player.progress:
        assert player.progress.wait_for(lambda: not player.backlog(), timeout=30)
    assert list(player.rejected) == [poison["play_id"]]
    assert player.rejected[poison["play_id"]].startswith("the database refused it: ")
    assert (bridge.stats["failed rounds"], bridge.stats["batches stored record by record"],
            bridge.stats["failed messages"]) == (1, 1, 0)
    expected = {r["play_id"] for r in [*good, beside]}
    assert stored(fleet, [*expected, poison["play_id"]]) == expected
    with fleet.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlayRecord)) == len(expected)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_batch_stored_record_by_record_stops_where_the_database_fails_and_leaves_the_rest_unacked(
        fleet, clock, monkeypatch):
    # A failure that is not the record's own (here: the database locked) must not get a record rejected, which
    # would make its player drop a good play: what was stored is acked, the rest waits to be sent again.
    first, locked_at, after = record(), record(), record()
    malformed = record(duration_ms="long")
    store_rows = ingest._store_rows

    def locked_at_the_second(session, rows, directory):
        if rows[0]["play_id"] == locked_at["play_id"]:
            raise OperationalError("INSERT INTO play_records ...", {}, sqlite3.OperationalError("database is locked"))
        return store_rows(session, rows, directory)

    monkeypatch.setattr(ingest, "_store_rows", locked_at_the_second)
    outcome = ingest_pop_record_by_record(fleet.sessions, PLAYER, batch([first, locked_at, malformed, after]),
                                          ScreenDirectory(), clock.now())
    [(_, ack)] = outcome.acks
    assert (ack.committed, list(ack.rejected)) == ([first["play_id"]], [malformed["play_id"]])
    assert stored(fleet, [r["play_id"] for r in (first, locked_at, after)]) == {first["play_id"]}


# -- every wire field fits the column it lands in (issue 16) -------------------------------------------------------


@pytest.mark.parametrize("wire, table, good", [
    (PopRecord, PlayRecord, record()),
    (Status, PlayerPresence, {"player_id": PLAYER, "state": "online"}),
])
def test_every_text_field_on_the_wire_is_bounded_by_the_column_it_lands_in(wire, table, good):
    # One over-long campaign_id (the wire allowed 255, the column holds 63) failed PostgreSQL's whole ingest
    # transaction, so its batch was never acked and was sent again forever.
    let_through = {}
    for column in table.__table__.columns:
        if column.key not in wire.model_fields or not isinstance(column.type, String):
            continue
        try:
            wire.model_validate({**good, column.key: "a" * (column.type.length + 1)})
        except ValidationError:
            continue
        let_through[column.key] = column.type.length
    assert let_through == {}


@pytest.mark.parametrize("field, length", [("campaign_id", 64), ("player_id", 64), ("spot_id", 256),
                                           ("plan_version", 65), ("reason", 501), ("play_id", 65)])
def test_a_field_longer_than_its_column_is_refused_by_name_and_the_good_records_of_its_batch_commit(
        fleet, clock, field, length):
    value = ("x" * length) if field != "play_id" else "p" * length
    bad, good = record(**{field: value}), record()
    with transaction(fleet.sessions) as session:
        [(_, ack)] = ingest_pop(session, [(PLAYER, batch([bad, good]))], ScreenDirectory(), clock.now()).acks
    bad_key = bad["play_id"] if field != "play_id" else "#0"  # cut to length, it would name nothing the player holds
    assert ack.committed == [good["play_id"]] and list(ack.rejected) == [bad_key]
    assert stored(fleet, [good["play_id"], bad["play_id"]]) == {good["play_id"]}


@pytest.mark.parametrize("field, length", [("campaign_id", 63), ("spot_id", 255), ("reason", 500),
                                           ("plan_version", 64)])
def test_a_field_as_long_as_its_column_is_stored(fleet, clock, field, length):
    good = record(**{field: "x" * length})
    with transaction(fleet.sessions) as session:
        [(_, ack)] = ingest_pop(session, [(PLAYER, batch([good]))], ScreenDirectory(), clock.now()).acks
    assert ack.committed == [good["play_id"]]
    assert stored(fleet, [good["play_id"]]) == {good["play_id"]}
