"""Plans as files: `signage plan` writes one <player_id>.json per player and a summary.json.

Plans can come from the database or straight from a fleet and a campaign file (a what-if that
touches no database: the files are loaded into a private in-memory one).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.pool import StaticPool

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore
from scheduler.database import Database, migrate
from scheduler.plan_inputs import PlanningInputs, load_planning_inputs
from scheduler.planner import PlanningResult, capacity_shortfalls
from signage.clock import Clock
from signage.db import make_engine, make_session_factory, transaction


def inputs_from_files(fleet_file: Path, campaign_file: Path, clock: Clock, timezone: str) -> PlanningInputs:
    """Planning inputs from files alone. Raises FileRejected as the imports do."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    migrate(engine)
    database = Database(engine, make_session_factory(engine))
    try:
        with (tempfile.TemporaryDirectory(prefix="signage-whatif-") as media_dir,
              transaction(database.sessions) as session):
            import_fleet(session, fleet_file, timezone)
            import_campaigns(session, campaign_file, MediaStore(Path(media_dir)), clock, timezone)
            return load_planning_inputs(session)
    finally:
        database.dispose()


def summary_document(result: PlanningResult, generated_at: datetime) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"screens": set(), "screen_days": 0, "required": 0,
                                                             "planned": 0, "shortfall": 0})
    rows = []
    for row in result.summary:
        total = totals[row.campaign_id]
        total["screens"].add(row.screen_id)
        total["screen_days"] += 1
        total["required"] += row.required
        total["planned"] += row.planned
        total["shortfall"] += row.shortfall
        rows.append({"campaign_id": row.campaign_id, "screen_id": row.screen_id, "site_id": row.site_id,
                     "date": row.date.isoformat(), "required": row.required, "planned": row.planned,
                     "shortfall": row.shortfall, "reason": row.reason})
    return {
        "schema": "signage.plan-summary/1",
        "generated_at": generated_at.isoformat(),
        "first_day": result.first_day.isoformat(),
        "days": result.days,
        "players": len(result.player_ids),
        "campaigns": [{"campaign_id": cid, **{k: (len(v) if k == "screens" else v) for k, v in t.items()}}
                      for cid, t in sorted(totals.items())],
        "shortfalls": [{"campaign_id": s.campaign_id, "site_id": s.site_id, "date": s.date.isoformat(),
                        "reason": s.reason, "screens": s.screens, "missing": s.missing}
                       for s in capacity_shortfalls(result)],
        "rows": rows,
    }


def write_plan_files(result: PlanningResult, out_dir: Path, generated_at: datetime,
                     advance: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Write every plan (its canonical JSON, as signed and sent) and summary.json; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for player_id in result.player_ids:
        (out_dir / f"{player_id}.json").write_bytes(result.plan_json(player_id))
        advance()
    summary = summary_document(result, generated_at)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-08-20") from None
