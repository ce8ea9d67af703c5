"""What a simulation proves: the ledger's screen-days against what really happened to each screen.

The simulation knows the truth the ledger has to work out: when each player was down, when its downloads
failed, when the server or broker was away. A screen-day counts as online when its player ran for at least half
of that day's peak time; the run reports how many of those were compliant, and whether the cause the ledger
gave each short screen-day is one the injected faults explain.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import ledger
from scheduler.models import DeliveryRollup, PlayRecord
from simulation.faults import FaultSchedule, PlayerTimeline, Span

Spans = list[tuple[datetime, datetime]]


@dataclass
class Mismatch:
    screen_id: str
    campaign_id: str
    day: date
    cause: str | None
    expected: list[str]


@dataclass
class Findings:
    screen_days: int = 0
    compliant: int = 0
    online: int = 0  # screen-days whose player ran at least half of the peak time
    online_compliant: int = 0
    required: int = 0
    delivered: int = 0
    causes: Counter = field(default_factory=Counter)
    causes_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    records: int = 0
    spots_doubled: int = 0

    @property
    def online_compliance(self) -> float:
        return self.online_compliant / self.online if self.online else 1.0

    def as_dict(self) -> dict:
        return {"screen_days": self.screen_days, "compliant": self.compliant, "online_screen_days": self.online,
                "online_compliant": self.online_compliant, "online_compliance": round(self.online_compliance, 5),
                "required": self.required, "delivered": self.delivered, "causes": dict(self.causes),
                "causes_checked": self.causes_checked, "causes_matching": self.causes_checked - len(self.mismatches),
                "mismatches": [{"screen_id": m.screen_id, "campaign_id": m.campaign_id, "date": m.day.isoformat(),
                                "cause": m.cause, "expected": m.expected} for m in self.mismatches[:100]],
                "records": self.records, "spots_doubled": self.spots_doubled}


def _overlap(spans: Spans, others: list[Span]) -> float:
    return sum(max(0.0, (min(end, other.end) - max(start, other.start)).total_seconds())
               for start, end in spans for other in others)


def true_causes(timeline: PlayerTimeline, faults: FaultSchedule, peak: Spans, plan_reason: str | None) -> set[str]:
    """The causes the injected faults give a short screen-day (empty: nothing injected explains a shortfall)."""
    if plan_reason:
        return {ledger.NO_CAPACITY, ledger.NO_PLAYABLE_CREATIVE}
    causes = set()
    if _overlap(peak, timeline.down_spans()) > 0:
        causes.add(ledger.OFFLINE)
    day_start, day_end = (min(s for s, _ in peak), max(e for _, e in peak)) if peak else (None, None)
    if day_start is not None and any(span.start < day_end and day_start < span.end
                                     for span, _ in timeline.download_failures):
        causes.add(ledger.MEDIA_MISSING)
    if _overlap(peak, [*faults.server_downtime, *faults.broker_outages]) > 0:
        causes |= {ledger.NO_PLAN, ledger.OFFLINE}
    return causes


def check_run(session: Session, faults: FaultSchedule, peak_windows: dict[tuple[str, date], Spans],
              first_day: date, last_day: date) -> Findings:
    findings = Findings()
    rows = session.scalars(select(DeliveryRollup).where(
        DeliveryRollup.local_date.between(first_day, last_day), DeliveryRollup.required > 0,
        DeliveryRollup.closed.is_(True)).order_by(DeliveryRollup.screen_id, DeliveryRollup.local_date))
    for row in rows:
        findings.screen_days += 1
        findings.required += row.required
        findings.delivered += min(row.completed_in_peak, row.required)
        compliant = row.completed_in_peak >= row.required
        findings.compliant += compliant
        peak = peak_windows.get((row.screen_id, row.local_date), [])
        timeline = faults.of(row.screen_id)
        peak_seconds = sum((end - start).total_seconds() for start, end in peak)
        if _overlap(peak, timeline.down_spans()) <= peak_seconds / 2:
            findings.online += 1
            findings.online_compliant += compliant
        if compliant:
            continue
        findings.causes[row.cause or "none"] += 1
        findings.causes_checked += 1
        expected = true_causes(timeline, faults, peak, row.plan_reason)
        if row.cause not in expected:
            findings.mismatches.append(Mismatch(row.screen_id, row.campaign_id, row.local_date, row.cause,
                                                sorted(expected)))
    findings.records = session.scalar(select(func.count()).select_from(PlayRecord)) or 0
    doubled = (select(PlayRecord.spot_id).where(PlayRecord.status == "completed",
                                                 PlayRecord.kind.in_(("spot", "makegood")))
               .group_by(PlayRecord.spot_id).having(func.count() > 1).subquery())
    findings.spots_doubled = session.scalar(select(func.count()).select_from(doubled)) or 0
    return findings

