"""One way to ask for a report, for the CLI, the pages and the API alike: which kind, for what scope; and one way
to write it to a file (`signage report`, `signage simulate`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Organisation
from scheduler.reports import exports, playout
from scheduler.reports.cadence import cadence_report
from scheduler.reports.compliance import compliance_report
from scheduler.reports.mobile_rounds import mobile_rounds_report
from scheduler.reports.operations import health_report, pop_report, rounds_report
from scheduler.reports.scope import Scope, retired_screens
from scheduler.reports.table import Report
from signage.config import DEFAULT_MESSAGE_INTERVAL_DAYS, DEFAULT_TIMEZONE
from signage.errors import Invalid

BUILDERS: dict[str, Callable[..., Report]] = {
    "compliance": compliance_report, "pop": pop_report, "health": health_report, "rounds": rounds_report,
    "cadence": cadence_report, "mobile": mobile_rounds_report,
}
ZONED = {"cadence", "compliance", "mobile"}  # builders whose figures depend on the local time of day: given the zone
KINDS = tuple(BUILDERS)
FORMATS = ("csv", "xlsx", "pdf", "playout")
MAX_DAYS = 366


def make_scope(session: Session, organisation_id: str | None, first: date | None, last: date | None,
               campaign_id: str | None, today: date) -> Scope:
    """The scope a report covers. Without dates: the campaign's own dates up to today, or the last 7 days.
    `organisation_id` None means the root of the fleet (the city)."""
    if organisation_id is None:
        organisation = session.scalar(select(Organisation).where(Organisation.parent_id.is_(None))
                                      .order_by(Organisation.path))
        if organisation is None:
            raise Invalid("there is no organisation yet", "import the fleet first: signage fleet import FILE")
    else:
        organisation = session.get(Organisation, organisation_id)
        if organisation is None:
            raise Invalid(f"there is no organisation {organisation_id!r}",
                          "give an organisation id of the fleet (signage fleet export lists them)")
    campaign = None
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise Invalid(f"there is no campaign {campaign_id!r}", "give a campaign id (signage campaign list)")
    if first is None:
        first = campaign.start_date if campaign else today - timedelta(days=6)
    if last is None:
        last = min(campaign.end_date, today) if campaign else today
        last = max(last, first)
    if last < first:
        raise Invalid(f"the period ends ({last}) before it starts ({first})", "give --to on or after --from")
    if (last - first).days >= MAX_DAYS:
        raise Invalid(f"the period has {(last - first).days + 1} days", f"ask for at most {MAX_DAYS} at a time")
    scope = Scope(organisation.id, organisation.name, organisation.path, first, last,
                  campaign.id if campaign else None, campaign.name if campaign else None)
    return replace(scope, retired=retired_screens(session, scope))


def build_report(session: Session, kind: str, scope: Scope, now: datetime, language: str = "vi",
                 timezone: str | None = None, message_interval_days: int = DEFAULT_MESSAGE_INTERVAL_DAYS) -> Report:
    """`message_interval_days`: the server's SIGNAGE_MESSAGE_INTERVAL_DAYS, which the cadence report needs."""
    if kind not in BUILDERS:
        raise Invalid(f"there is no report {kind!r}", f"choose one of {', '.join(KINDS)}")
    zone = {"timezone": timezone or DEFAULT_TIMEZONE} if kind in ZONED else {}
    if kind == "cadence":
        zone["message_interval_days"] = message_interval_days
    report = BUILDERS[kind](session, scope, now, language, **zone)
    report.timezone = timezone or report.timezone
    return report


def write_report(report: Report, fmt: str, path: Path, chunks: Iterable[bytes] | None = None, *,
                 keep_empty: bool = True) -> int:
    """Into a temporary file beside `path`, then renamed: a failed export never leaves half a file. `chunks`:
    the file's bytes made already (the log's fast CSV: a header line, then a line per row). Returns how many rows
    the file holds (titles, headers and totals aside); a file holding none is kept only with `keep_empty`."""
    written = 0

    def counted(rows: Iterable[dict]) -> Iterator[dict]:
        nonlocal written
        for row in rows:
            written += 1
            yield row

    report = replace(report, sheets=[replace(sheet, rows=counted(sheet.rows)) for sheet in report.sheets])
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            if chunks is not None:
                lines = 0
                for chunk in chunks:
                    stream.write(chunk)
                    lines += chunk.count(b"\n")
                written = max(lines - 1, 0)
            elif fmt == "csv":
                exports.write_csv(report, stream, len(report.sheets) - 1 if report.kind == "compliance" else 0)
            elif fmt == "xlsx":
                exports.write_xlsx(report, stream)
            elif fmt == "pdf":
                exports.write_pdf(report, stream)
            else:  # only the completed plays of campaigns are playouts: count those, not the log's rows
                log = report.sheets[0].rows
                written = playout.write_playout_csv(log, stream, timezone=report.timezone or DEFAULT_TIMEZONE)
        if written or keep_empty:
            os.replace(temporary, path)
        else:
            Path(temporary).unlink()
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written
