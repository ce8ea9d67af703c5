"""Fault: the ingest process killed (-9) in the middle of a stream of proof-of-play, then started again (issue 9,
fault suite).

Real parts, on SQLite and on PostgreSQL: Mosquitto under the project's supervisor, `signage ingest` as a process,
players speaking the wire with paho (tests/protocol_client.py) that keep sending all through the kill and the
restart and send again whatever was not acknowledged. Every record ends up stored once and the ledger counts it
once.
"""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore
from scheduler.broker import BrokerSupervisor
from scheduler.database import Database
from scheduler.models import DeliveryRollup, PlayRecord
from scheduler.players import register_player
from signage.config import Settings
from signage.db import transaction
from signage.limits import ID_LENGTH, PLAY_ID_LENGTH, REASON_LENGTH, SPOT_ID_LENGTH, VERSION_LENGTH
from signage.player_config import PlayerConfig
from signage.protocol import canonical_json
from signage.signing import Signer
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE, ProcessOutput
from tests.pg_server import free_port
from tests.protocol_client import ProtocolPlayer, pop_record

pytestmark = pytest.mark.faults

SCREENS = ("hn-hadong-vanquan-001", "hn-hadong-phula-001", "hn-hadong-phula-002")  # ward offices
PER_PLAYER = 2400
BATCH = 60
PEAK_START = datetime(2024, 8, 20, 1, 0, tzinfo=UTC)  # Tuesday 08:00 in Hà Nội: a ward office's morning peak


def spot_plays(player_id: str, count: int = PER_PLAYER) -> list[dict]:
    """Completed iHanoi spots a second apart from 08:00: all inside the morning peak (08:00-11:00)."""
    assert count <= 3 * 3600, "more spots than seconds in the peak"
    return [pop_record(player_id, media="cd" * 32, start=PEAK_START + timedelta(seconds=n),
                       spot_id=f"{player_id}-{n}") for n in range(count)]


def keep_sending(player: ProtocolPlayer, records: list[dict], stop: threading.Event,
                 killed: threading.Event | None = None) -> None:
    """Journal and publish the records batch by batch, as plays happen, whoever is listening; with `killed`, wait
    for it once a third is sent, so that the stream cannot end before the kill however loaded the machine is."""
    pace = threading.Event()
    for start in range(0, len(records), BATCH):
        if stop.is_set():
            return
        if killed is not None and start >= len(records) // 3:
            killed.wait(120)
        chunk = records[start:start + BATCH]
        player.record(chunk)
        player.send_raw({"schema": "signage.pop/1", "batch_id": str(uuid.uuid4()), "records": chunk})
        pace.wait(0.02)


@dataclass
class Wire:
    """Mosquitto with the screens' players registered, and how to start `signage ingest` against it."""

    database: Database
    settings: Settings
    configs: dict[str, PlayerConfig]
    command: list[str]
    env: dict[str, str]

    def stored(self) -> int:
        with self.database.sessions() as session:
            return session.scalar(select(func.count()).select_from(PlayRecord))

    def start_ingest(self, spawn) -> ProcessOutput:
        worker = spawn(self.command, self.env)
        worker.wait_for("connected to the broker", timeout=60)
        return worker


@pytest.fixture
def wire(database, settings, clock, cli_env) -> Wire:
    settings = settings.model_copy(update={"mqtt": True, "broker_port": free_port()})
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
        configs = {p: register_player(session, p, settings, signer, "http://127.0.0.1:9", clock.now())
                   for p in SCREENS}
    env = {**cli_env, "SIGNAGE_MQTT": "true", "SIGNAGE_BROKER_PORT": str(settings.broker_port)}
    return Wire(database, settings, configs, [str(Path(sys.executable).parent / "signage"), "ingest", "--name",
                                              "faults"], env)


def send_through_a_kill_of_ingest(wire: Wire, spawn, sent: dict[str, list[dict]],
                                  after_restart=lambda worker, players: None) -> list[ProtocolPlayer]:
    """The players send `sent` (records by player) all through a kill -9 of `signage ingest` a quarter of the way in
    and its restart, then send again whatever was not acked until nothing is left; returns the players, stopped.
    `after_restart(worker, players)` runs once the new ingest is connected."""
    total = sum(len(records) for records in sent.values())
    with BrokerSupervisor(wire.settings, wire.database):
        worker = wire.start_ingest(spawn)
        players = [ProtocolPlayer(p, wire.configs[p].password, "127.0.0.1", wire.settings.broker_port).start()
                   for p in sent]
        stop, killed = threading.Event(), threading.Event()
        senders = [threading.Thread(target=keep_sending, args=(p, sent[p.player_id], stop, killed))
                   for p in players]
        try:
            for sender in senders:
                sender.start()
            tick, deadline = threading.Event(), datetime.now(UTC) + timedelta(seconds=60)
            while wire.stored() < total // 4:  # a quarter in: the stream is in full flow
                assert datetime.now(UTC) < deadline, "ingest never got going"
                tick.wait(0.05)
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=30)
            assert wire.stored() < total, "the kill came after the stream ended"
            killed.set()
            worker = wire.start_ingest(spawn)
            after_restart(worker, players)
            for sender in senders:
                sender.join(timeout=120)
            for player in players:
                player.drain(timeout=120, resend_after=5, batch_size=BATCH)
        finally:
            stop.set()
            killed.set()
            for player in players:
                player.stop()
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    return players


def test_ingest_killed_mid_stream_and_restarted_stores_and_counts_every_record_once(wire, spawn):
    sent = {player_id: spot_plays(player_id) for player_id in SCREENS}
    players = send_through_a_kill_of_ingest(wire, spawn, sent)

    assert all(not p.backlog() and not p.rejected for p in players)
    with wire.database.sessions() as session:
        for player_id, records in sent.items():
            ids = list(session.scalars(select(PlayRecord.play_id).where(PlayRecord.player_id == player_id)))
            assert len(ids) == len(set(ids)) == PER_PLAYER
            assert set(ids) == {r["play_id"] for r in records}
            [row] = session.scalars(select(DeliveryRollup).where(DeliveryRollup.screen_id == player_id))
            assert (row.campaign_id, row.local_date.isoformat()) == ("ihanoi-2024", "2024-08-20")
            assert (row.completed_in_peak, row.completed_total, row.makegoods, row.missed) == (
                PER_PLAYER, PER_PLAYER, 0, 0)


# -- the same stream with 1 % of records of each kind of defect (issue 16) ---------------------------------------

DEFECTIVE_PER_PLAYER = PER_PLAYER
REFUSED_BY_THE_DATABASE = "refused-by-the-database"  # a spot_id prefix the test's database will not take

OVER_LONG = [("campaign_id", ID_LENGTH), ("spot_id", SPOT_ID_LENGTH), ("reason", REASON_LENGTH),
             ("plan_version", VERSION_LENGTH), ("play_id", PLAY_ID_LENGTH)]
WITH_NUL = ["spot_id", "campaign_id", "reason", "plan_version", "play_id"]
MISSING = object()
WRONG_TYPES = [("duration_ms", "thirty seconds"), ("campaign_id", 2024), ("started_at", "yesterday"),
               ("media", None), ("kind", 1), ("ended_at", MISSING)]


def over_long(record: dict, turn: int) -> dict:
    """One field a character longer than the column it lands in (signage.limits)."""
    field_name, length = OVER_LONG[turn % len(OVER_LONG)]
    return {**record, field_name: ((record[field_name] or "x") * (length + 1))[:length + 1]}


def with_nul(record: dict, turn: int) -> dict:
    """A NUL inside a text field: PostgreSQL's text columns cannot hold it."""
    field_name = WITH_NUL[turn % len(WITH_NUL)]
    text = record[field_name] or "x"
    return {**record, field_name: f"{text[:8]}\x00{text[8:]}"}


def wrong_type(record: dict, turn: int) -> dict:
    """A field of the wrong type, or left out."""
    field_name, value = WRONG_TYPES[turn % len(WRONG_TYPES)]
    if value is MISSING:
        return {key: value for key, value in record.items() if key != field_name}
    return {**record, field_name: value}


def refused_by_the_database(record: dict, turn: int) -> dict:
    """Valid on the wire, refused by the database (a constraint the test adds): a fault validation did not foresee."""
    return {**record, "spot_id": f"{REFUSED_BY_THE_DATABASE}-{record['spot_id']}"}


DEFECTS = {10: over_long, 30: with_nul, 50: wrong_type}  # n % 100 -> the defect of 1 % of the records
SHARED_PLAY_ID = 90  # n % 100: every player's record there has the first player's play_id
# Rarer, as in life: each costs its round a failure, then its batch a transaction per record.
REFUSED_EVERY, REFUSED_AT = 500, 370  # n % 500 == 370: refused by the database


def defect_at(n: int):
    """The defect of a player's n-th record, or None when it is good."""
    return refused_by_the_database if n % REFUSED_EVERY == REFUSED_AT else DEFECTS.get(n % 100)


def plays_with_defects() -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(sent, good) by player: each player's spots, 1 % of them with each defect of the wire, 0.2 % refused by the
    database, and 1 % whose play_id another player uses too: good records, stored for each player (the key is
    (player_id, play_id), docs/files.md)."""
    sent = {player_id: spot_plays(player_id, DEFECTIVE_PER_PLAYER) for player_id in SCREENS}
    first = sent[SCREENS[0]]
    good = {player_id: [] for player_id in SCREENS}
    for player_id, records in sent.items():
        for n, record in enumerate(records):
            defect = defect_at(n)
            if defect is not None:
                records[n] = defect(record, n // 100)
                continue
            if n % 100 == SHARED_PLAY_ID:
                record["play_id"] = first[n]["play_id"]
            good[player_id].append(record)
    return sent, good


def make_the_database_refuse_spot_ids_starting(database: Database, prefix: str) -> None:
    """A constraint of the test's own on play_records: inserting such a record fails inside the database."""
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "sqlite":
            connection.execute(text(
                f"CREATE TRIGGER refuse_prefix BEFORE INSERT ON play_records WHEN NEW.spot_id LIKE '{prefix}%' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test''s trigger'); END"))
        else:
            connection.execute(text(
                f"ALTER TABLE play_records ADD CONSTRAINT refuse_prefix CHECK (spot_id NOT LIKE '{prefix}%')"))


def send_garbage_and_see_it_dropped(worker: ProcessOutput, players: list[ProtocolPlayer]) -> None:
    """Messages that are not even a batch: logged and dropped by the new ingest, never acked nor retried."""
    for player in players:
        player.send_raw(b"\xff not json")
        player.send_raw(canonical_json({"schema": "signage.pop/1", "records": []}))  # no batch_id: nothing to ack
    unheard = {player.player_id for player in players}
    while unheard:
        line = worker.wait_for("refused a proof-of-play batch from ", timeout=60)
        unheard.discard(line.split(" from ", 1)[1].split(":", 1)[0])


def test_ingest_killed_mid_stream_stores_exactly_the_good_records_and_names_every_bad_one_in_an_ack(wire, spawn):
    sent, good = plays_with_defects()
    make_the_database_refuse_spot_ids_starting(wire.database, REFUSED_BY_THE_DATABASE)
    players = send_through_a_kill_of_ingest(wire, spawn, sent, after_restart=send_garbage_and_see_it_dropped)

    assert [p.backlog() for p in players] == [0] * len(players)  # nothing is left to send again
    for player in players:
        kept = {r["play_id"] for r in good[player.player_id]}
        bad = {r["play_id"] for r in sent[player.player_id]} - kept
        assert len(bad) == sum(defect_at(n) is not None for n in range(DEFECTIVE_PER_PLAYER))
        assert set(player.rejected) == bad
        assert all(reason for reason in player.rejected.values())
        refused = [r["play_id"] for n, r in enumerate(sent[player.player_id])
                   if defect_at(n) is refused_by_the_database]
        assert all(player.rejected[play_id].startswith("the database refused it") for play_id in refused)
    shared = [r["play_id"] for n, r in enumerate(sent[SCREENS[0]]) if n % 100 == SHARED_PLAY_ID]
    with wire.database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlayRecord).where(PlayRecord.play_id.in_(shared))) == (
            len(shared) * len(SCREENS))
        for player_id, records in good.items():
            ids = list(session.scalars(select(PlayRecord.play_id).where(PlayRecord.player_id == player_id)))
            assert len(ids) == len(set(ids)) == len(records)
            assert set(ids) == {r["play_id"] for r in records}
            [row] = session.scalars(select(DeliveryRollup).where(DeliveryRollup.screen_id == player_id))
            assert (row.completed_in_peak, row.completed_total) == (len(records), len(records))
