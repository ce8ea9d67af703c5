"""`signage simulate`: the whole system on virtual time with faults, and its compliance report; mounted by
signage_cli. The simulation runs the server's code: it is imported inside the command, after server_modules()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from scheduler.cli import server_modules
from signage.console import JsonOpt, err, fail, out, print_table, settings


def simulate(
    fleet: Annotated[Path, typer.Option(help="The fleet file (signage.fleet/1).", dir_okay=False)],
    campaigns: Annotated[Path, typer.Option(help="The campaign file (signage.campaigns/1).", dir_okay=False)],
    first: Annotated[str, typer.Option("--from", help="First local day of the run, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="Last local day of the run, YYYY-MM-DD.")],
    faults: Annotated[Path | None, typer.Option(help="A fault file (signage.faults/1); none: nothing goes "
                                                     "wrong.", dir_okay=False)] = None,
    report_out: Annotated[Path, typer.Option("--out", help="The compliance report to write (.csv, .xlsx, .pdf).",
                                             dir_okay=False)] = Path("simulation-compliance.csv"),
    work_dir: Annotated[Path | None, typer.Option(help="Where the run's database and journals go (an empty or "
                                                       "new folder; default: a temporary one, removed after).",
                                                  file_okay=False)] = None,
    filler: Annotated[bool, typer.Option("--filler/--no-filler", help="Play the filler between spots (every "
                                         "filler play is simulated and reported; slower).")] = False,
    status_every: Annotated[int, typer.Option(min=5, max=3600, help="Seconds between a player's statuses.")] = 300,
    require: Annotated[float | None, typer.Option(min=0, max=1, help="Exit 3 unless this share of the screen-days "
                                                  "online at least half their peak time is compliant, and every "
                                                  "shortfall's cause matches the faults (e.g. 0.99).")] = None,
    language: Annotated[str, typer.Option("--lang", help="vi or en, for the report.")] = "vi",
    as_json: JsonOpt = False,
) -> None:
    """Run the real planner, players, ingest and ledger on virtual time, with faults, and report compliance."""
    server_modules()
    import tempfile
    import time
    from datetime import date, timedelta

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from campaigns.yaml_source import FileRejected
    from scheduler.reports.build import FORMATS, build_report, make_scope, write_report
    from simulation.engine import AgentOptions, journal_figures
    from simulation.faults import FaultFile, read_fault_file
    from simulation.outcome import check_run
    from simulation.world import begin, build_world

    fmt = report_out.suffix.lstrip(".").lower()
    if fmt not in FORMATS or fmt == "playout":
        raise fail(f"--out {report_out}: end the file name in .csv, .xlsx or .pdf", 2)
    try:
        first_day, last_day = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise fail(f"{exc}: give --from and --to as YYYY-MM-DD", 2) from None
    if work_dir is not None and work_dir.exists() and any(work_dir.iterdir()):
        raise fail(f"--work-dir {work_dir} is not empty: give a new or empty folder", 2)
    config = settings()
    scratch = None if work_dir is not None else tempfile.TemporaryDirectory(prefix="signage-simulate-")
    folder = work_dir or Path(scratch.name)
    try:
        fault_file = read_fault_file(faults) if faults is not None else FaultFile()
        with err.status("importing the fleet and the campaigns…"):
            world = build_world(fleet, campaigns, fault_file, first_day, last_day, folder, config.timezone,
                                options=AgentOptions(play_filler=filler, status_every=timedelta(seconds=status_every)))
    except FileRejected as rejected:
        raise fail(str(rejected), 2) from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    simulation = world.simulation
    began = time.monotonic()
    try:
        total = (world.end - world.start).total_seconds()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[at]}"),
                      TimeElapsedColumn(), console=err, transient=False) as progress:
            task = progress.add_task(f"simulating {len(simulation.players)} screens, {first_day}..{last_day}",
                                     total=total, at="")

            def advance(now) -> None:
                progress.update(task, completed=(now - world.start).total_seconds(),
                                at=now.astimezone(world.start.tzinfo).strftime("%d/%m %H:%M"))

            begin(world)
            simulation.run_until(world.end, advance)
            simulation.drain()
            world.server.close_ledger_days()
            simulation.stop_players()
        wall = time.monotonic() - began
        journals = journal_figures(simulation.players, world.data_dir)
        with world.database.sessions() as session:
            findings = check_run(session, simulation.faults, world.server.peak_windows, first_day, last_day)
            scope = make_scope(session, None, first_day, last_day, None, last_day)
            report = build_report(session, "compliance", scope, simulation.clock.now(), language, config.timezone)
            report_out.parent.mkdir(parents=True, exist_ok=True)
            write_report(report, fmt, report_out)
    finally:
        world.database.dispose()
        if scratch is not None:
            scratch.cleanup()
    lost = journals.get("appended", 0) - journals.get("backlog", 0) - journals.get("dead letters", 0) - \
        findings.records
    figures = {"screens": len(simulation.players), "first_day": first_day.isoformat(), "last_day": last_day.isoformat(),
               **findings.as_dict(), "journal": journals, "records_lost": lost, "crashes": simulation.crashes,
               "turns": simulation.turns, "ingest": dict(world.server.stats), "wall_seconds": round(wall, 1),
               "report": str(report_out)}
    if as_json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        print_simulation(figures)
    if require is not None and (findings.online_compliance < require or findings.mismatches or lost):
        raise typer.Exit(3)


def print_simulation(figures: dict) -> None:
    table = Table(title=f"{figures['screens']} screens, {figures['first_day']}..{figures['last_day']}, "
                        f"simulated in {figures['wall_seconds']} s")
    table.add_column("")
    table.add_column("", justify="right")
    online = figures["online_screen_days"]
    rows = [("screen-days with plays required", figures["screen_days"]),
            ("compliant", f"{figures['compliant']} ({figures['compliant'] / max(1, figures['screen_days']):.1%})"),
            ("online at least half their peak time", online),
            ("… of those compliant", f"{figures['online_compliant']} ({figures['online_compliance']:.2%})"),
            ("plays required / delivered in peak", f"{figures['required']} / {figures['delivered']}"),
            ("shortfall causes matching the faults", f"{figures['causes_matching']} of {figures['causes_checked']}"),
            ("proof-of-play records stored", figures["records"]),
            ("records lost", figures["records_lost"]),
            ("spots completed twice", figures["spots_doubled"]),
            ("still in journals / refused", f"{figures['journal'].get('backlog', 0)} / "
                                            f"{figures['journal'].get('dead letters', 0)}"),
            ("agent crashes", figures["crashes"])]
    for label, value in rows:
        table.add_row(label, str(value))
    print_table(table)
    if figures["causes"]:
        out.print("shortfalls by cause: " + ", ".join(f"{cause} {n}" for cause, n in sorted(figures["causes"].items())))
    for miss in figures["mismatches"][:10]:
        err.print(f"cause not explained: {miss['screen_id']} {miss['campaign_id']} {miss['date']}: the ledger says "
                  f"{miss['cause']}, the faults say {', '.join(miss['expected']) or 'nothing'}", highlight=False)
    out.print(f"compliance report: {escape(figures['report'])}")

