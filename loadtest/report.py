"""The run's figures: the checks they pass or fail, a table on the console and a JSON file."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadtest.audit import AuditFigures
from loadtest.options import LoadtestOptions
from loadtest.phases import IngestFigures, ReplanFigures, StormFigures
from signage.console import print_table


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class LoadtestReport:
    options: LoadtestOptions
    database: str = ""
    setup_s: float | None = None
    initial_sync_s: float | None = None
    replan: ReplanFigures | None = None
    ingest: IngestFigures | None = None
    storm: StormFigures | None = None
    audit: AuditFigures | None = None
    cpu_s: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> process -> CPU seconds
    peak_rss_mib: dict[str, float | None] = field(default_factory=dict)
    server_stats: dict[str, int] = field(default_factory=dict)
    log_counts: dict[str, int] = field(default_factory=dict)  # warnings and errors logged, by level and logger
    load_average: dict[str, float] = field(default_factory=dict)  # the machine's 1-minute load, at the phases' ends
    error: str | None = None

    def checks(self) -> list[Check]:
        options = self.options
        found = []
        if self.error is not None:
            found.append(Check("run", False, self.error))
        if self.replan is not None:
            r = self.replan
            found.append(Check("campaign change confirmed by every player", r.confirmed_s is not None,
                               f"{r.confirmed} of {r.players}"))
            found.append(_target("…within the target", r.confirmed_s, options.target_replan_s, "s"))
        if self.ingest is not None:
            i = self.ingest
            found.append(Check("proof-of-play ingest rate", i.committed_per_s >= options.target_ingest_per_s,
                               f"{i.committed_per_s:,.0f} records/s (target ≥ {options.target_ingest_per_s:,.0f})"))
        if self.storm is not None:
            s = self.storm
            found.append(Check("every player back and in step after the broker restart",
                               s.synchronised_s is not None, f"{s.synchronised} of {s.players}"))
            found.append(_target("…within the target", s.synchronised_s, options.target_storm_s, "s"))
        if self.audit is not None:
            a = self.audit
            found.append(Check("nothing lost", a.missing == 0 and a.unacknowledged == 0,
                               f"{a.missing} missing, {a.unacknowledged} never acknowledged"))
            found.append(Check("nothing doubled", a.duplicates == 0 and a.unexpected == 0,
                               f"{a.duplicates} duplicates, {a.unexpected} rows nobody sent"))
            found.append(Check("nothing refused", a.rejected == 0, f"{a.rejected} records refused by the server"))
            found.append(Check("rows = records sent", a.rows == a.sent, f"{a.rows:,} rows, {a.sent:,} sent"))
        return found

    @property
    def passed(self) -> bool:
        checks = self.checks()
        return bool(checks) and all(check.passed for check in checks) and self.audit is not None

    def as_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "options": self.options.model_dump(mode="json"), "database": self.database,
                "setup_s": self.setup_s, "initial_sync_s": self.initial_sync_s,
                "replan": _plain(self.replan), "ingest": _plain(self.ingest), "storm": _plain(self.storm),
                "audit": None if self.audit is None else {**asdict(self.audit), "duplicates": self.audit.duplicates},
                "cpu_s": self.cpu_s, "peak_rss_mib": self.peak_rss_mib, "server_stats": self.server_stats,
                "log_counts": self.log_counts, "load_average": self.load_average,
                "checks": [asdict(check) for check in self.checks()], "error": self.error}


def _plain(figures) -> dict[str, Any] | None:
    return None if figures is None else asdict(figures)


def _target(name: str, value: float | None, target: float, unit: str) -> Check:
    if value is None:
        return Check(name, False, f"not reached (target ≤ {target:g} {unit})")
    return Check(name, value <= target, f"{value:.2f} {unit} (target ≤ {target:g} {unit})")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def print_report(console: Console, report: LoadtestReport) -> None:
    figures = Table(title=f"signage loadtest: {report.options.players:,} players, {report.database}")
    figures.add_column("measure")
    figures.add_column("figure", justify="right")
    if report.replan is not None:
        r = report.replan
        figures.add_row(f"(a) plays_per_day {r.plays_per_day_before} → {r.plays_per_day_after}: API call",
                        _seconds(r.api_call_s))
        figures.add_row("    every new plan stored", _seconds(r.plans_stored_s))
        figures.add_row("    every player took its new plan", _seconds(r.plans_taken_s))
        figures.add_row("    [bold]every player confirmed it (status stored)[/]", _seconds(r.confirmed_s))
    if report.ingest is not None:
        i = report.ingest
        figures.add_row(f"(b) proof-of-play for {i.seconds:g} s, batches of {i.batch}, window {i.window}: sent",
                        f"{i.records_sent:,} records")
        figures.add_row("    committed in that time", f"{i.records_committed:,} records")
        figures.add_row("    [bold]committed rate[/]", f"{i.committed_per_s:,.0f} records/s")
        figures.add_row("    last acks after the window", _seconds(i.drained_s))
        figures.add_row("    records sent again (no ack within the resend delay)", f"{i.records_resent:,}")
    if report.storm is not None:
        s = report.storm
        figures.add_row("(c) broker restart (stop, start)", _seconds(s.broker_restart_s))
        figures.add_row("    every player reconnected", _seconds(s.reconnected_s))
        figures.add_row("    [bold]every player in step (status with its plan)[/]", _seconds(s.synchronised_s))
    if report.audit is not None:
        a = report.audit
        figures.add_row("records sent / rows stored", f"{a.sent:,} / {a.rows:,}")
        figures.add_row("lost / doubled / refused / unacknowledged",
                        f"{a.missing} / {a.duplicates} / {a.rejected} / {a.unacknowledged}")
    print_table(figures, console)

    if report.cpu_s:
        usage = Table(title="CPU seconds by process and phase; peak memory")
        names = list(report.peak_rss_mib) or sorted({n for phase in report.cpu_s.values() for n in phase})
        usage.add_column("phase")
        for name in names:
            usage.add_column(name, justify="right")
        for phase, cpu in report.cpu_s.items():
            usage.add_row(phase, *(f"{cpu.get(name, 0):.1f}" for name in names))
        usage.add_row("peak RSS (MiB)", *("—" if report.peak_rss_mib.get(n) is None else
                                          f"{report.peak_rss_mib[n]:.0f}" for n in names))
        print_table(usage, console)

    if report.load_average:
        console.print("machine load (1 min) at the end of each phase: " + ", ".join(
            f"{phase} {load:.1f}" for phase, load in report.load_average.items()), highlight=False, soft_wrap=True)
    if report.log_counts:
        console.print("logged: " + ", ".join(f"{n} {name}" for name, n in sorted(report.log_counts.items())),
                      highlight=False, soft_wrap=True)

    checks = Table(title="checks")
    checks.add_column("check")
    checks.add_column("result")
    checks.add_column("detail")
    for check in report.checks():
        checks.add_row(check.name, "[green]pass[/]" if check.passed else "[bold red]FAIL[/]", check.detail)
    print_table(checks, console)
    console.print("[bold green]all checks passed[/]" if report.passed else "[bold red]some checks failed[/]")


def write_json(path: Path, report: LoadtestReport) -> None:
    path.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@contextmanager
def phase_progress(console: Console, title: str, total: float):
    """A progress line for one phase; yields update(how_far, note)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(title, total=total)

        def update(done: float, note: str) -> None:
            progress.update(task, completed=int(done), description=f"{title}: {note}")

        yield update
