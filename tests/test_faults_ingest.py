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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore
from scheduler.broker import BrokerSupervisor
from scheduler.models import DeliveryRollup, PlayRecord
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import canonical_json
from signage.signing import Signer
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE
from tests.pg_server import free_port
from tests.protocol_client import ProtocolPlayer, pop_record

pytestmark = pytest.mark.faults

SCREENS = ("hn-hadong-vanquan-001", "hn-hadong-phula-001", "hn-hadong-phula-002")  # ward offices
PER_PLAYER = 2400
BATCH = 60
PEAK_START = datetime(2024, 8, 20, 1, 0, tzinfo=UTC)  # Tuesday 08:00 in Hà Nội: a ward office's morning peak


def spot_plays(player_id: str) -> list[dict]:
    """Completed iHanoi spots two seconds apart from 08:00: all inside the morning peak."""
    return [pop_record(player_id, media="cd" * 32, start=PEAK_START + timedelta(seconds=2 * n),
                       spot_id=f"{player_id}-{n}") for n in range(PER_PLAYER)]


def keep_sending(player: ProtocolPlayer, records: list[dict], stop: threading.Event) -> None:
    """Journal and publish the records batch by batch, as plays happen, whoever is listening."""
    pace = threading.Event()
    for start in range(0, len(records), BATCH):
        if stop.is_set():
            return
        chunk = records[start:start + BATCH]
        player.record(chunk)
        player.send_raw(canonical_json({"schema": "signage.pop/1", "batch_id": str(uuid.uuid4()), "records": chunk}))
        pace.wait(0.02)


def test_ingest_killed_mid_stream_and_restarted_stores_and_counts_every_record_once(
        database, settings, clock, spawn, cli_env):
    settings = settings.model_copy(update={"mqtt": True, "broker_port": free_port()})
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
        configs = {p: register_player(session, p, settings, signer, "http://127.0.0.1:9", clock.now())
                   for p in SCREENS}
    env = {**cli_env, "SIGNAGE_MQTT": "true", "SIGNAGE_BROKER_PORT": str(settings.broker_port)}
    command = [str(Path(sys.executable).parent / "signage"), "ingest", "--name", "faults"]

    def stored() -> int:
        with database.sessions() as session:
            return session.scalar(select(func.count()).select_from(PlayRecord))

    with BrokerSupervisor(settings, database):
        worker = spawn(command, env)
        worker.wait_for("connected to the broker", timeout=60)
        players = [ProtocolPlayer(p, configs[p].password, "127.0.0.1", settings.broker_port).start() for p in SCREENS]
        sent = {p.player_id: spot_plays(p.player_id) for p in players}
        stop = threading.Event()
        senders = [threading.Thread(target=keep_sending, args=(p, sent[p.player_id], stop)) for p in players]
        try:
            for sender in senders:
                sender.start()
            tick, deadline = threading.Event(), datetime.now(UTC) + timedelta(seconds=60)
            while stored() < len(SCREENS) * PER_PLAYER // 4:  # a quarter in: the stream is in full flow
                assert datetime.now(UTC) < deadline, "ingest never got going"
                tick.wait(0.05)
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=30)
            assert stored() < len(SCREENS) * PER_PLAYER, "the kill came after the stream ended"
            worker = spawn(command, env)
            worker.wait_for("connected to the broker", timeout=60)
            for sender in senders:
                sender.join(timeout=120)
            for player in players:
                player.drain(timeout=120, resend_after=5)
        finally:
            stop.set()
            for player in players:
                player.stop()
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0

    assert all(not p.backlog() and not p.rejected for p in players)
    with database.sessions() as session:
        for player_id, records in sent.items():
            ids = list(session.scalars(select(PlayRecord.play_id).where(PlayRecord.player_id == player_id)))
            assert len(ids) == len(set(ids)) == PER_PLAYER
            assert set(ids) == {r["play_id"] for r in records}
            [row] = session.scalars(select(DeliveryRollup).where(DeliveryRollup.screen_id == player_id))
            assert (row.campaign_id, row.local_date.isoformat()) == ("ihanoi-2024", "2024-08-20")
            assert (row.completed_in_peak, row.completed_total, row.makegoods, row.missed) == (
                PER_PLAYER, PER_PLAYER, 0, 0)
