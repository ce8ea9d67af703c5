"""The `signage loadtest` command, mounted by signage_cli; the stand's packages are imported only when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from signage.console import err, fail, out

# The command's option names where the options' fields carry their unit.
FIELD_OF = {"connect_spread": "connect_spread_s", "resend_after": "resend_after_s", "reconnect_min": "reconnect_min_s",
            "reconnect_max": "reconnect_max_s", "status_every": "status_every_s", "sync_timeout": "sync_timeout_s",
            "replan_timeout": "replan_timeout_s", "drain_timeout": "drain_timeout_s",
            "storm_timeout": "storm_timeout_s", "target_replan": "target_replan_s",
            "target_ingest": "target_ingest_per_s", "target_storm": "target_storm_s", "json": "json_path"}


def loadtest(
    players: Annotated[int, typer.Option(help="Simulated players (one screen each).")] = 2000,
    processes: Annotated[int, typer.Option(help="Worker processes the players are spread over (asyncio in each).")] = 2,
    ingest_workers: Annotated[int, typer.Option(help="Extra `signage ingest` processes beside the server.")] = 0,
    database_url: Annotated[str | None, typer.Option(help="An empty database (default: SQLite in the work "
                                                          "directory).")] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Keep the stand here (default: a temporary directory, "
                                                       "removed at the end).", file_okay=False)] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary work directory.")] = False,
    per_site: Annotated[int, typer.Option(help="Screens per generated site.")] = 50,
    connect_spread: Annotated[float, typer.Option(help="Seconds the players' first connections spread over.")] = 5.0,
    ingest_seconds: Annotated[float, typer.Option(help="(b): seconds every player sends proof-of-play.")] = 30,
    batch: Annotated[int, typer.Option(help="(b): records per batch.")] = 50,
    window: Annotated[int, typer.Option(help="(b): batches each player keeps awaiting their ack.")] = 1,
    resend_after: Annotated[float, typer.Option(help="Seconds before an unacknowledged batch is sent again.")] = 30,
    reconnect_min: Annotated[float, typer.Option(help="(c): the players' first reconnection delay, seconds "
                                                      "(doubling, with jitter).")] = 0.5,
    reconnect_max: Annotated[float, typer.Option(help="(c): the longest reconnection delay, seconds.")] = 8,
    status_every: Annotated[float, typer.Option(help="Seconds between a player's periodic statuses.")] = 30,
    sync_timeout: Annotated[float, typer.Option(help="Seconds allowed for planning and the first connections.")] = 300,
    replan_timeout: Annotated[float, typer.Option(help="(a): seconds allowed.")] = 120,
    drain_timeout: Annotated[float, typer.Option(help="(b): seconds allowed for the last acks.")] = 120,
    storm_timeout: Annotated[float, typer.Option(help="(c): seconds allowed.")] = 120,
    target_replan: Annotated[float, typer.Option(help="(a): target, seconds.")] = 10,
    target_ingest: Annotated[float, typer.Option(help="(b): target, records/s.")] = 5000,
    target_storm: Annotated[float, typer.Option(help="(c): target, seconds.")] = 30,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures to this JSON file.",
                                                   dir_okay=False)] = None,
) -> None:
    """Start simulated players (asyncio, the real wire contract) against a real Mosquitto and the real server, all
    set up in a work directory, and measure: (a) a campaign change until every player confirmed its new plan, (b)
    proof-of-play ingest with every player sending, (c) a broker restart until every player is back in step; then
    check that no record was lost or doubled. Exit code 1 when a check or target fails."""
    from loadtest.options import LoadtestOptions

    given = {"players": players, "processes": processes, "ingest_workers": ingest_workers,
             "database_url": database_url, "work_dir": work_dir, "keep": keep, "per_site": per_site,
             "connect_spread": connect_spread, "ingest_seconds": ingest_seconds, "batch": batch, "window": window,
             "resend_after": resend_after, "reconnect_min": reconnect_min, "reconnect_max": reconnect_max,
             "status_every": status_every, "sync_timeout": sync_timeout, "replan_timeout": replan_timeout,
             "drain_timeout": drain_timeout, "storm_timeout": storm_timeout, "target_replan": target_replan,
             "target_ingest": target_ingest, "target_storm": target_storm, "json": json_path}
    try:
        options = LoadtestOptions(**{FIELD_OF.get(name, name): value for name, value in given.items()})
    except ValidationError as exc:
        option_of = {field: name for name, field in FIELD_OF.items()}
        problems = "; ".join(f"--{option_of.get(str(e['loc'][0]), str(e['loc'][0])).replace('_', '-')}: {e['msg']}"
                             if e["loc"] else e["msg"] for e in exc.errors())
        raise fail(problems, 2) from None
    try:
        from loadtest.report import print_report, write_json
        from loadtest.run import run_loadtest
    except ImportError as exc:
        needs = (f"the load test runs the server and needs its packages ({exc.name} is missing); install them with: "
                 "pip install 'hanoi-signage[server]'")
        raise fail(needs) from None
    report = run_loadtest(options, err)
    print_report(out, report)
    if options.json_path is not None:
        write_json(options.json_path, report)
        err.print(f"figures written to {options.json_path}")
    raise typer.Exit(0 if report.passed else 1)
