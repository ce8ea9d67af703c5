"""Report speed on a city-sized ledger: the compliance report for the whole city and the streamed CSV export of a
five-million-row proof-of-play log.

    .venv/bin/python bench/reports.py [--screens 10000] [--days 30] [--plays 5000000] [--database-url URL]

A generator process first fills a database (SQLite in a temporary directory unless a URL is given): a city of 30
districts of 10 wards each, their sites and screens, one campaign, a ledger row per screen-day (about one in
twelve short, with causes) and the plays. Then this process, fresh, measures:
- the compliance report's figures for the whole city (`summarise`: every level and every day), and its first
  page of screen-days (the 200 shortest, as the web page shows);
- the proof-of-play log exported as CSV (`operations.pop_log_csv`, what `signage report pop` and the API stream:
  COPY on PostgreSQL, the log's covering index on SQLite), streamed to a file; with --general, also through the
  general exporter (`exports.write_csv` on `operations.pop_log`);
and prints the times, rows per second, the CPU seconds spent (this process, and the PostgreSQL backend when it
runs on this machine: the machine is shared, so these say what the export costs whatever runs beside it), the
load average, and the peak memory of this process (the generation is not counted).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from campaigns.kinds import CampaignStatus, OrgKind, ScreenKind, SiteKind, WindowPolicy  # noqa: E402
from campaigns.models import Campaign, Organisation, Screen, Site  # noqa: E402
from scheduler.database import open_database  # noqa: E402
from scheduler.models import DeliveryRollup, PlayRecord  # noqa: E402
from signage.config import Settings  # noqa: E402

FIRST = date(2024, 9, 1)
CAUSES = ["offline", "media_missing", "playback_error", "no_plan", "no_capacity"]


def generate(url: str, screens: int, days: int, plays: int, seed: int) -> None:
    rng = random.Random(seed)
    settings = Settings(_env_file=None, database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="signage-bench-")),
                        mqtt=False)
    database = open_database(settings)
    screen_rows = make_city(database, screens, days)
    made = generate_ledger_and_plays(database, screen_rows, days, plays, rng)
    database.dispose()
    print(f"generated {len(screen_rows):,} screens at {len({s['site_id'] for s in screen_rows}):,} sites, "
          f"{screens * days:,} ledger rows, {made:,} plays", flush=True)


def make_city(database, screens: int, days: int) -> list[dict]:
    """A city of 30 districts of 10 wards, three sites a ward and `screens` screens over them, and one campaign of
    `days` days from FIRST; returns the screens' rows."""
    now = datetime(2024, 10, 1, tzinfo=UTC)
    orgs = [{"id": "hn", "name": "UBND Thành phố Hà Nội", "kind": OrgKind.city, "parent_id": None, "path": "/hn/"}]
    wards = []
    for d in range(30):
        district = f"d{d:02d}"
        orgs.append({"id": district, "name": f"Quận {d:02d}", "kind": OrgKind.district, "parent_id": "hn",
                     "path": f"/hn/{district}/"})
        for w in range(10):
            ward = f"{district}-w{w}"
            orgs.append({"id": ward, "name": f"Phường {d:02d}.{w}", "kind": OrgKind.ward, "parent_id": district,
                         "path": f"/hn/{district}/{ward}/"})
            wards.append(ward)
    kinds = [SiteKind.ward_office, SiteKind.bus_station, SiteKind.intersection, SiteKind.hospital]
    sites: dict[str, dict] = {}
    screen_rows = []
    for index in range(screens):
        ward = wards[index % len(wards)]
        site_id = f"{ward}-s{(index // len(wards)) % 3}"  # three sites per ward
        sites.setdefault(site_id, {"id": site_id, "name": f"Điểm {site_id}", "kind": kinds[len(sites) % len(kinds)],
                                   "organisation_id": ward, "timezone": "Asia/Ho_Chi_Minh", "address": None,
                                   "operating_hours": None, "peak_windows": None})
        screen_rows.append({"id": f"{site_id}-{index:05d}", "site_id": site_id, "name": f"Màn hình {index}",
                            "kind": ScreenKind.lcd, "width": 1920, "height": 1080, "orientation": None,
                            "enabled": True})
    with database.sessions() as session, session.begin():
        session.execute(insert(Organisation), orgs)
        session.execute(insert(Site), list(sites.values()))
        session.execute(insert(Screen), screen_rows)
        session.execute(insert(Campaign), [{
            "id": "ihanoi", "organisation_id": "hn", "name": "iHanoi", "description": None, "start_date": FIRST,
            "end_date": FIRST + timedelta(days=days - 1), "plays_per_day": 10, "window_policy": WindowPolicy.peak,
            "explicit_windows": None, "priority": 0, "status": CampaignStatus.active, "created_at": now,
            "updated_at": now}])
    return screen_rows


def generate_ledger_and_plays(database, screen_rows: list[dict], days: int, plays: int, rng: random.Random) -> int:
    screens = len(screen_rows)
    ledger = []
    for screen in screen_rows:
        for day in range(days):
            short = rng.random() < 0.08
            delivered = rng.randint(0, 9) if short else 10 + (rng.random() < 0.2)
            ledger.append({"screen_id": screen["id"], "campaign_id": "ihanoi", "local_date": FIRST + timedelta(day),
                           "completed_in_peak": delivered, "completed_total": delivered + rng.randint(0, 2),
                           "makegoods": rng.randint(0, 1), "interrupted": 0, "failed": 0, "missed": 10 - delivered
                           if short else 0, "media_missing": 0, "required": 10, "planned": 10,
                           "plan_reason": None, "cause": rng.choice(CAUSES) if short else None, "closed": True})
    with database.sessions() as session, session.begin():
        for start in range(0, len(ledger), 50_000):
            session.execute(insert(DeliveryRollup), ledger[start:start + 50_000])
    del ledger
    slots = screens * days
    made = 0
    with database.sessions() as session, session.begin():
        chunk = []
        for day in range(days):
            base = datetime(FIRST.year, FIRST.month, FIRST.day, 1, 0, tzinfo=UTC) + timedelta(days=day)
            for index, screen in enumerate(screen_rows):
                slot = day * screens + index  # exactly `plays` in all, spread evenly over the screen-days
                for n in range(plays * (slot + 1) // slots - plays * slot // slots):
                    start = base + timedelta(seconds=n * 600 + rng.randint(0, 60))
                    made += 1
                    chunk.append({"play_id": f"{made:032x}", "player_id": screen["id"], "spot_id": f"sp-{made}",
                                  "campaign_id": "ihanoi", "media": "ab" * 32, "kind": "spot",
                                  "scheduled_start": start, "started_at": start,
                                  "ended_at": start + timedelta(seconds=30), "duration_ms": 30000,
                                  "status": "completed", "reason": None, "plan_version": "v",
                                  "local_date": FIRST + timedelta(day), "in_peak": True, "received_at": start})
            if len(chunk) >= 100_000 or day == days - 1:
                session.execute(insert(PlayRecord), chunk)
                chunk = []
    return made


def measure(url: str, general: bool) -> None:
    from scheduler.reports.build import build_report, make_scope
    from scheduler.reports.compliance import screen_days, summarise
    from scheduler.reports.exports import write_csv

    settings = Settings(_env_file=None, database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="signage-bench-")),
                        mqtt=False)
    database = open_database(settings)
    today = date(2024, 10, 1)
    with database.sessions() as session:
        scope = make_scope(session, None, FIRST, today - timedelta(days=1), "ihanoi", today)
        started, cpu = time.perf_counter(), time.process_time()
        summary = summarise(session, scope)
        shortest = list(screen_days(session, scope, limit=200))
        report_seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"compliance report, whole city ({summary.total.screen_days:,} screen-days, "
              f"{len(summary.by_site):,} sites, {len(summary.by_unit)} districts): {report_seconds:.2f} s "
              f"(with the first {len(shortest)} screen-days; CPU of this process {cpu:.2f} s)   target <= 2 s")
        from scheduler.reports.operations import pop_log_csv

        server = _server_process(session)
        load = os.getloadavg()[0]
        with tempfile.NamedTemporaryFile(suffix=".csv") as out:
            started, cpu, server_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(server)
            lines = 0
            for chunk in pop_log_csv(session, scope, "Asia/Ho_Chi_Minh"):
                out.write(chunk)
                lines += chunk.count(b"\n")
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            server_cpu = _cpu_seconds(server) - server_cpu if server else None
            size = Path(out.name).stat().st_size
        rows = lines - 1
        print(f"proof-of-play log CSV export (what `signage report pop` and the API stream): {rows:,} rows, "
              f"{size / 2**20:.0f} MiB in {seconds:.1f} s = {rows / seconds:,.0f} rows/s   target >= 200,000 rows/s")
        # The machine is shared: CPU seconds say what the export costs whatever else runs beside it.
        on_server = f", database server process {server_cpu:.1f} s" if server_cpu is not None else ""
        print(f"  CPU: this process {cpu:.1f} s = {rows / cpu:,.0f} rows per CPU second{on_server}; load average "
              f"{load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
        if general:
            report = build_report(session, "pop", scope, datetime(2024, 10, 1, tzinfo=UTC), "vi",
                                  "Asia/Ho_Chi_Minh")
            with tempfile.NamedTemporaryFile(suffix=".csv") as out:
                started = time.perf_counter()
                write_csv(report, out)
                seconds = time.perf_counter() - started
            print(f"  the same through the general exporter (pop_log dicts, exports.write_csv): "
                  f"{rows / seconds:,.0f} rows/s")
    database.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the measuring process: {peak:.0f} MB   target < 300 MB")


def _server_process(session) -> int | None:
    """The PostgreSQL backend serving this session, when it runs on this machine (its CPU time is read from /proc)."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return None
    pid = session.scalar(text("SELECT pg_backend_pid()"))
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime, in clock ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screens", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--plays", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="an empty database to fill (default: SQLite in a temporary dir)")
    parser.add_argument("--reuse", action="store_true", help="the --database-url is filled already: measure only")
    parser.add_argument("--general", action="store_true", help="also time the general exporter on the log")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.database_url, args.screens, args.days, args.plays, args.seed)
        return
    if args.reuse and args.database_url:
        measure(args.database_url, args.general)
        return
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as directory:
        url = args.database_url or f"sqlite:///{directory}/signage.db"
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate", "--database-url", url, "--screens",
                        str(args.screens), "--days", str(args.days), "--plays", str(args.plays), "--seed",
                        str(args.seed)], check=True)
        print(f"(generation took {time.perf_counter() - started:.0f} s, in its own process)")
        measure(url, args.general)


if __name__ == "__main__":
    main()
