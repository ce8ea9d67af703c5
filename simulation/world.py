"""Setting a simulation up from files: the database, the fleet and campaigns imported as the real imports do, a
signing key, the simulated broker and server, and one simulated player per screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from campaigns.fleet_file import import_fleet
from campaigns.models import Screen, Site
from media.store import MediaStore
from scheduler.capacity import import_campaigns_checked
from scheduler.database import Database, migrate
from signage.clock import OffsetClock, VirtualClock
from signage.db import make_engine, make_session_factory, transaction
from signage.player_config import PlayerConfig
from signage.signing import Signer, public_key_text
from simulation.engine import AgentOptions, SimulatedPlayer, Simulation
from simulation.faults import FaultFile, expand
from simulation.media import SimulatedCache
from simulation.network import SimulatedBroker
from simulation.server import SimulatedServer

# The closing job runs at :20; the run goes on past the last midnight until the last day is closed.
CLOSING_MARGIN = timedelta(minutes=30)


@dataclass
class World:
    simulation: Simulation
    database: Database
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    data_dir: Path

    @property
    def server(self) -> SimulatedServer:
        return self.simulation.server


def database_at(url: str) -> Database:
    engine = make_engine(url)
    migrate(engine)
    return Database(engine, make_session_factory(engine))


def build_world(fleet_file: Path, campaign_file: Path, faults: FaultFile, first_day: date, last_day: date,
                work_dir: Path, timezone: str, *, database_url: str | None = None,
                options: AgentOptions | None = None, bytes_per_second: float = 2_000_000) -> World:
    """Everything a run needs, with the clock at local midnight of `first_day`. Raises FileRejected for a bad
    fleet or campaign file (a campaign's capacity shortfall is kept: it shows as `no_capacity`) and ValueError
    for a fault file that names players the fleet lacks."""
    if last_day < first_day:
        raise ValueError(f"the run ends ({last_day}) before it starts ({first_day}); give --to on or after --from")
    work_dir.mkdir(parents=True, exist_ok=True)
    zone = ZoneInfo(timezone)
    start = datetime.combine(first_day, time(0), zone)
    end = datetime.combine(last_day + timedelta(days=1), time(0), zone) + CLOSING_MARGIN
    clock = VirtualClock(start)
    database = database_at(database_url or f"sqlite:///{work_dir / 'simulation.db'}")
    with transaction(database.sessions) as session:
        import_fleet(session, fleet_file, timezone)
    with transaction(database.sessions) as session:
        import_campaigns_checked(session, campaign_file, MediaStore(work_dir / "media"), clock, timezone,
                                 allow_shortfall=True)
    with database.sessions() as session:
        screens = {screen_id: (kind.value, site_zone) for screen_id, kind, site_zone in session.execute(
            select(Screen.id, Screen.kind, Site.timezone).join(Site, Screen.site_id == Site.id).order_by(Screen.id))}
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    schedule = expand(faults, screens, days)

    signer = Signer(Ed25519PrivateKey.generate())
    simulation: Simulation | None = None
    broker = SimulatedBroker(lambda player_id, topic, payload: simulation.deliver(player_id, topic, payload))
    server = SimulatedServer(database, clock, timezone, signer, broker)
    data_dir = work_dir / "players"
    players = {}
    for player_id in screens:
        timeline = schedule.of(player_id)
        own_clock = OffsetClock(clock, timeline.clock_offset)
        config = PlayerConfig(player_id=player_id, username=player_id, password="simulated",
                              server_url="http://simulated.invalid", public_keys=[public_key_text(signer.public_key)],
                              data_dir=str(data_dir / player_id), headless=True)
        players[player_id] = SimulatedPlayer(player_id, config, timeline, own_clock,
                                             SimulatedCache(own_clock, timeline.download_fails, bytes_per_second))
    simulation = Simulation(clock, server, broker, players, schedule, options or AgentOptions())
    simulation.schedule_faults(start, end)
    simulation.schedule_jobs(start, end, zone)
    return World(simulation, database, start, end, first_day, last_day, data_dir)


def begin(world: World) -> None:
    """The server's first round (statuses, plans published retained), then every player that is not down."""
    world.server.update_campaign_statuses()
    world.server.service.tick(force=True)
    world.simulation.start_players()
