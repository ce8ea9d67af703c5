"""The simulation's event loop: every player agent, the server's jobs and ingest, and the faults, in the order of
virtual time.

Each player runs the real PlayerAgent (programme, make-goods, journal, acks, alerts) with TimedPlayback, the
simulated broker for its MQTT client and the simulated cache for its downloads. An agent gets a turn when it has
something to do: an event (a message, a playback end), or a deadline it names itself (`next_deadline`), so a day
of a screen costs a few hundred turns, not 86,400 seconds.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from player.agent import PlayerAgent
from player.playback import TimedPlayback
from signage.clock import OffsetClock, VirtualClock
from signage.player_config import PlayerConfig
from simulation.faults import FaultSchedule, PlayerTimeline
from simulation.media import SimulatedCache
from simulation.network import PlayerLink, SimulatedBroker
from simulation.server import SimulatedServer

log = logging.getLogger("signage.simulate")

INGEST_EVERY = timedelta(seconds=1)  # the bridge's worker takes what arrived about once a second under load
MIN_STEP = timedelta(milliseconds=100)  # a turn never schedules the next one sooner: no busy loop on a stuck item


@dataclass
class SimulatedPlayer:
    player_id: str
    config: PlayerConfig
    timeline: PlayerTimeline
    clock: OffsetClock
    cache: SimulatedCache
    agent: PlayerAgent | None = None
    down: Counter = field(default_factory=Counter)  # why it is not running: "offline", "crash"
    network_down: int = 0
    wake_at: datetime | None = None
    generation: int = 0  # bumped when the agent dies: its pending turns are void


@dataclass
class AgentOptions:
    play_filler: bool = False
    status_every: timedelta = timedelta(minutes=5)


class Simulation:
    def __init__(self, clock: VirtualClock, server: SimulatedServer, broker: SimulatedBroker,
                 players: dict[str, SimulatedPlayer], faults: FaultSchedule, options: AgentOptions) -> None:
        self.clock = clock
        self.server = server
        self.broker = broker
        self.players = players
        self.faults = faults
        self.options = options
        self.turns = 0
        self.crashes = 0
        self._queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._ingest_at: datetime | None = None

    # -- the queue of what happens when ----------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def run_until(self, end: datetime, progress: Callable[[datetime], None] | None = None) -> None:
        """Play everything due up to `end` in order of time, then leave the clock at `end`."""
        next_report = self.clock.now()
        while self._queue and self._queue[0][0] <= end:
            when, _, action = heapq.heappop(self._queue)
            if when > self.clock.now():
                self.clock.set(when)
            action()
            if self.broker.to_server and self._ingest_at is None:
                self._ingest_at = self.clock.now() + INGEST_EVERY
                self.at(self._ingest_at, self._ingest)
            if progress is not None and self.clock.now() >= next_report:
                progress(self.clock.now())
                next_report = self.clock.now() + timedelta(minutes=10)
        self.clock.set(max(end, self.clock.now()))
        if progress is not None:
            progress(self.clock.now())

    def drain(self) -> None:
        """Ingest everything still on its way to the server (the end of a run)."""
        while self.broker.to_server and self.server.up and self.broker.up:
            self.server.ingest_round()

    def _ingest(self) -> None:
        self._ingest_at = None
        self.server.ingest_round()
        if self.broker.to_server and self.server.up and self.broker.up:
            self._ingest_at = self.clock.now()
            self.at(self._ingest_at, self._ingest)

    # -- players ------------------------------------------------------------------------------------------

    def deliver(self, player_id: str, topic: str, payload: bytes) -> None:
        """The broker hands a message to a connected player."""
        player = self.players[player_id]
        if player.agent is not None:
            player.agent.events.put(("mqtt", (topic, payload)))
            self._wake(player, self.clock.now())

    def _wake(self, player: SimulatedPlayer, when: datetime) -> None:
        if player.wake_at is not None and player.wake_at <= when:
            return
        player.wake_at = when
        generation = player.generation
        self.at(when, lambda: self._turn(player, when, generation))

    def _turn(self, player: SimulatedPlayer, when: datetime, generation: int) -> None:
        if player.generation != generation or player.wake_at != when or player.agent is None:
            return  # a turn replaced by an earlier one, or of an agent that died
        player.wake_at = None
        agent = player.agent
        self.turns += 1
        agent.playback.advance()
        if agent.media_sync.take_wish() or player.cache.retry_due(player.clock.now()):
            agent.cache_pass()
        stepped = False
        while True:
            try:
                kind, value = agent.events.get_nowait()
            except queue.Empty:
                break
            agent.step(kind, value)
            stepped = True
        if not stepped:
            agent.step()
        self._schedule_turn(player)

    def _schedule_turn(self, player: SimulatedPlayer) -> None:
        agent = player.agent
        own_now = player.clock.now()
        wanted = [agent.next_deadline(own_now)]
        if agent.playback.ends_at is not None:
            wanted.append(agent.playback.ends_at)
        change = player.cache.next_change(own_now)
        if change is not None:
            wanted.append(change)
        when = min(wanted) - player.clock.offset
        self._wake(player, max(when, self.clock.now() + MIN_STEP))

    def _start_agent(self, player: SimulatedPlayer) -> None:
        player.agent = PlayerAgent(
            player.config, player.clock, lambda post: TimedPlayback(post, clock=player.clock),
            client_factory=lambda agent: PlayerLink(self.broker, player.player_id), cache=player.cache,
            durable_journal=False, play_filler=self.options.play_filler, status_every=self.options.status_every)
        player.agent.events.put(("start", None))
        self._connect(player)
        self._wake(player, self.clock.now())

    def _connect(self, player: SimulatedPlayer) -> None:
        if player.agent is None or player.network_down or not self.broker.up:
            return
        player.agent.events.put(("connected", None))
        self.broker.connect(player.player_id)
        self._wake(player, self.clock.now())

    def _kill_agent(self, player: SimulatedPlayer) -> None:
        """As a kill -9 or a power cut: no ending record for what plays, the journal as it was committed."""
        if player.agent is None:
            return
        self.broker.drop(player.player_id, unclean=True)
        player.agent.journal.close()
        player.agent = None
        player.generation += 1
        player.wake_at = None

    def start_players(self) -> None:
        for player in self.players.values():
            if not player.down:
                self._start_agent(player)

    def stop_players(self) -> None:
        """The end of the run: every agent stops cleanly."""
        for player in self.players.values():
            if player.agent is not None:
                player.agent.close()
                player.agent = None
                player.generation += 1

    # -- faults ----------------------------------------------------------------------------------------------

    def schedule_faults(self, first: datetime, end: datetime) -> None:
        """Put every fault of the schedule inside [first, end) on the queue."""
        def inside(moment: datetime) -> bool:
            return first <= moment < end

        for player_id, timeline in self.faults.players.items():
            player = self.players[player_id]
            for span in timeline.offline:
                self._span(span.start, span.end, inside, lambda p=player: self._go_down(p, "offline"),
                           lambda p=player: self._come_up(p, "offline"))
            for at, down_for in timeline.crashes:
                self._span(at, at + down_for, inside, lambda p=player: self._go_down(p, "crash"),
                           lambda p=player: self._come_up(p, "crash"))
            for span in timeline.network_down:
                self._span(span.start, span.end, inside, lambda p=player: self._network(p, False),
                           lambda p=player: self._network(p, True))
        for span in self.faults.broker_outages:
            self._span(span.start, span.end, inside, self._broker_down, self._broker_up)
        for span in self.faults.server_downtime:
            self._span(span.start, span.end, inside, self._server_down, self._server_up)

    def _span(self, start: datetime, end: datetime, inside, begin: Callable[[], None],
              finish: Callable[[], None]) -> None:
        if inside(start):
            self.at(start, begin)
            self.at(end, finish)

    def _go_down(self, player: SimulatedPlayer, why: str) -> None:
        if why == "crash":
            self.crashes += 1
        player.down[why] += 1
        self._kill_agent(player)

    def _come_up(self, player: SimulatedPlayer, why: str) -> None:
        player.down[why] -= 1
        if player.down[why] <= 0:
            del player.down[why]
        if not player.down and player.agent is None:
            self._start_agent(player)

    def _network(self, player: SimulatedPlayer, up: bool) -> None:
        player.network_down += -1 if up else 1
        if not up:
            self.broker.drop(player.player_id, unclean=True)
        elif player.network_down == 0:
            self._connect(player)

    def _broker_down(self) -> None:
        self.broker.up = False
        for player_id in list(self.broker.connected):
            self.broker.drop(player_id, unclean=False)

    def _broker_up(self) -> None:
        self.broker.up = True
        for player in self.players.values():
            self._connect(player)
        if self.server.up:
            self.server.republish_unconfirmed()

    def _server_down(self) -> None:
        self.server.up = False

    def _server_up(self) -> None:
        self.server.come_back()

    # -- the server's timed jobs (scheduler/jobs.py) ------------------------------------------------------------

    def schedule_jobs(self, first: datetime, end: datetime, zone) -> None:
        """The jobs at their local times: statuses at 00:01, the daily roll at 00:05, the ledger's close at
        :20 every hour, and a look for what changed every hour."""
        hour = first.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        while hour < end:
            local = hour.astimezone(zone)
            if local.hour == 0:
                self.at(hour + timedelta(minutes=1), self.server.update_campaign_statuses)
                self.at(hour + timedelta(minutes=5), self.server.daily_roll)
            self.at(hour + timedelta(minutes=20), self.server.close_ledger_days)
            self.at(hour + timedelta(minutes=30), self.server.replan_if_needed)
            hour += timedelta(hours=1)


def journal_figures(players: dict[str, SimulatedPlayer], data_dir: Path) -> dict[str, int]:
    """Over every player's journal: records ever appended, still unacknowledged, and refused by the server."""
    from player.journal import Journal

    totals: Counter = Counter()
    for player_id in players:
        path = data_dir / player_id / "journal.db"
        if not path.exists():
            continue
        with Journal(path, durable=False) as journal:
            totals["appended"] += journal.appended()
            totals["backlog"] += journal.backlog()
            totals["dead letters"] += len(journal.dead_letters())
    return dict(totals)
