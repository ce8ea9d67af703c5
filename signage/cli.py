"""The `signage` command. Server verbs import the server's packages only when run, so the player's
install (without the [server] extra) still has a working `signage`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from signage import __version__
from signage.config import Settings

app = typer.Typer(help="Hà Nội public screens broadcast scheduler.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
fleet_app = typer.Typer(help="Organisations, sites and screens: import and export the fleet file.",
                        no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: import campaign files, list what is scheduled.", no_args_is_help=True)
db_app = typer.Typer(help="The database: migrate it to the newest schema.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
app.add_typer(campaign_app, name="campaign")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]
FileArg = Annotated[Path, typer.Argument(help="The YAML file.", dir_okay=False)]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the SIGNAGE_ variable at fault
        raise fail(f"bad settings: {exc}\nFix the SIGNAGE_* environment variables or .env.", 2) from None


def server_modules():
    try:
        import sqlalchemy  # noqa: F401

        from scheduler import database
    except ImportError as exc:
        raise fail(f"this verb runs on the server and needs its packages ({exc.name} is missing); "
                   "install them with: pip install 'hanoi-signage[server]'") from None
    return database


def run_import(action, as_json: bool) -> None:
    """Run an import in one transaction; report counts, or the file's problems with exit code 2."""
    from campaigns.yaml_source import FileRejected
    from signage.db import transaction

    database = server_modules().open_database(settings())
    try:
        with transaction(database.sessions) as session:
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
    finally:
        database.dispose()
    if as_json:
        print(json.dumps({"ok": True, **report.as_json()}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Imported {report.file}" + ("" if report.changed else " (nothing changed)"))
    for column in ("", "created", "updated", "unchanged"):
        table.add_column(column, justify="right" if column else "left")
    for entity, counts in report.counts.items():
        table.add_row(entity, str(counts.created), str(counts.updated), str(counts.unchanged))
    out.print(table)


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

    database = server_modules().open_database(settings())
    try:
        with database.sessions() as session:
            text = export_fleet(session)
    finally:
        database.dispose()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@campaign_app.command("import")
def campaign_import(file: FileArg, as_json: JsonOpt = False) -> None:
    """Create or update campaigns, their media, targets and overrides from a signage.campaigns/1 file."""
    from campaigns.campaign_file import import_campaigns
    from media.store import MediaStore
    from signage.clock import SystemClock

    config = settings()
    with err.status("probing media and checking the campaigns…"):
        run_import(lambda session: import_campaigns(session, file, MediaStore(config.media_dir), SystemClock(),
                                                    config.timezone), as_json)


@campaign_app.command("list")
def campaign_list(as_json: JsonOpt = False) -> None:
    """List campaigns with their dates, rate, window and status."""
    from sqlalchemy import select

    from campaigns.models import Campaign

    database = server_modules().open_database(settings())
    try:
        with database.sessions() as session:
            rows = [{"id": c.id, "name": c.name, "organisation": c.organisation_id, "start_date": str(c.start_date),
                     "end_date": str(c.end_date), "plays_per_day": c.plays_per_day, "window": c.window_policy.value,
                     "status": c.status.value, "creatives": len(c.creatives)}
                    for c in session.scalars(select(Campaign).order_by(Campaign.start_date, Campaign.id))]
    finally:
        database.dispose()
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table()
    for column in ("id", "name", "organisation", "start_date", "end_date", "plays_per_day", "window", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("id", "name", "organisation", "start_date", "end_date",
                                               "plays_per_day", "window", "status")))
    out.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the newest schema (the server also does this on start)."""
    config = settings()
    server_modules().open_database(config).dispose()
    out.print(f"database at the newest schema: {config.resolved_database_url}")


HostOpt = Annotated[str | None, typer.Option(help="Address to listen on (default SIGNAGE_HTTP_HOST, 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option(help="Port to listen on (default SIGNAGE_HTTP_PORT, 8000).")]


def serve(config: Settings, host: str | None, port: int | None) -> None:
    import uvicorn

    from scheduler.app import create_app

    uvicorn.run(create_app(config), host=host or config.http_host, port=port or config.http_port,
                log_level="info")


@app.command("server")
def server(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the scheduler service: the web app on HTTP (the database is migrated on start)."""
    server_modules()
    serve(settings(), host, port)


@app.command("demo")
def demo(
    fleet: Annotated[Path, typer.Option(help="Fleet file to load.")] = Path("examples/hanoi-fleet.yaml"),
    campaigns: Annotated[Path, typer.Option(help="Campaign file to load, moved to start today.")] = Path(
        "examples/ihanoi-campaign.yaml"),
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Load the example fleet and the iHanoi campaign (starting today) into var/demo and serve the web app."""
    server_modules()
    from campaigns.yaml_source import FileRejected
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
    out.print(f"demo data in {config.data_dir}: {total} screens; the iHanoi campaign runs from {setup.first_day}")
    out.print(f"open http://{host or config.http_host}:{port or config.http_port}/ (Ctrl-C stops)")
    serve(config, host, port)


@app.command("version")
def version() -> None:
    """Print the software version."""
    out.print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
