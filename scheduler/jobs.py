"""The server's timed work, on APScheduler 3: keep plans current, roll them daily, move campaign statuses, tell
people what needs them (scheduler/notices.py: screens dark in their peak hours, and the other noters).

One 1-second job watches the planning revision and the local date of every zone; a change of
either re-plans (so edits from any process are planned within about two seconds, and a burst of
edits is planned once). Only the holder of the planning lease plans; another server stands by.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from campaigns.calendar import status_on
from campaigns.kinds import CampaignStatus
from campaigns.models import Campaign
from campaigns.revision import current_revision
from scheduler.alert_dispatch import AlertDispatcher
from scheduler.database import Database
from scheduler.lease import LEASE_SECONDS, Lease, make_holder_id
from scheduler.ledger import close_days
from scheduler.notices import RUN_EVERY, NoticeJob
from scheduler.plan_inputs import load_planning_inputs, planning_horizon
from scheduler.planning import PlanningRound, plan_and_store
from scheduler.retention import RetentionJob
from scheduler.screen_action_dispatch import ScreenActionSender
from signage.clock import Clock, local_today
from signage.db import transaction

log = logging.getLogger("signage.scheduler")

# The day rolls a few minutes after local midnight, clear of anything stamped at 00:00 itself.
ROLL_DELAY = timedelta(minutes=5)
RENEW_EVERY = timedelta(seconds=LEASE_SECONDS / 3)


class PlanningService:
    """Decides when to plan, and plans; driven by the jobs below, or called directly (tests, CLI)."""

    def __init__(self, database: Database, clock: Clock, default_timezone: str,
                 on_plans_changed: Callable[[PlanningRound], None] | None = None) -> None:
        self.database = database
        self.clock = clock
        self.default_timezone = default_timezone
        self.lease = Lease(database.sessions, make_holder_id())
        self.on_plans_changed = on_plans_changed
        self.holding = False
        self._renewed_at: datetime | None = None
        self._planned_key: tuple | None = None
        self._zones: tuple[int, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def holds_lease(self, now: datetime) -> bool:
        if self._renewed_at is None or now - self._renewed_at >= RENEW_EVERY or not self.holding:
            held = self.lease.acquire(now)
            if held != self.holding:
                log.info("planning lease %s by %s", "taken" if held else "held by another server; standing by",
                         self.lease.holder)
            self.holding, self._renewed_at = held, now
        return self.holding

    def tick(self, force: bool = False) -> PlanningRound | None:
        """Plan if the inputs or the local date changed since the last round (or when forced)."""
        with self._lock:
            now = self.clock.now()
            if not self.holds_lease(now):
                return None
            with self.database.sessions() as session:
                revision = current_revision(session)
                if self._zones is None or self._zones[0] != revision:
                    self._zones = (revision, load_planning_inputs(session).timezones)
            horizon = planning_horizon(self._zones[1], now - ROLL_DELAY)
            key = (revision, horizon)
            if key == self._planned_key and not force:
                return None
            with transaction(self.database.sessions) as session:
                planned = plan_and_store(session, now - ROLL_DELAY)
            self._planned_key = (planned.revision, (planned.first_day, planned.days))
            log.info("planned %d players from %s for %d days (revision %d): %d new plans", planned.players,
                     planned.first_day, planned.days, planned.revision, len(planned.changed))
            if planned.changed and self.on_plans_changed is not None:
                self.on_plans_changed(planned)
            return planned

    def update_campaign_statuses(self) -> list[tuple[str, CampaignStatus]]:
        """Move scheduled and active campaigns along by today's date in the default timezone."""
        now = self.clock.now()
        if not self.holds_lease(now):
            return []
        today = local_today(self.clock, self.default_timezone)
        moved = []
        with transaction(self.database.sessions) as session:
            for campaign in session.scalars(select(Campaign).where(
                    Campaign.status.in_((CampaignStatus.scheduled, CampaignStatus.active)))):
                status = status_on(campaign.start_date, campaign.end_date, today)
                if status is not campaign.status:
                    campaign.status = status
                    campaign.updated_at = now
                    moved.append((campaign.id, status))
        for campaign_id, status in moved:
            log.info("campaign %s is now %s", campaign_id, status.value)
        return moved

    def close_ledger_days(self) -> int:
        """Close the screen-days that have ended, naming why short ones fell short (scheduler/ledger.py)."""
        now = self.clock.now()
        if not self.holds_lease(now):
            return 0
        with transaction(self.database.sessions) as session:
            closed = close_days(session, now)
        if closed:
            log.info("closed %d screen-days in the delivery ledger", closed)
        return closed

    def daily_roll(self) -> None:
        self.update_campaign_statuses()
        self.tick(force=True)
        self.close_ledger_days()

    def stop(self) -> None:
        if self.holding:
            self.lease.release(self.clock.now())
            self.holding = False


def start_jobs(service: PlanningService, timezone: str, alerts: AlertDispatcher | None = None,
               screen_actions: ScreenActionSender | None = None,
               notices: NoticeJob | None = None, retention: RetentionJob | None = None) -> BackgroundScheduler:
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # the 1-second job would flood the log
    scheduler = BackgroundScheduler(timezone=timezone, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    scheduler.add_job(service.tick, "interval", seconds=1, id="replan-on-change", replace_existing=True)
    scheduler.add_job(service.daily_roll, "cron", hour=0, minute=ROLL_DELAY.seconds // 60, id="daily-roll",
                      replace_existing=True)
    scheduler.add_job(service.update_campaign_statuses, "cron", hour=0, minute=1, id="campaign-status",
                      replace_existing=True)
    # Hourly: sites in other timezones end their days at other hours; closing is idempotent.
    scheduler.add_job(service.close_ledger_days, "cron", minute=20, id="close-ledger-days", replace_existing=True)
    if alerts is not None:
        # Alerts go out when issued; this only catches commands that were lost, and alerts issued without a broker.
        scheduler.add_job(alerts.resend_due, "interval", seconds=5, id="alert-resends", replace_existing=True)
    if screen_actions is not None:
        # The routes send remote actions at once; this sends those stored by the command line.
        scheduler.add_job(screen_actions.send_due, "interval", seconds=5, id="screen-actions",
                          replace_existing=True)
    if notices is not None:
        scheduler.add_job(notices.run, "interval", seconds=RUN_EVERY.seconds, id="notices",
                          replace_existing=True)
    if retention is not None:
        # At night, when the fewest plays arrive; it deletes in short batches, so ingest is never held long.
        scheduler.add_job(retention.run, "cron", hour=3, minute=30, id="retention", replace_existing=True)
    scheduler.start()
    return scheduler
