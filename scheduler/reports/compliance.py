"""Campaign compliance: required, planned and delivered plays for an organisation subtree and a period, by unit,
site kind, site and screen-day, with the cause of every shortfall (docs/design.md §4).

A screen-day is compliant when its completed spots and make-goods inside peak windows reach the required count.
Delivery % of a group is its delivered plays (each screen-day counted up to its requirement, so one screen's
surplus never hides another's shortfall) over its required plays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from campaigns.kinds import effective_peak_windows
from campaigns.models import Campaign, Organisation, Screen, Site
from scheduler.models import HOURS, DeliveryRollup, PlayHours
from scheduler.reports import charts
from scheduler.reports.columns import BY_SITE_COLUMNS, BY_SITE_KIND_COLUMNS, BY_UNIT_COLUMNS, DAY_COLUMNS
from scheduler.reports.scope import Scope
from scheduler.reports.table import Chart, Report, Sheet
from scheduler.web.i18n import translate
from signage.config import DEFAULT_TIMEZONE

IN_PROGRESS = "in_progress"  # a short screen-day whose day is not over (or not closed yet)

CAUSE_WORDS = {
    "offline": ("Màn hình mất kết nối", "Screen offline"),
    "no_plan": ("Chưa nhận lịch phát", "No plan confirmed"),
    "media_missing": ("Thiếu tệp media", "Media missing"),
    "playback_error": ("Lỗi phát", "Playback error"),
    "no_capacity": ("Không đủ thời lượng", "No capacity"),
    "no_playable_creative": ("Không có nội dung phát được", "No playable creative"),
    IN_PROGRESS: ("Đang diễn ra", "In progress"),
}


def cause_words(cause: str | None, language: str) -> str:
    if cause is None:
        return ""
    vi, en = CAUSE_WORDS.get(cause, (cause, cause))
    return en if language == "en" else vi


@dataclass
class Totals:
    screen_days: int = 0
    compliant: int = 0
    required: int = 0
    planned: int = 0
    delivered: int = 0  # capped at each screen-day's requirement
    delivered_total: int = 0  # every completed play, in peak or not, capped or not
    makegoods: int = 0
    causes: dict[str, int] = field(default_factory=dict)  # short screen-days by cause

    def add(self, other: Totals) -> None:
        self.screen_days += other.screen_days
        self.compliant += other.compliant
        self.required += other.required
        self.planned += other.planned
        self.delivered += other.delivered
        self.delivered_total += other.delivered_total
        self.makegoods += other.makegoods
        for cause, n in other.causes.items():
            self.causes[cause] = self.causes.get(cause, 0) + n

    @property
    def delivery(self) -> float | None:
        return self.delivered / self.required if self.required else None

    @property
    def compliance(self) -> float | None:
        return self.compliant / self.screen_days if self.screen_days else None


@dataclass
class ComplianceSummary:
    scope: Scope
    total: Totals
    by_unit: list[tuple[str, str, Totals]]  # (organisation id, name, totals), in the scope's order
    by_site_kind: list[tuple[str, Totals]]
    by_site: list[tuple[str, str, str, Totals]]  # (site id, name, unit name, totals)
    by_day: list[tuple[date, Totals]]


def met_requirement():
    """A screen-day's completed plays in peak windows reach its requirement."""
    return DeliveryRollup.completed_in_peak >= DeliveryRollup.required


def capped_delivered():
    """A screen-day's delivered plays, counted up to its requirement."""
    return case((met_requirement(), DeliveryRollup.required), else_=DeliveryRollup.completed_in_peak)


def _short_cause():
    """The cause of a short screen-day: the closed day's, or 'in progress' for one not closed yet."""
    return case((met_requirement(), None), (DeliveryRollup.closed.is_(True), DeliveryRollup.cause),
                else_=IN_PROGRESS)


def _sums():
    return (func.count().label("screen_days"), func.sum(case((met_requirement(), 1), else_=0)).label("compliant"),
            func.sum(DeliveryRollup.required).label("required"), func.sum(DeliveryRollup.planned).label("planned"),
            func.sum(capped_delivered()).label("delivered"),
            func.sum(DeliveryRollup.completed_total).label("delivered_total"),
            func.sum(DeliveryRollup.makegoods).label("makegoods"))


def _totals(row) -> Totals:
    return Totals(screen_days=row.screen_days or 0, compliant=row.compliant or 0, required=row.required or 0,
                  planned=row.planned or 0, delivered=row.delivered or 0, delivered_total=row.delivered_total or 0,
                  makegoods=row.makegoods or 0)


def summarise(session: Session, scope: Scope) -> ComplianceSummary:
    """The report's figures, aggregated in the database: fast on a city of screen-days."""
    cause = _short_cause().label("cause")
    per_site = session.execute(scope.filter_ledger(
        select(Site.id, Site.name, Site.kind, Organisation.path, cause, *_sums()))
        .group_by(Site.id, Site.name, Site.kind, Organisation.path, cause)).all()
    names = dict(session.execute(scope.filter_organisations(select(Organisation.id, Organisation.name))).all())
    total, units, kinds, sites = Totals(), {}, {}, {}
    for row in per_site:
        figures = _totals(row)
        if row.cause is not None:
            figures.causes = {row.cause: figures.screen_days - figures.compliant}
        unit = scope.unit_of(row.path)
        for bucket, key in ((units, unit), (kinds, row.kind.value), (sites, (row.id, row.name, names.get(unit, unit)))):
            bucket.setdefault(key, Totals()).add(figures)
        total.add(figures)
    per_day = session.execute(scope.filter_ledger(select(DeliveryRollup.local_date, *_sums()))
                              .group_by(DeliveryRollup.local_date).order_by(DeliveryRollup.local_date)).all()
    return ComplianceSummary(
        scope=scope, total=total,
        by_unit=sorted(((u, names.get(u, u), t) for u, t in units.items()), key=lambda x: (_order(x[2]), x[1])),
        by_site_kind=sorted(kinds.items(), key=lambda x: (_order(x[1]), x[0])),
        by_site=sorted(((s[0], s[1], s[2], t) for s, t in sites.items()), key=lambda x: (_order(x[3]), x[2], x[1])),
        by_day=[(row.local_date, _totals(row)) for row in per_day])


def _order(totals: Totals) -> float:
    """Worst first: what needs attention leads every list."""
    return totals.delivery if totals.delivery is not None else 2.0


def screen_days(session: Session, scope: Scope, limit: int | None = None) -> Iterator[dict]:
    """Every screen-day of the scope, the short ones first, streamed from the database."""
    cause = _short_cause()
    short_first = case((met_requirement(), 1), else_=0)
    query = scope.filter_ledger(select(
        DeliveryRollup.local_date, Organisation.name.label("organisation"), Site.name.label("site"), Site.kind,
        DeliveryRollup.screen_id, Screen.name.label("screen"), DeliveryRollup.campaign_id,
        Campaign.name.label("campaign"), DeliveryRollup.required, DeliveryRollup.planned,
        DeliveryRollup.completed_in_peak, DeliveryRollup.completed_total, DeliveryRollup.makegoods,
        DeliveryRollup.failed, DeliveryRollup.missed, cause.label("cause"))
    ).outerjoin(Campaign, Campaign.id == DeliveryRollup.campaign_id).order_by(
        short_first, DeliveryRollup.local_date, Organisation.path, Site.name, DeliveryRollup.screen_id,
        DeliveryRollup.campaign_id)
    if limit is not None:
        query = query.limit(limit)
    for row in session.execute(query.execution_options(yield_per=2000)):
        delivered = min(row.completed_in_peak, row.required)
        yield {"date": row.local_date, "organisation": row.organisation, "site": row.site,
               "site_kind": row.kind.value, "screen_id": row.screen_id, "screen_name": row.screen,
               "campaign_id": row.campaign_id, "campaign_name": row.campaign, "required": row.required,
               "planned": row.planned,
               "delivered": row.completed_in_peak, "delivered_total": row.completed_total,
               "makegoods": row.makegoods, "failed": row.failed, "missed": row.missed,
               "compliance": delivered / row.required, "cause": row.cause}


# -- figures for the charts ------------------------------------------------------------------------------------

def plays_by_hour(session: Session, scope: Scope) -> dict[str, list[int]]:
    """Completed spots and make-goods of the scope per site kind and local hour of the day (0-23): a kind of site
    has its own peak windows, so its plays are charted against its own.

    Read from the hourly roll-up kept at ingest (`play_hours`, a row per site-day), bounded by the period: the same
    cost whatever the log holds. Hours are each site's local hours (its zone, as its local dates), the hours its
    peak windows are written in."""
    query = scope.filter_play_hours(select(Site.kind, *(func.sum(getattr(PlayHours, hour)) for hour in HOURS))
                                    .select_from(PlayHours)).group_by(Site.kind)
    counts: dict[str, list[int]] = {}
    for kind, *hours in session.execute(query):
        if any(hours):
            counts[kind.value] = [int(n or 0) for n in hours]
    return counts


def peak_windows_by_kind(session: Session, scope: Scope) -> dict[str, list[tuple[int, int]]]:
    """Each site kind of the scope with the peak windows (minutes from midnight) of the period's first day that most
    of its screens have: the kind's default, or the sites' own where they set them."""
    rows = session.execute(scope.filter_screens(select(Site.kind, Site.peak_windows, func.count(Screen.id))
                                                .select_from(Screen)).group_by(Site.id, Site.kind)).all()
    screens: dict[str, dict[tuple[tuple[int, int], ...], int]] = {}
    for kind, spec, n in rows:
        windows = tuple((w.start, w.end) for w in effective_peak_windows(kind, spec).on(scope.first))
        shares = screens.setdefault(kind.value, {})
        shares[windows] = shares.get(windows, 0) + n
    return {kind: list(max(shares, key=lambda w: (shares[w], w))) for kind, shares in sorted(screens.items())}


def compliance_charts(session: Session, scope: Scope, summary: ComplianceSummary, language: str) -> list[Chart]:
    """The report's charts, the same on its page and in every PDF: plays by hour (one chart per site kind that
    played, shaded with that kind's peak windows), delivery by day and by unit."""
    t = lambda key: translate(key, language)  # noqa: E731
    by_kind = plays_by_hour(session, scope)
    windows = peak_windows_by_kind(session, scope)
    played = sorted(by_kind, key=lambda kind: (-sum(by_kind[kind]), kind))
    hourly = [charts.delivery_by_hour(by_kind[kind], windows.get(kind, []), language=language,
                                      caption=t("chart.by_hour.kind").format(kind=t(f"site.{kind}")))
              for kind in played]
    if not hourly:  # nothing played: one empty chart, shaded only when a single kind of site is in scope
        only = list(windows.values()) if len(windows) == 1 else []
        hourly = [charts.delivery_by_hour([0] * 24, only[0] if only else [], language=language,
                                          caption=t("chart.by_hour"))]
    return [
        *hourly,
        charts.compliance_by_day([(day, figures.delivery) for day, figures in summary.by_day], language=language,
                                 caption=t("chart.by_day")),
        charts.compliance_by_unit([(name, figures.delivery) for _, name, figures in summary.by_unit],
                                  language=language, caption=t("chart.by_unit")),
    ]


# -- as a Report ----------------------------------------------------------------------------------------------

def _figure_row(totals: Totals, language: str, **label) -> dict:
    causes = ", ".join(f"{cause_words(c, language)}: {n}" for c, n in sorted(totals.causes.items(),
                                                                             key=lambda x: -x[1]))
    return {**label, "screen_days": totals.screen_days, "compliant": totals.compliant,
            "required": totals.required, "planned": totals.planned, "delivered": totals.delivered,
            "delivered_total": totals.delivered_total, "makegoods": totals.makegoods,
            "delivery": totals.delivery, "compliance": totals.compliance, "causes": causes}


def compliance_report(session: Session, scope: Scope, now: datetime, language: str = "vi",
                      timezone: str = DEFAULT_TIMEZONE) -> Report:
    summary = summarise(session, scope)
    en = language == "en"
    total_row = _figure_row(summary.total, language, unit="Tổng" if not en else "Total")
    sheets = [
        Sheet("Theo đơn vị" if not en else "By unit", BY_UNIT_COLUMNS,
              [_figure_row(t, language, unit=name) for _, name, t in summary.by_unit], total_row),
        Sheet("Theo loại điểm" if not en else "By site kind", BY_SITE_KIND_COLUMNS,
              [_figure_row(t, language, site_kind=k) for k, t in summary.by_site_kind],
              {**total_row, "site_kind": total_row["unit"]}),
        Sheet("Theo điểm đặt" if not en else "By site", BY_SITE_COLUMNS,
              [_figure_row(t, language, site=name, unit=unit_name) for _, name, unit_name, t in summary.by_site],
              {**total_row, "site": total_row["unit"], "unit": ""}),
        Sheet("Màn hình-ngày" if not en else "Screen-days", DAY_COLUMNS,
              ({**row, "cause": cause_words(row["cause"], language)} for row in screen_days(session, scope))),
    ]
    return Report(kind="compliance", title="Báo cáo tuân thủ phát sóng" if not en else "Broadcast compliance report",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=sheets, language=language, notes=[scope.campaign_note(language)],
                  charts=compliance_charts(session, scope, summary, language), timezone=timezone)


__all__ = ["ComplianceSummary", "Totals", "capped_delivered", "cause_words", "compliance_report",
           "met_requirement", "peak_windows_by_kind", "plays_by_hour", "screen_days", "summarise"]
