"""The compliance report's figures, checked by hand against the known day of proof-of-play in test_ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from scheduler.reports.compliance import compliance_report, screen_days, summarise
from scheduler.reports.scope import Scope
from tests.test_ledger import HANOI, PHULA_1, PHULA_2, PHULA_SPEAKER, TUESDAY, VANQUAN, at, close, ledger  # noqa: F401
from tests.test_pop_log_csv import assert_same_log

BALA = "hn-nt-bala-001"  # the district's own intersection LED: 10 a day, never heard from


@pytest.fixture
def closed(ledger, clock):  # noqa: F811
    close(ledger, clock, datetime(2024, 8, 21, 0, 30, tzinfo=HANOI))
    return ledger


def hadong(campaign: str | None = "ihanoi-2024", first: date = TUESDAY, last: date = TUESDAY) -> Scope:
    return Scope("hn-hadong", "Quận Hà Đông", "/hn/hn-hadong/", first, last, campaign)


def test_the_district_total_adds_up_its_five_screen_days(closed):
    with closed.sessions() as session:
        total = summarise(session, hadong()).total
    # Van Quan 9 of 10; Phu La 1 15 of 15 (+1 off-peak); Phu La 2 0 of 15; the speaker 0 of 15; Ba La 0 of 10.
    assert (total.screen_days, total.compliant) == (5, 1)
    assert (total.required, total.delivered, total.delivered_total, total.makegoods) == (65, 24, 25, 1)
    assert total.delivery == pytest.approx(24 / 65)
    assert total.causes == {"media_missing": 1, "offline": 2, "no_plan": 1}


def test_units_are_the_organisations_under_the_scope_worst_first(closed):
    with closed.sessions() as session:
        units = [(unit, t.required, t.delivered, t.compliant) for unit, _, t in summarise(session, hadong()).by_unit]
    assert units == [("hn-hadong", 10, 0, 0), ("hn-hadong-phula", 45, 15, 1), ("hn-hadong-vanquan", 10, 9, 0)]


def test_screen_days_list_the_short_ones_first_with_their_causes(closed):
    with closed.sessions() as session:
        rows = list(screen_days(session, hadong()))
    assert [r["screen_id"] for r in rows][-1] == PHULA_1
    causes = {r["screen_id"]: r["cause"] for r in rows}
    assert causes == {VANQUAN: "media_missing", PHULA_2: "offline", PHULA_SPEAKER: "no_plan", BALA: "offline",
                      PHULA_1: None}
    assert next(r for r in rows if r["screen_id"] == VANQUAN)["compliance"] == pytest.approx(0.9)


def test_screen_days_name_their_screen_and_campaign_in_the_one_query_beside_the_ids(closed):
    from sqlalchemy import event

    statements = []
    with closed.sessions() as session:
        engine = session.get_bind()
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            rows = list(screen_days(session, hadong()))
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert len(statements) == 1  # the names are joined in, not asked for row by row
    phula = next(r for r in rows if r["screen_id"] == PHULA_1)
    assert phula["screen_name"] == "Khu tiếp dân – màn LCD 1"
    assert phula["campaign_id"] == "ihanoi-2024" and phula["campaign_name"].startswith("Tuyên truyền ứng dụng iHanoi")


def test_a_ward_sees_only_its_own_screen_days(closed):
    scope = Scope("hn-hadong-vanquan", "Phường Văn Quán", "/hn/hn-hadong/hn-hadong-vanquan/", TUESDAY, TUESDAY)
    with closed.sessions() as session:
        assert [r["screen_id"] for r in screen_days(session, scope)] == [VANQUAN]


def test_a_day_not_yet_closed_shows_its_shortfall_as_in_progress(ledger):  # noqa: F811
    with ledger.sessions() as session:
        causes = {r["screen_id"]: r["cause"] for r in screen_days(session, hadong())}
    assert causes[PHULA_2] == "in_progress" and causes[PHULA_1] is None


def test_days_outside_the_period_and_the_campaign_are_left_out(closed):
    with closed.sessions() as session:
        assert summarise(session, hadong(first=date(2024, 8, 14), last=date(2024, 8, 14))).total.screen_days == 0
        assert summarise(session, hadong(campaign="no-such-campaign")).total.screen_days == 0


def test_the_report_has_a_sheet_per_level_with_the_totals_row(closed):
    with closed.sessions() as session:
        report = compliance_report(session, hadong(), datetime(2024, 8, 21, tzinfo=HANOI))
        sheets = {sheet.name: sheet for sheet in report.sheets}
        assert list(sheets) == ["Theo đơn vị", "Theo loại điểm", "Theo điểm đặt", "Màn hình-ngày"]
        assert sheets["Theo đơn vị"].totals["required"] == 65
        assert "Thiếu tệp media: 1" in sheets["Theo đơn vị"].totals["causes"]
        assert len(list(sheets["Màn hình-ngày"].rows)) == 5


def test_the_proof_of_play_log_lists_every_attempt_of_the_scope_in_start_order(closed):
    from scheduler.reports.operations import pop_log

    scope = Scope("hn-hadong-vanquan", "Phường Văn Quán", "/hn/hn-hadong/hn-hadong-vanquan/", TUESDAY, TUESDAY)
    with closed.sessions() as session:
        rows = list(pop_log(session, scope))
    assert len(rows) == 11  # 8 spots, 1 make-good, 1 failure, 1 miss (the early play of 14 August is outside)
    assert [r["started_at"] for r in rows] == sorted(r["started_at"] for r in rows)
    assert {r["status"] for r in rows} == {"completed", "failed", "missed"}
    assert rows[0]["campaign_name"] and rows[0]["site"] and rows[0]["organisation"] == "UBND phường Văn Quán"


def test_rounds_give_each_ward_its_screens_compliant_and_plays(closed):
    from scheduler.reports.operations import rounds

    with closed.sessions() as session:
        by_unit = {r["unit"]: r for r in rounds(session, hadong())}
    phula = next(r for name, r in by_unit.items() if "Phú La" in name)
    assert (phula["screens"], phula["screens_compliant"], phula["plays_delivered"], phula["plays_required"]) == (
        3, 1, 15, 45)
    assert phula["compliance"] == pytest.approx(1 / 3)


def test_screen_health_counts_the_share_of_operating_hours_a_player_was_heard(closed):
    from scheduler.reports.operations import health_days

    scope = Scope("hn-hadong-vanquan", "Phường Văn Quán", "/hn/hn-hadong/hn-hadong-vanquan/", TUESDAY, TUESDAY)
    with closed.sessions() as session:
        [row] = list(health_days(session, scope))
    # Three statuses (90 s) in a ward office's Tuesday operating hours.
    with closed.sessions() as session:
        from campaigns.models import Site
        from scheduler.reports.operations import operating_seconds

        seconds = operating_seconds(session.get(Site, "hadong-vanquan"), TUESDAY)
    assert row["uptime"] == pytest.approx(90 / seconds)
    assert row["had_plan"] == "có"


def test_screen_health_now_says_online_offline_or_never_as_the_fleet_pages_do(ledger):  # noqa: F811
    from campaigns.screen_state import ONLINE_WITHIN
    from scheduler.reports.columns import HEALTH_COLUMNS, NOW_COLUMNS
    from scheduler.reports.operations import health_now, health_report

    last_heard = at(9, 2)  # the three players that reported were last heard at 09:02 (test_ledger)
    screens = (VANQUAN, PHULA_1, PHULA_2, PHULA_SPEAKER, BALA)
    with ledger.sessions() as session:
        within = {r["screen_id"]: r for r in health_now(session, hadong(), last_heard + ONLINE_WITHIN)}
        after = {r["screen_id"]: r for r in health_now(session, hadong(), last_heard + ONLINE_WITHIN
                                                        + timedelta(seconds=1))}
        report = health_report(session, hadong(), last_heard + ONLINE_WITHIN)
        assert [sheet.columns for sheet in report.sheets] == [NOW_COLUMNS, HEALTH_COLUMNS]
        assert list(report.sheets[0].rows) == list(within.values())
    online, offline, never = "Đang hoạt động", "Mất kết nối", "Chưa kết nối lần nào"
    assert {s: within[s]["state"] for s in screens} == {VANQUAN: online, PHULA_1: online,
                                                       PHULA_SPEAKER: online, PHULA_2: never, BALA: never}
    assert {s: after[s]["state"] for s in screens} == {VANQUAN: offline, PHULA_1: offline,
                                                      PHULA_SPEAKER: offline, PHULA_2: never, BALA: never}
    assert within[PHULA_2]["last_seen"] is None and within[VANQUAN]["journal_backlog"] == 0


def test_the_logs_fast_csv_says_what_the_general_export_says(closed):
    import csv
    import io

    from scheduler.reports.exports import iter_csv
    from scheduler.reports.operations import pop_log_csv, pop_report

    def read(chunks) -> list[list[str]]:
        data = b"".join(chunks)
        assert data.startswith(b"\xef\xbb\xbf")
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))

    with closed.sessions() as session:
        fast = read(pop_log_csv(session, hadong(campaign=None), "Asia/Ho_Chi_Minh"))
        report = pop_report(session, hadong(campaign=None), datetime(2024, 8, 21, tzinfo=HANOI))
        report.timezone = "Asia/Ho_Chi_Minh"
        general = read(iter_csv(report))
    assert len(fast) == 1 + 11 + 16
    assert_same_log(fast, general)
