"""The server in a simulation: the real planning service, plan storage, ingest and ledger, on the virtual
clock, talking to the simulated broker instead of Mosquitto. What the MQTT bridge and the jobs of
scheduler/jobs.py do, called at the virtual times they would run."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

from scheduler.database import Database
from scheduler.ingest import ScreenDirectory, ingest_messages
from scheduler.jobs import PlanningService
from scheduler.mqtt_bridge import signed_plans
from scheduler.planning import PlanningRound, unconfirmed_players
from signage.clock import Clock
from signage.db import transaction
from signage.protocol import Plan, SignedEnvelope, canonical_json
from signage.signing import Signer
from simulation.network import SimulatedBroker

INGEST_ROUND = 400  # messages per transaction, as the bridge takes them (MAX_MESSAGES_PER_ROUND)


class SimulatedServer:
    def __init__(self, database: Database, clock: Clock, timezone: str, signer: Signer,
                 broker: SimulatedBroker) -> None:
        self.database = database
        self.clock = clock
        self.signer = signer
        self.broker = broker
        self.directory = ScreenDirectory()
        self.service = PlanningService(database, clock, timezone, on_plans_changed=self._plans_changed)
        self.up = True
        self.stats: Counter = Counter()
        # Peak windows of each player's newest plans, for the run's checks: (player, local date) -> spans.
        self.peak_windows: dict[tuple[str, date], list[tuple[datetime, datetime]]] = {}

    def _plans_changed(self, planned: PlanningRound) -> None:
        self.publish_plans(planned.changed)

    def publish_plans(self, player_ids: list[str]) -> int:
        envelopes = signed_plans(self.database, self.signer, player_ids)
        for player_id, envelope in envelopes.items():
            self._note_peak_windows(Plan.model_validate(SignedEnvelope.model_validate_json(envelope).payload))
            if self.broker.publish_to_player(player_id, "plan", envelope, retain=True):
                self.stats["plans published"] += 1
        return len(envelopes)

    def _note_peak_windows(self, plan: Plan) -> None:
        by_day: dict[date, list[tuple[datetime, datetime]]] = {}
        zone = ZoneInfo(plan.timezone)
        for span in plan.peak_windows:
            by_day.setdefault(span.start.astimezone(zone).date(), []).append((span.start, span.end))
        for day, spans in by_day.items():
            self.peak_windows[(plan.player_id, day)] = spans

    def republish_unconfirmed(self) -> int:
        with self.database.sessions() as session:
            stale = unconfirmed_players(session)
        return self.publish_plans(stale)

    def ingest_round(self) -> int:
        """Take up to a round of what the players sent; acks go out after the commit. Returns messages taken."""
        if not self.up or not self.broker.up or not self.broker.to_server:
            return 0
        items = [self.broker.to_server.popleft() for _ in range(min(INGEST_ROUND, len(self.broker.to_server)))]
        pops = [(player, payload) for kind, player, payload in items if kind == "pop"]
        statuses = [(player, payload) for kind, player, payload in items if kind == "status"]
        with transaction(self.database.sessions) as session:
            outcome = ingest_messages(session, pops, statuses, self.directory, self.clock.now())
        self.stats["inserted"] += outcome.inserted
        self.stats["duplicates"] += outcome.duplicates
        self.stats["rejected"] += sum(outcome.rejected.values())
        self.stats["statuses"] += outcome.statuses
        for player_id, ack in outcome.acks:
            self.broker.publish_to_player(player_id, "ack", canonical_json(ack))
        return len(items)

    # -- the jobs of scheduler/jobs.py ----------------------------------------------------------------------

    def replan_if_needed(self) -> None:
        if self.up:
            self.service.tick()

    def daily_roll(self) -> None:
        if self.up:
            self.service.daily_roll()

    def update_campaign_statuses(self) -> None:
        if self.up:
            self.service.update_campaign_statuses()

    def close_ledger_days(self) -> None:
        if self.up:
            self.service.close_ledger_days()

    def come_back(self) -> None:
        """Started again after downtime (or reconnected after a broker outage): plan, and send again every
        plan a player has not confirmed."""
        self.up = True
        self.service.tick(force=True)
        self.republish_unconfirmed()
