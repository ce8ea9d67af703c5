"""A campaign's dates are local dates, read in each screen's site timezone."""

from datetime import UTC, date, datetime

from sqlalchemy import select

from campaigns.calendar import is_active_at, status_on
from campaigns.fleet_file import import_fleet
from campaigns.kinds import CampaignStatus
from campaigns.models import Site
from signage.clock import VirtualClock, local_date, local_today
from signage.db import transaction

START, END = date(2024, 8, 15), date(2024, 10, 10)


def test_the_last_evening_in_london_is_still_inside_a_campaign_that_has_ended_in_hanoi():
    # 18:30 UTC on 10 October: 01:30 on the 11th in Hà Nội, 19:30 on the 10th in London.
    instant = datetime(2024, 10, 10, 18, 30, tzinfo=UTC)
    assert not is_active_at(START, END, instant, "Asia/Ho_Chi_Minh")
    assert is_active_at(START, END, instant, "Europe/London")


def test_the_first_morning_in_hanoi_is_inside_a_campaign_that_has_not_started_in_london():
    # 23:30 UTC on 14 August: 06:30 on the 15th in Hà Nội, 19:30 on the 14th in New York.
    instant = datetime(2024, 8, 14, 23, 30, tzinfo=UTC)
    assert is_active_at(START, END, instant, "Asia/Ho_Chi_Minh")
    assert not is_active_at(START, END, instant, "America/New_York")


def test_the_end_date_is_included_until_local_midnight():
    assert is_active_at(START, END, datetime(2024, 10, 10, 16, 59, 59, tzinfo=UTC), "Asia/Ho_Chi_Minh")
    assert not is_active_at(START, END, datetime(2024, 10, 10, 17, 0, tzinfo=UTC), "Asia/Ho_Chi_Minh")


def test_a_site_imported_with_another_zone_reads_the_campaign_in_that_zone(database, tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("""
schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - {id: hn-office, name: Văn phòng Hà Nội, kind: office, organisation: hn}
  - {id: paris-office, name: Văn phòng đại diện tại Paris, kind: office, organisation: hn, timezone: Europe/Paris}
""", encoding="utf-8")
    with transaction(database.sessions) as session:
        import_fleet(session, path, "Asia/Ho_Chi_Minh")
    clock = VirtualClock(datetime(2024, 10, 10, 20, 0, tzinfo=UTC))
    with database.sessions() as session:
        active = {site.id: is_active_at(START, END, clock.now(), site.timezone)
                  for site in session.scalars(select(Site))}
    assert active == {"hn-office": False, "paris-office": True}


def test_status_follows_the_local_date():
    assert status_on(START, END, date(2024, 8, 14)) is CampaignStatus.scheduled
    assert status_on(START, END, date(2024, 8, 15)) is CampaignStatus.active
    assert status_on(START, END, date(2024, 10, 10)) is CampaignStatus.active
    assert status_on(START, END, date(2024, 10, 11)) is CampaignStatus.ended


def test_a_virtual_clock_moves_only_when_told():
    clock = VirtualClock(datetime(2024, 8, 20, 16, 59, tzinfo=UTC))
    assert local_today(clock, "Asia/Ho_Chi_Minh") == date(2024, 8, 20)
    clock.set(datetime(2024, 8, 20, 17, 0, tzinfo=UTC))
    assert local_today(clock, "Asia/Ho_Chi_Minh") == date(2024, 8, 21)
    assert local_date(clock.now(), "UTC") == date(2024, 8, 20)
