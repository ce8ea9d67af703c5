"""The alerts' deliveries, screen by screen: the players' acknowledgements noted as ingest stores them.

Players acknowledge in proof-of-play (`kind: alert`, the alert's id in `spot_id`): a `started` record when an
alert first shows, and one with the outcome when it is over; `record_alert_acks` notes both in `alert_deliveries`,
in ingest's transaction. The commands that start and stop alerts go out from `alert_dispatch`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from campaigns.models import Alert
from scheduler.models import AlertDelivery

ENDINGS = ("completed", "interrupted", "failed")


def record_alert_acks(session: Session, rows: list[dict[str, Any]]) -> int:
    """Note new `kind: alert` proof-of-play in the alerts' deliveries (in ingest's transaction); returns how many.
    Records naming an alert that does not exist are kept in the log but noted nowhere else."""
    acks = [row for row in rows if row["kind"] == "alert" and row["spot_id"]]
    if not acks:
        return 0
    known = set(session.scalars(select(Alert.id).where(Alert.id.in_({row["spot_id"] for row in acks}))))
    acks = [row for row in acks if row["spot_id"] in known]
    pairs = {(row["spot_id"], row["player_id"]) for row in acks}
    if not pairs:
        return 0
    deliveries = {(d.alert_id, d.screen_id): d for d in session.scalars(select(AlertDelivery).where(
        tuple_(AlertDelivery.alert_id, AlertDelivery.screen_id).in_(sorted(pairs))))}
    for row in sorted(acks, key=lambda r: r["ended_at"]):
        key = (row["spot_id"], row["player_id"])
        delivery = deliveries.get(key)
        if delivery is None:
            delivery = deliveries[key] = AlertDelivery(alert_id=key[0], screen_id=key[1], sends=0)
            session.add(delivery)
        if delivery.started_at is None or row["started_at"] < delivery.started_at:
            delivery.started_at = row["started_at"]
        if row["status"] in ENDINGS and (delivery.ended_at is None or row["ended_at"] >= delivery.ended_at):
            delivery.ended_at, delivery.outcome, delivery.reason = row["ended_at"], row["status"], row["reason"]
    session.flush()
    return len(acks)


__all__ = ["ENDINGS", "record_alert_acks"]
