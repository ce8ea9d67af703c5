from datetime import date

import pytest

from campaigns.kinds import SiteKind, default_operating_hours, default_peak_windows
from campaigns.windows import WeekSchedule, Window, parse_clock, parse_day_spec, window_instants
from signage.errors import Invalid


def test_a_clock_time_reads_as_minutes_after_midnight():
    assert parse_clock("08:30") == 510
    assert parse_clock("24:00") == 1440


@pytest.mark.parametrize("text", ["25:00", "24:01", "08:60", "8h30", "", "-1:00"])
def test_an_impossible_clock_time_is_refused_with_the_format_to_use(text):
    with pytest.raises(Invalid) as error:
        parse_clock(text)
    assert "HH:MM" in error.value.fix


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(Invalid, match="ends before it starts"):
        Window.parse("11:00-08:00")


def test_day_specs_name_single_days_ranges_and_every_day():
    assert parse_day_spec("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_day_spec("sat") == [5]
    assert parse_day_spec("daily") == list(range(7))
    with pytest.raises(Invalid):
        parse_day_spec("fri-mon")


def test_a_later_day_spec_overrides_an_earlier_one():
    schedule = WeekSchedule.from_spec({"daily": ["06:00-09:00"], "sun": ["07:00-08:00"]})
    assert schedule.on(date(2024, 8, 18)) == (Window(420, 480),)  # a Sunday
    assert schedule.on(date(2024, 8, 19)) == (Window(360, 540),)


def test_overlapping_windows_on_one_day_are_refused():
    with pytest.raises(Invalid, match="overlap"):
        WeekSchedule.from_spec({"mon": ["08:00-10:00", "09:30-11:00"]})


def test_a_schedule_written_back_reads_the_same():
    spec = {"mon-fri": ["14:00-16:30", "08:00-11:00"], "sat": ["08:00-11:00"]}
    schedule = WeekSchedule.from_spec(spec)
    assert schedule.to_spec() == {"mon-fri": ["08:00-11:00", "14:00-16:30"], "sat": ["08:00-11:00"]}
    assert WeekSchedule.from_spec(schedule.to_spec()) == schedule


def test_a_peak_window_outside_operating_hours_is_named_with_its_day():
    operating = WeekSchedule.from_spec({"mon-fri": ["07:30-17:00"]})
    peaks = WeekSchedule.from_spec({"mon-fri": ["08:00-11:00"], "sat": ["08:00-09:00"]})
    problems = peaks.problems_outside(operating)
    assert len(problems) == 1 and "on sat" in problems[0]


@pytest.mark.parametrize("kind", list(SiteKind))
def test_every_site_kind_has_default_peaks_inside_its_operating_hours(kind):
    peaks = default_peak_windows(kind)
    assert any(peaks.days), f"{kind} has no peak windows at all"
    assert peaks.problems_outside(default_operating_hours(kind)) == []


def test_a_ward_office_has_no_peak_windows_on_sunday():
    assert default_peak_windows(SiteKind.ward_office).on(date(2024, 8, 18)) == ()


def test_window_instants_carry_the_sites_offset():
    start, end = window_instants(date(2024, 8, 20), Window.parse("05:30-24:00"), "Asia/Ho_Chi_Minh")
    assert start.isoformat() == "2024-08-20T05:30:00+07:00"
    assert end.isoformat() == "2024-08-21T00:00:00+07:00"
