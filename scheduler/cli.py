"""The server's commands: `signage server`, `ingest`, `demo`, `plan`, `db upgrade|prune`,
`fleet import|export`, `campaign import|list`, `user create|password`; mounted by signage_cli. The broker's and the
players' credentials are in broker_cli, the reports' in reports/cli.

The player's install (without the [server] extra) imports this module for `signage --help`: at the top it
imports Typer, Rich and the kernel only; server code is imported inside the commands, after server_modules() has
said what is missing.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from signage.config import Settings
from signage.console import JsonOpt, err, fail, out, print_table, settings

fleet_app = typer.Typer(help="Organisations, sites and screens: import and export the fleet file.",
                        no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: import campaign files, list what is scheduled.", no_args_is_help=True)
db_app = typer.Typer(help="The database: migrate it to the newest schema; prune what retention lets go.",
                      no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts: create the first admin, reset a password.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="The YAML file.", dir_okay=False)]


def server_modules():
    """The server's storage module, or an exit that says which package is missing and how to install it."""
    try:
        import sqlalchemy  # noqa: F401

        from scheduler import database
    except ImportError as exc:
        raise fail(f"this verb runs on the server and needs its packages ({exc.name} is missing); "
                   "install them with: pip install 'hanoi-signage[server]'") from None
    return database


@contextmanager
def server_session() -> Iterator:
    """A session of the configured database, its work committed together when the block ends, or not at all; a
    refusal (Invalid) ends the command with its message; the database is closed after."""
    from signage.db import transaction
    from signage.errors import Invalid

    database = server_modules().open_database(settings())
    try:
        with transaction(database.sessions) as session:
            yield session
    except Invalid as exc:
        raise fail(str(exc)) from None
    finally:
        database.dispose()


def run_import(action, as_json: bool) -> None:
    """Run an import in one transaction; report counts, or the file's problems with exit code 2."""
    from campaigns.yaml_source import FileRejected

    try:
        with server_session() as session:
            report = action(session)
    except FileRejected as rejected:
        if as_json:
            print(json.dumps({"ok": False, **rejected.as_json()}, ensure_ascii=False, indent=2))
        else:
            err.print(f"[bold red]{escape(rejected.filename)} was not imported[/]; nothing was changed:",
                      highlight=False)
            for problem in rejected.problems:
                err.print("  " + escape(problem.render(rejected.filename)), highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"ok": True, **report.as_json()}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Imported {report.file}" + ("" if report.changed else " (nothing changed)"))
    for column in ("", "created", "updated", "unchanged"):
        table.add_column(column, justify="right" if column else "left")
    for entity, counts in report.counts.items():
        table.add_row(entity, str(counts.created), str(counts.updated), str(counts.unchanged))
    print_table(table)


@fleet_app.command("import")
def fleet_import(file: FileArg, as_json: JsonOpt = False) -> None:
    """Create or update organisations, sites, groups and screens from a signage.fleet/1 file (all or nothing)."""
    from campaigns.fleet_file import import_fleet

    timezone = settings().timezone
    run_import(lambda session: import_fleet(session, file, timezone), as_json)


@fleet_app.command("export")
def fleet_export(
    output: Annotated[Path | None, typer.Option("--out", help="Write here instead of standard output.")] = None,
) -> None:
    """Write the database's fleet as a signage.fleet/1 file that imports back to the same state."""
    from campaigns.fleet_file import export_fleet

    with server_session() as session:
        text = export_fleet(session)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@campaign_app.command("import")
def campaign_import(
    file: FileArg,
    allow_shortfall: Annotated[bool, typer.Option(
        "--allow-shortfall", help="Save even where screens cannot take every spot; the shortfall is recorded "
        "and reported as 'no capacity'.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or update campaigns, their media, targets and overrides from a signage.campaigns/1 file,
    refusing it if some targeted screen-day cannot take its spots."""
    server_modules()
    from media.store import MediaStore
    from scheduler.capacity import import_campaigns_checked
    from signage.clock import SystemClock

    config = settings()
    found: list = []

    def action(session):
        report, shortfalls = import_campaigns_checked(session, file, MediaStore(config.media_dir), SystemClock(),
                                                      config.timezone, allow_shortfall=allow_shortfall)
        found.extend(shortfalls)
        return report

    with err.status("probing media, checking the campaigns and their capacity…"):
        run_import(action, as_json)
    if found and not as_json:
        missing = sum(s.missing for s in found)
        err.print(f"saved with a recorded shortfall: {missing} spots on {len(found)} site-days (no capacity)")


@campaign_app.command("list")
def campaign_list(as_json: JsonOpt = False) -> None:
    """List campaigns with their dates, rates (each place a head raised, and who), window and status."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload, selectinload

    from campaigns.models import Campaign
    from campaigns.overrides import all_unit_rates

    database = server_modules().open_database(settings())
    try:
        with database.sessions() as session:
            campaigns = list(session.scalars(
                select(Campaign).options(joinedload(Campaign.organisation), selectinload(Campaign.creatives))
                .order_by(Campaign.start_date, Campaign.id)))
            rates = all_unit_rates(session, campaigns)
            rows = [{"id": c.id, "name": c.name, "organisation": c.organisation_id,
                     "organisation_name": c.organisation.name, "start_date": str(c.start_date),
                     "end_date": str(c.end_date), "plays_per_day": c.plays_per_day,
                     "rates": [{"organisation": r.override.row.organisation_id, "site": r.override.row.site_id,
                                "place": r.override.place_name, "plays_per_day": r.plays_per_day,
                                "raised_by": r.raised_by.row.set_by, "raised_by_name": r.raised_by.set_by_name}
                               for r in rates[c.id]],
                     "window": c.window_policy.value, "status": c.status.value, "creatives": len(c.creatives)}
                    for c in campaigns]
    finally:
        database.dispose()
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table()
    for column in ("id", "name", "organisation", "start_date", "end_date", "plays_per_day", "window", "status"):
        table.add_column(column)
    for row in rows:
        raised = [f"{r['place']}: {r['plays_per_day']} ({r['raised_by_name']})" for r in row["rates"]]
        table.add_row(row["id"], row["name"], row["organisation_name"], row["start_date"], row["end_date"],
                      "\n".join([str(row["plays_per_day"]), *raised]), row["window"], row["status"])
    print_table(table)


def plan(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for <player_id>.json files and summary.json.")],
    first_day: Annotated[str | None, typer.Option("--date", help="First local day, YYYY-MM-DD (default: today).")
                         ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days to plan.")] = 3,
    fleet: Annotated[Path | None, typer.Option(help="Plan from this fleet file instead of the database.")] = None,
    campaigns: Annotated[Path | None, typer.Option(help="…with this campaign file (goes with --fleet).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan every screen for some days and write the plans; exit 3 when some screen-day falls short.

    With --fleet and --campaigns, a what-if from the files alone, no database; media probed once per content."""
    from rich.progress import Progress

    from campaigns.yaml_source import FileRejected
    from media.probe_cache import ProbeCache, default_cache_path
    from scheduler.plan_files import inputs_from_files, parse_day, write_plan_files
    from scheduler.plan_inputs import load_planning_inputs
    from scheduler.planner import plan_fleet
    from signage.clock import SystemClock, local_today

    config, clock = settings(), SystemClock()
    if (fleet is None) != (campaigns is None):
        raise fail("--fleet and --campaigns go together: give both for a what-if from files, or neither", 2)
    try:
        day = parse_day(first_day) if first_day else local_today(clock, config.timezone)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    try:
        if fleet is not None and campaigns is not None:
            inputs = inputs_from_files(fleet, campaigns, clock, config.timezone, ProbeCache(default_cache_path()))
        else:
            database = server_modules().open_database(config)
            try:
                with database.sessions() as session:
                    inputs = load_planning_inputs(session)
            finally:
                database.dispose()
    except FileRejected as rejected:
        raise fail(str(rejected), 2) from None
    now = clock.now()
    with err.status(f"planning {len(inputs.screens)} screens × {days} days…"):
        result = plan_fleet(inputs.screens, inputs.campaigns, day, days, now)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("writing plans", total=len(result.player_ids))
        summary = write_plan_files(result, out_dir, now, lambda: progress.advance(task))
    short = summary["shortfalls"]
    if as_json:
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"{len(result.player_ids)} plans from {day} for {days} days in {out_dir}")
        for column in ("campaign", "screens", "screen-days", "required", "planned", "shortfall"):
            table.add_column(column, justify="left" if column == "campaign" else "right")
        for row in summary["campaigns"]:
            table.add_row(row["campaign_id"], str(row["screens"]), str(row["screen_days"]), str(row["required"]),
                          str(row["planned"]), str(row["shortfall"]))
        print_table(table)
        for item in short[:20]:
            err.print(f"short: {item['campaign_id']} at {item['site_id']} on {item['date']}: {item['missing']} "
                      f"spots missing on {item['screens']} screens ({item['reason']})", highlight=False)
        if len(short) > 20:
            err.print(f"… and {len(short) - 20} more in {out_dir / 'summary.json'}")
    if short:
        raise typer.Exit(3)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the newest schema (the server also does this on start)."""
    config = settings()
    server_modules().open_database(config).dispose()
    from signage.db import shown_url  # server-only: after server_modules() has said what is missing

    out.print(f"database at the newest schema: {shown_url(config.resolved_database_url)}", highlight=False,
              markup=False, soft_wrap=True)


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the proof-of-play and superseded plan versions that retention lets go (SIGNAGE_POP_RETENTION_MONTHS,
    SIGNAGE_PLAN_RETENTION_DAYS), in small batches, as the server does each night; listed by table and month. The
    delivery ledger and the hourly roll-up are kept."""
    config = settings()
    database = server_modules().open_database(config)
    from scheduler.retention import cutoffs, due, prune
    from signage.clock import SystemClock

    try:
        limits = cutoffs(config, SystemClock().now())
        with database.sessions() as session:
            listed = due(session, limits)
        deleted = None if dry_run else prune(database.sessions, limits)
    finally:
        database.dispose()
    rows = [{"table": table, "month": month, "rows": n}
            for table, months in listed.items() for month, n in sorted(months.items())]
    if as_json:
        out.print_json(data={"dry_run": dry_run, "plays_before": str(limits.plays_before),
                             "plans_superseded_before": limits.plans_before.isoformat(), "due": rows,
                             "deleted": dict(deleted) if deleted is not None else None})
        return
    table = Table("table", "month", "rows" if dry_run else "rows deleted")
    for row in rows:
        table.add_row(row["table"], row["month"], f"{row['rows']:,}")
    print_table(table)
    verb = "would delete" if dry_run else "deleted"
    counts = deleted if deleted is not None else {t: sum(m.values()) for t, m in listed.items()}
    out.print(f"{verb}: " + ", ".join(f"{counts.get(t, 0):,} rows of {t}" for t in listed)
              + f" (plays of local dates before {limits.plays_before}, plan versions superseded before "
                f"{limits.plans_before:%Y-%m-%d %H:%M} UTC)", highlight=False, markup=False, soft_wrap=True)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name: lowercase letters, digits, '.', '_' or '-'.")],
    organisation: Annotated[str, typer.Option("--organisation", "-o", help="The user's organisation id.")],
    role: Annotated[str, typer.Option(help="admin, staff, head or manager.")] = "admin",
    full_name: Annotated[str, typer.Option(help="The name shown in the UI and the audit log.")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    email: Annotated[str, typer.Option(help="Where the user's notices (screens dark in their peak hours) are "
                                            "e-mailed; none: in the app only.")] = "",
) -> None:
    """Create a user (the first admin: `signage user create admin -o hn`); the password is asked for."""
    server_modules()
    from campaigns.accounts import create_user, set_notice_address
    from signage.clock import SystemClock

    password = read_password(password_stdin)
    with server_session() as session:
        user = create_user(session, username=username, full_name=full_name or username, role=role,
                           organisation_id=organisation, password=password, clock=SystemClock())
        set_notice_address(user, email, None)
        summary = f"user {user.username} ({user.role.value}) of {user.organisation_id} created"
    out.print(summary)


@user_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument(help="The user whose password to set.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Set a user's password (and lift a login throttle on the name)."""
    server_modules()
    from sqlalchemy import delete, select

    from campaigns.accounts import set_password
    from campaigns.models import LoginFailure, User

    password = read_password(password_stdin)
    with server_session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise fail(f"there is no user {username!r}; create one with `signage user create`")
        set_password(user, password)
        session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    out.print(f"password of {username} set")




HostOpt = Annotated[str | None, typer.Option(help="Address to listen on (default SIGNAGE_HTTP_HOST, 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option(help="Port to listen on (default SIGNAGE_HTTP_PORT, 8000).")]


def serve(config: Settings, host: str | None, port: int | None) -> None:
    import logging

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # Uvicorn raises the signal it stopped for once it is done; as SystemExit, cleanup around us still runs,
    # and a stop that was asked for ends with status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

    from scheduler.app import create_app

    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from 127.0.0.1 as the client's address;
    # the app reads it itself, only from SIGNAGE_TRUSTED_PROXIES (scheduler/web/deps.py, client_address).
    uvicorn.run(create_app(config), host=host or config.http_host, port=port or config.http_port,
                log_level="info", proxy_headers=False)


def server(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the scheduler service: the web app on HTTP (the database is migrated on start)."""
    server_modules()
    serve(settings(), host, port)


def ingest(
    name: Annotated[str, typer.Option(help="This worker's name; give each worker its own.")] = "ingest-1",
) -> None:
    """Run an extra proof-of-play ingest worker beside the server (one process per core to spare)."""
    import logging
    import threading

    server_modules()
    from scheduler.ingest_worker import run_ingest_worker

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_ingest_worker(settings(), name, stop)


def demo(
    fleet: Annotated[Path, typer.Option(help="Fleet file to load.")] = Path("examples/hanoi-fleet.yaml"),
    campaigns: Annotated[Path, typer.Option(help="Campaign file to load, moved to start today.")] = Path(
        "examples/ihanoi-campaign.yaml"),
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Load the example fleet and the iHanoi campaign (starting today) into var/demo, seed a user of each role
    (their password, new on every run, is printed), start the broker and serve the web app with its planning
    jobs."""
    database_module = server_modules()
    from campaigns.yaml_source import FileRejected
    from scheduler.broker import BrokerFailed, BrokerSupervisor
    from scheduler.demo import prepare_demo
    from signage.clock import SystemClock

    config = settings()
    if "data_dir" not in config.model_fields_set:
        config = config.model_copy(update={"data_dir": Path("var/demo")})
    try:
        with err.status("loading the demo fleet and campaign…"):
            setup = prepare_demo(config, SystemClock(), fleet, campaigns)
    except FileRejected as rejected:
        raise fail(str(rejected), 2) from None
    screens = setup.fleet.counts.get("screens")
    total = (screens.created + screens.updated + screens.unchanged) if screens else 0
    running = ", ".join(f"{name} ({status.value})" for name, status in setup.campaign_statuses.items())
    out.print(f"demo data in {config.data_dir}: {total} screens; campaigns from {setup.first_day}: {running}",
              soft_wrap=True)
    database = database_module.open_database(config)
    http_port = port or config.http_port
    print_demo_users(setup, f"http://{host or config.http_host}:{http_port}/login")
    try:
        with BrokerSupervisor(config, database) as broker_process:
            out.print(f"broker on {config.broker_host}:{broker_process.port}")
            players = start_demo_players(config, database, f"http://{host or config.http_host}:{http_port}")
            out.print(f"players (headless): {', '.join(players)}; their logs in {config.data_dir / 'players'}",
                      soft_wrap=True)
            out.print(f"open http://{host or config.http_host}:{http_port}/ (Ctrl-C stops)")
            try:
                serve(config, host, port)
            finally:
                for process in players.values():
                    process.terminate()
                for process in players.values():
                    process.wait(timeout=15)
    except BrokerFailed as exc:
        raise fail(f"the broker did not start: {exc}") from None
    finally:
        database.dispose()


def print_demo_users(setup, login_url: str) -> None:
    out.print(f"demo users (password for this run: [bold]{setup.password}[/]), sign in at {login_url}:",
              highlight=False, soft_wrap=True)
    for user in setup.users:
        out.print(f"  {user.username:<15} {user.role.value:<8} {user.organisation_name}", highlight=False,
                  markup=False, soft_wrap=True)


DEMO_PLAYERS = ("hn-hadong-phula-001", "hn-nb-t2-001", "hn-hadong-phula-003")  # a ward LCD, an airport LED, a speaker


def start_demo_players(config: Settings, database, server_url: str) -> dict:
    """Register the demo's players and start each as its own `signage player run` process, headless."""
    import subprocess

    from scheduler.players import register_player
    from signage.clock import SystemClock
    from signage.db import transaction
    from signage.signing import Signer

    signer = Signer.load_or_create(config.data_dir)
    folder = (config.data_dir / "players").resolve()
    processes = {}
    with transaction(database.sessions) as session:
        configs = {player_id: register_player(session, player_id, config, signer, server_url, SystemClock().now())
                   for player_id in DEMO_PLAYERS}
    for player_id, player_config in configs.items():
        path = folder / f"{player_id}.json"
        player_config.model_copy(update={"data_dir": str(folder / player_id), "headless": True}).write(path)
        log_file = (folder / f"{player_id}.log").open("a")
        signage = str(Path(sys.executable).parent / "signage")
        processes[player_id] = subprocess.Popen([signage, "player", "run", "--config", str(path)],
                                                stdout=log_file, stderr=subprocess.STDOUT)
    return processes
