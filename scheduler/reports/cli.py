"""`signage report compliance|pop|health|rounds|cadence`: the reports managers hand in, written to a file;
mounted by signage_cli. Server code is imported inside the commands (see scheduler/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from scheduler.cli import server_modules
from signage.console import err, fail, out, settings

if TYPE_CHECKING:
    from scheduler.reports.scope import Scope

report_app = typer.Typer(help="Reports managers hand in: compliance, proof-of-play log, screen health, rounds.",
                         no_args_is_help=True)


def run_report(kind: str, campaign: str | None, first: str | None, last: str | None, scope: str | None,
               fmt: str | None, target: Path, language: str, allow_empty: bool = False) -> None:
    """Build the report and write it; a report without rows writes nothing (unless `allow_empty`) and exits 3,
    as `signage plan` does for a shortfall: done, but not what was asked for."""
    from dataclasses import replace
    from datetime import date

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    database_module = server_modules()
    from scheduler.reports.build import FORMATS, build_report, make_scope, write_report
    from signage.clock import SystemClock, local_today
    from signage.errors import Invalid

    fmt = fmt or target.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}: give --format {'|'.join(FORMATS)} or an --out file ending in one", 2)
    if fmt == "playout" and kind != "pop":
        raise fail("the playout format is for the proof-of-play log: signage report pop --format playout", 2)
    try:
        first_day = date.fromisoformat(first) if first else None
        last_day = date.fromisoformat(last) if last else None
    except ValueError as exc:
        raise fail(f"{exc}: give dates as YYYY-MM-DD", 2) from None
    config = settings()
    database = database_module.open_database(config)
    clock = SystemClock()
    try:
        with database.sessions() as session, Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
                TimeElapsedColumn(), console=err, transient=False) as progress:
            scope_ = make_scope(session, scope, first_day, last_day, campaign, local_today(clock, config.timezone))
            report = build_report(session, kind, scope_, clock.now(), language, config.timezone,
                                  config.message_interval_days)
            task = progress.add_task(f"{kind} {scope_.first}..{scope_.last} → {target.name}", total=None)

            def counted(rows):
                for row in rows:
                    progress.advance(task)
                    yield row

            report.sheets = [replace(s, rows=counted(s.rows)) for s in report.sheets]
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "pop" and fmt == "csv":  # millions of rows: formatted by the database, from its cursor
                from scheduler.reports.operations import pop_log_csv

                def chunks():
                    for chunk in pop_log_csv(session, scope_, config.timezone, language):
                        progress.advance(task, chunk.count(b"\n"))
                        yield chunk

                rows = write_report(report, fmt, target, chunks(), keep_empty=allow_empty)
            else:
                rows = write_report(report, fmt, target, keep_empty=allow_empty)
    except Invalid as exc:
        raise fail(str(exc), 2) from None
    finally:
        database.dispose()
    if not rows and not allow_empty:
        err.print(nothing_to_write(report.title, scope_, fmt, target, language), highlight=False, soft_wrap=True)
        raise typer.Exit(3)
    out.print(f"wrote {escape(str(target))}" + ("" if rows else " (no rows)"), highlight=False, soft_wrap=True)


def nothing_to_write(title: str, scope: Scope, fmt: str, target: Path, language: str) -> str:
    """Why no file was written, in the report's language, with what to do instead."""
    en = language == "en"
    campaign = scope.campaign_name or scope.campaign_id
    what = ", ".join(part for part in (title, scope.organisation_name, campaign and (
        f"{'campaign' if en else 'chiến dịch'} {campaign}")) if part)
    if en:
        rows = "no completed campaign plays (all a playout file holds)" if fmt == "playout" else "no rows"
        return (f"nothing to write: {what}, {scope.first}..{scope.last}: {rows}. {target} was not written; choose "
                "another period (--from, --to), scope or campaign, or give --allow-empty to write it without rows.")
    rows = ("không có lượt phát hoàn thành nào của chiến dịch (tệp playout chỉ gồm các lượt đó)" if fmt == "playout"
            else "không có dòng nào")
    return (f"không có dữ liệu để ghi: {what}, {scope.first:%d/%m/%Y}–{scope.last:%d/%m/%Y}: {rows}. Chưa ghi tệp "
            f"{target}; hãy chọn kỳ (--from, --to), phạm vi hoặc chiến dịch khác, hoặc thêm --allow-empty để vẫn "
            "ghi tệp không có dòng nào.")


ReportCampaign = Annotated[str | None, typer.Option("--campaign", help="A campaign id; all campaigns if not given.")]
ReportFrom = Annotated[str | None, typer.Option("--from", help="First local date, YYYY-MM-DD (default: the "
                                                               "campaign's start, or 7 days ago).")]
ReportTo = Annotated[str | None, typer.Option("--to", help="Last local date (default: today or the campaign's end).")]
ReportScope = Annotated[str | None, typer.Option("--scope", help="An organisation id: its subtree (default: all).")]
ReportFormat = Annotated[str | None, typer.Option("--format", help="csv, xlsx, pdf (pop also: playout); default "
                                                                   "from --out's suffix.")]
ReportOut = Annotated[Path, typer.Option("--out", help="The file to write.", dir_okay=False)]
ReportLanguage = Annotated[str, typer.Option("--lang", help="vi or en.")]
ReportAllowEmpty = Annotated[bool, typer.Option("--allow-empty", help="Write the file even when the report has no "
                                                                      "rows (otherwise nothing is written, exit 3).")]


def _report_command(kind: str, summary: str):
    def command(out: ReportOut, campaign: ReportCampaign = None, first: ReportFrom = None, last: ReportTo = None,
                scope: ReportScope = None, fmt: ReportFormat = None, language: ReportLanguage = "vi",
                allow_empty: ReportAllowEmpty = False) -> None:
        run_report(kind, campaign, first, last, scope, fmt, out, language, allow_empty)

    command.__doc__ = summary
    report_app.command(kind)(command)


_report_command("compliance", "Campaign compliance by unit, site kind, site and screen-day (CSV: the screen-days).")
_report_command("pop", "The proof-of-play log: every play attempt (CSV, XLSX, PDF or the UK playout format).")
_report_command("health", "Screen health: state now, uptime per day.")
_report_command("rounds", "Progress by rounds: per unit, screens compliant and plays delivered.")
_report_command("mobile", "Mobile loudspeaker rounds per unit and day: planned, done in peak hours, short.")
_report_command("cadence", "Message cadence: each unit's regular messages, flagging units over their interval.")
