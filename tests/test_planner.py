"""The planner: hand-checked days on known windows, then properties over random small fleets.

Inputs are built directly as the planner's dataclasses; nothing here touches the database or files.
2024-08-19 is a Monday; ward offices have peak windows 08:00-11:00 and 14:00-16:30 on weekdays, 08:00-11:00 on
Saturdays and none on Sundays.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from campaigns.kinds import (
    MediaKind,
    Orientation,
    ScreenKind,
    SiteKind,
    WindowPolicy,
    default_operating_hours,
    default_peak_windows,
)
from campaigns.windows import WeekSchedule, Window, window_instants
from scheduler.planner import (
    NO_CAPACITY,
    NO_PLAYABLE_CREATIVE,
    PlanCampaign,
    PlanCreative,
    PlanningResult,
    PlanOverride,
    PlanScreen,
    SiteShortfall,
    capacity_shortfalls,
    plan_fleet,
    resolve_targets,
)
from signage.protocol import Plan, Spot, canonical_json, plan_version

HANOI = "Asia/Ho_Chi_Minh"
MONDAY = date(2024, 8, 19)
SATURDAY = date(2024, 8, 24)
SUNDAY = date(2024, 8, 25)
GENERATED_AT = datetime(2024, 8, 18, 17, 5, tzinfo=UTC)
PHULA = "/hn/hn-hadong/hn-hadong-phula/"
VANQUAN = "/hn/hn-hadong/hn-hadong-vanquan/"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def creative(name: str, kind: MediaKind, seconds: int) -> PlanCreative:
    mime = {MediaKind.video: "video/mp4", MediaKind.image: "image/png", MediaKind.audio: "audio/mpeg"}[kind]
    return PlanCreative(sha(name), kind, mime, 1000 + seconds, seconds * 1000)


CLIP = creative("ihanoi-30s.mp4", MediaKind.video, 30)
POSTER = creative("ihanoi-poster.png", MediaKind.image, 15)
JINGLE = creative("ihanoi-spot.mp3", MediaKind.audio, 20)


def schedule(spec: dict[str, list[str]]) -> WeekSchedule:
    return WeekSchedule.from_spec(spec)


def screen(screen_id: str, *, site: str = "site-phula", kind: ScreenKind = ScreenKind.lcd,
           site_kind: SiteKind = SiteKind.ward_office, timezone: str = HANOI, org: str = PHULA,
           peak: WeekSchedule | None = None, operating: WeekSchedule | None = None,
           groups: frozenset[str] = frozenset(), house_loop: tuple[PlanCreative, ...] = ()) -> PlanScreen:
    return PlanScreen(screen_id, kind, site, site_kind, timezone, org,
                      operating or default_operating_hours(site_kind), peak or default_peak_windows(site_kind),
                      groups, house_loop)


def campaign(campaign_id: str = "ihanoi", **fields) -> PlanCampaign:
    defaults = {"organisation_path": "/hn/", "start_date": date(2024, 8, 15), "end_date": date(2024, 10, 10),
                "creatives": (CLIP,), "target_org_paths": frozenset({"/hn/"})}
    return PlanCampaign(campaign_id, **{**defaults, **fields})


def plan(screens: list[PlanScreen], campaigns: list[PlanCampaign], first_day: date = MONDAY, days: int = 1,
         **options) -> PlanningResult:
    return plan_fleet(screens, campaigns, first_day, days, GENERATED_AT, **options)


def local_starts(result: PlanningResult, player_id: str, campaign_id: str | None = None) -> list[str]:
    """Spot starts as local 'YYYY-MM-DD HH:MM:SS' in the plan's own timezone."""
    p = result.plan(player_id)
    zone = ZoneInfo(p.timezone)
    return [s.start.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") for s in p.spots
            if campaign_id is None or s.campaign_id == campaign_id]


def spots_on(result: PlanningResult, player_id: str, day: date, campaign_id: str | None = None) -> list[Spot]:
    p = result.plan(player_id)
    zone = ZoneInfo(p.timezone)
    return [s for s in p.spots if s.start.astimezone(zone).date() == day
            and (campaign_id is None or s.campaign_id == campaign_id)]


# ---------------------------------------------------------------------------------------------------------
# Hand-checked days


def test_a_ward_office_gets_ten_spots_evenly_spread_over_its_weekday_peak_windows():
    # W = 180 + 150 = 330 minutes, W/r = 33 min: the j-th spot starts (j − ½)·33 min into the joined windows.
    result = plan([screen("phula-1")], [campaign()])
    assert local_starts(result, "phula-1") == [
        "2024-08-19 08:16:30", "2024-08-19 08:49:30", "2024-08-19 09:22:30", "2024-08-19 09:55:30",
        "2024-08-19 10:28:30", "2024-08-19 14:01:30", "2024-08-19 14:34:30", "2024-08-19 15:07:30",
        "2024-08-19 15:40:30", "2024-08-19 16:13:30",
    ]


def test_a_ward_office_gets_nothing_on_sunday():
    result = plan([screen("phula-1")], [campaign()], first_day=SATURDAY, days=3)
    assert len(spots_on(result, "phula-1", SATURDAY)) == 10
    assert spots_on(result, "phula-1", SUNDAY) == []
    assert len(spots_on(result, "phula-1", SUNDAY + timedelta(days=1))) == 10


def test_a_day_without_windows_asks_nothing_of_the_campaign():
    result = plan([screen("phula-1")], [campaign()], first_day=SUNDAY, days=1)
    assert result.summary == ()
    assert capacity_shortfalls(result) == []


def test_a_campaign_plays_up_to_and_including_its_end_date_and_not_after():
    result = plan([screen("phula-1")], [campaign(end_date=MONDAY + timedelta(days=1))], days=3)
    per_day = Counter(s[:10] for s in local_starts(result, "phula-1"))
    assert per_day == {"2024-08-19": 10, "2024-08-20": 10}


def test_a_campaign_starts_on_its_start_date():
    result = plan([screen("phula-1")], [campaign(start_date=MONDAY + timedelta(days=2))], days=3)
    assert {s[:10] for s in local_starts(result, "phula-1")} == {"2024-08-21"}


def test_campaign_dates_are_read_in_the_site_timezone():
    # Tokyo's 00:00-02:00 on 21 August is still 20 August in Hà Nội; the campaign runs on 21 August only.
    night = schedule({"daily": ["00:00-02:00"]})
    tokyo = screen("tokyo-1", site="site-tokyo", timezone="Asia/Tokyo", peak=night,
                   operating=schedule({"daily": ["00:00-24:00"]}))
    one_day = campaign(start_date=date(2024, 8, 21), end_date=date(2024, 8, 21))
    result = plan([tokyo], [one_day], first_day=date(2024, 8, 20), days=3)
    spots = result.plan("tokyo-1").spots
    assert len(spots) == 10
    assert {s.start.isoformat()[:10] for s in spots} == {"2024-08-21"}
    assert {s.start.utcoffset() for s in spots} == {timedelta(hours=9)}
    assert spots[0].start.isoformat() == "2024-08-21T00:06:00+09:00"


def test_a_window_across_the_night_clocks_go_back_is_spread_over_its_real_four_hours():
    night = screen("london-1", site="site-london", timezone="Europe/London", peak=schedule({"daily": ["00:00-03:00"]}),
                   operating=schedule({"daily": ["00:00-24:00"]}))
    result = plan([night], [campaign(plays_per_day=8, end_date=date(2024, 12, 31))], first_day=date(2024, 10, 27))
    assert [s.start.isoformat()[11:] for s in result.plan("london-1").spots] == [
        "00:15:00+01:00", "00:45:00+01:00", "01:15:00+01:00", "01:45:00+01:00",
        "01:15:00+00:00", "01:45:00+00:00", "02:15:00+00:00", "02:45:00+00:00"]


def test_a_plan_covers_whole_local_days_of_the_screens_zone():
    tokyo = screen("tokyo-1", site="site-tokyo", timezone="Asia/Tokyo")
    p = plan([tokyo], [campaign()], days=3).plan("tokyo-1")
    assert (p.timezone, p.valid_from.isoformat(), p.valid_until.isoformat()) == (
        "Asia/Tokyo", "2024-08-19T00:00:00+09:00", "2024-08-22T00:00:00+09:00")
    assert [w.start.isoformat() for w in p.peak_windows[:2]] == ["2024-08-19T08:00:00+09:00",
                                                                 "2024-08-19T14:00:00+09:00"]
    assert p.operating_hours[0].end.isoformat() == "2024-08-19T17:00:00+09:00"


def test_a_head_of_unit_override_to_15_gives_15_on_that_units_screens_only():
    raised = campaign(overrides=(PlanOverride(15, organisation_path=PHULA),))
    screens = [screen("phula-1"), screen("phula-2"), screen("vanquan-1", site="site-vanquan", org=VANQUAN)]
    result = plan(screens, [raised])
    assert [len(result.plan(s.id).spots) for s in screens] == [15, 15, 10]
    assert {(r.screen_id, r.required) for r in result.summary} == {("phula-1", 15), ("phula-2", 15),
                                                                  ("vanquan-1", 10)}


def test_a_site_override_raises_the_rate_on_that_site_only():
    raised = campaign(overrides=(PlanOverride(12, site_id="site-vanquan"),))
    screens = [screen("phula-1"), screen("vanquan-1", site="site-vanquan", org=VANQUAN)]
    result = plan(screens, [raised])
    assert [len(result.plan(s.id).spots) for s in screens] == [10, 12]


def test_an_override_below_the_campaigns_rate_does_not_lower_it():
    lowered = campaign(plays_per_day=10, overrides=(PlanOverride(4, organisation_path=PHULA),))
    assert len(plan([screen("phula-1")], [lowered]).plan("phula-1").spots) == 10


def test_a_full_peak_window_reports_no_capacity_naming_site_day_and_missing_spots():
    # 10 minutes of peak window: half of it holds ten 30-second spots, not twenty.
    short = schedule({"daily": ["08:00-08:10"]})
    screens = [screen("phula-1", peak=short), screen("phula-2", peak=short)]
    result = plan(screens, [campaign(plays_per_day=20)], days=2)
    assert capacity_shortfalls(result) == [
        SiteShortfall("ihanoi", "site-phula", MONDAY, NO_CAPACITY, screens=2, missing=20),
        SiteShortfall("ihanoi", "site-phula", MONDAY + timedelta(days=1), NO_CAPACITY, screens=2, missing=20),
    ]
    assert {(r.required, r.planned, r.shortfall, r.reason) for r in result.summary} == {(20, 10, 10, NO_CAPACITY)}


def test_campaign_spots_take_at_most_half_of_a_peak_window():
    short = schedule({"daily": ["08:00-08:10"]})
    spots = plan([screen("phula-1", peak=short)], [campaign(plays_per_day=20)]).plan("phula-1").spots
    assert sum(s.duration_ms for s in spots) == 300_000


def test_the_share_of_a_window_is_configurable():
    twenty_minutes = screen("phula-1", peak=schedule({"daily": ["08:00-08:20"]}))
    assert len(plan([twenty_minutes], [campaign(plays_per_day=20)]).plan("phula-1").spots) == 20
    assert len(plan([twenty_minutes], [campaign(plays_per_day=20)], max_share=0.25).plan("phula-1").spots) == 10


def test_capacity_shortfalls_can_be_limited_to_the_campaign_being_saved():
    short = schedule({"daily": ["08:00-08:10"]})
    result = plan([screen("phula-1", peak=short)], [campaign("big"), campaign("small")])
    assert {s.campaign_id for s in capacity_shortfalls(result)} == {"small"}
    assert capacity_shortfalls(result, campaign_ids={"big"}) == []


def test_a_speaker_gets_only_the_audio_creative():
    result = plan([screen("speaker-1", kind=ScreenKind.speaker)], [campaign(creatives=(CLIP, POSTER, JINGLE))])
    p = result.plan("speaker-1")
    assert {s.media for s in p.spots} == {JINGLE.sha256}
    assert set(p.media) == {JINGLE.sha256}


def test_an_lcd_screen_gets_only_video_and_images():
    result = plan([screen("lcd-1")], [campaign(creatives=(CLIP, POSTER, JINGLE))])
    assert {s.media for s in result.plan("lcd-1").spots} == {CLIP.sha256, POSTER.sha256}


def test_a_campaign_without_audio_reports_no_playable_creative_on_a_speaker():
    result = plan([screen("speaker-1", kind=ScreenKind.speaker), screen("lcd-1")], [campaign()])
    assert result.plan("speaker-1").spots == []
    rows = {r.screen_id: (r.required, r.planned, r.reason) for r in result.summary}
    assert rows == {"speaker-1": (10, 0, NO_PLAYABLE_CREATIVE), "lcd-1": (10, 10, None)}
    assert capacity_shortfalls(result) == [
        SiteShortfall("ihanoi", "site-phula", MONDAY, NO_PLAYABLE_CREATIVE, screens=1, missing=10)]


def test_creatives_rotate_evenly_within_a_day():
    clip_b = creative("b.mp4", MediaKind.video, 30)
    spots = plan([screen("lcd-1")], [campaign(creatives=(CLIP, clip_b))]).plan("lcd-1").spots
    assert Counter(s.media for s in spots) == {CLIP.sha256: 5, clip_b.sha256: 5}
    assert [s.media for s in spots[:2]] != [spots[0].media] * 2


def test_creatives_rotate_evenly_across_days():
    clips = tuple(creative(f"clip-{n}.mp4", MediaKind.video, 30) for n in range(3))
    spots = plan([screen("lcd-1")], [campaign(creatives=clips)], days=3).plan("lcd-1").spots
    assert sorted(Counter(s.media for s in spots).values()) == [10, 10, 10]


def test_a_higher_priority_campaign_keeps_its_ideal_times():
    urgent = campaign("zz-urgent", priority=5)
    routine = campaign("aa-routine")
    result = plan([screen("lcd-1")], [routine, urgent])
    alone = plan([screen("lcd-1")], [urgent])
    assert local_starts(result, "lcd-1", "zz-urgent") == local_starts(alone, "lcd-1", "zz-urgent")
    assert local_starts(result, "lcd-1", "aa-routine") != local_starts(alone, "lcd-1", "zz-urgent")


def test_equal_priorities_place_in_campaign_id_order():
    result = plan([screen("lcd-1")], [campaign("bb"), campaign("aa")])
    alone = plan([screen("lcd-1")], [campaign("aa")])
    assert local_starts(result, "lcd-1", "aa") == local_starts(alone, "lcd-1", "aa")


def test_a_spot_moves_to_the_nearest_free_second_when_its_time_is_taken():
    result = plan([screen("lcd-1")], [campaign("aa"), campaign("bb")])
    assert local_starts(result, "lcd-1", "aa")[0] == "2024-08-19 08:16:30"
    assert local_starts(result, "lcd-1", "bb")[0] == "2024-08-19 08:16:00"  # 30 s earlier beats 30 s later


def _blocked_hour(free_after: str) -> list[PlanCampaign]:
    """Two urgent campaigns fill 08:00-09:00 and 09:08-(free_after), leaving 09:00-09:08 and what follows."""
    def block(campaign_id: str, start: str, end: str, minutes: int) -> PlanCampaign:
        return campaign(campaign_id, priority=9, creatives=(creative(campaign_id, MediaKind.video, minutes * 60),),
                        plays_per_day=1, window_policy=WindowPolicy.explicit,
                        explicit_windows=schedule({"daily": [f"{start}-{end}"]}))
    end_minutes = int(free_after[:2]) * 60 + int(free_after[3:]) - (9 * 60 + 8)
    three_minutes = creative("three-minutes", MediaKind.video, 180)
    return [block("block-a", "08:00", "09:00", 60), block("block-b", "09:08", free_after, end_minutes),
            campaign("spot", creatives=(three_minutes,), plays_per_day=2)]


def test_spots_of_one_campaign_are_not_back_to_back_when_avoidable():
    lcd = screen("lcd-1", peak=schedule({"daily": ["08:00-09:40"]}), operating=schedule({"daily": ["07:00-10:00"]}))
    result = plan([lcd], _blocked_hour(free_after="09:36"), max_share=1.0)
    # The second spot would be nearest at 09:05, two minutes after the first ends; 09:36 leaves them apart.
    assert local_starts(result, "lcd-1", "spot") == ["2024-08-19 09:00:00", "2024-08-19 09:36:00"]


def test_spots_of_one_campaign_may_come_close_when_nothing_else_is_free():
    lcd = screen("lcd-1", peak=schedule({"daily": ["08:00-09:40"]}), operating=schedule({"daily": ["07:00-10:00"]}))
    result = plan([lcd], _blocked_hour(free_after="09:40"), max_share=1.0)
    assert local_starts(result, "lcd-1", "spot") == ["2024-08-19 09:00:00", "2024-08-19 09:05:00"]


def test_the_operating_policy_spreads_spots_over_operating_hours():
    result = plan([screen("lcd-1")], [campaign(window_policy=WindowPolicy.operating)])
    # Operating hours 07:30-17:00: W/r = 57 min, the first spot at 28.5 min.
    assert local_starts(result, "lcd-1")[:2] == ["2024-08-19 07:58:30", "2024-08-19 08:55:30"]


def test_explicit_windows_are_cut_to_operating_hours():
    early = campaign(window_policy=WindowPolicy.explicit, explicit_windows=schedule({"daily": ["06:00-09:00"]}))
    starts = local_starts(plan([screen("lcd-1")], [early]), "lcd-1")
    assert len(starts) == 10
    assert min(starts) >= "2024-08-19 07:30:00" and max(starts) < "2024-08-19 09:00:00"


def test_site_kinds_alone_target_the_owners_subtree():
    district = campaign(organisation_path="/hn/hn-hadong/", target_org_paths=frozenset(),
                        target_site_kinds=frozenset({SiteKind.ward_office}))
    screens = [screen("phula-1"), screen("bus-1", site="site-bus", site_kind=SiteKind.bus),
               screen("hoankiem-1", site="site-hk", org="/hn/hn-hoankiem/")]
    result = plan(screens, [district])
    assert [len(result.plan(s.id).spots) for s in screens] == [10, 0, 0]


def test_organisations_and_site_kinds_together_narrow_each_other():
    wards = campaign(target_org_paths=frozenset({"/hn/hn-hadong/"}),
                     target_site_kinds=frozenset({SiteKind.ward_office}))
    screens = [screen("phula-1"), screen("bus-1", site="site-bus", site_kind=SiteKind.bus, org=PHULA),
               screen("hoankiem-1", site="site-hk", org="/hn/hn-hoankiem/")]
    result = plan(screens, [wards])
    assert [len(result.plan(s.id).spots) for s in screens] == [10, 0, 0]


def test_listed_sites_screens_and_groups_are_targeted_whatever_their_organisation():
    listed = campaign(target_org_paths=frozenset(), target_sites=frozenset({"site-a"}),
                      target_screens=frozenset({"b-2"}), target_groups=frozenset({"lobby"}))
    screens = [screen("a-1", site="site-a", org="/hn/x/"), screen("b-1", site="site-b", org="/hn/y/"),
               screen("b-2", site="site-b", org="/hn/y/"), screen("c-1", site="site-c", groups=frozenset({"lobby"}))]
    result = plan(screens, [listed])
    assert [len(result.plan(s.id).spots) for s in screens] == [10, 0, 10, 10]


def test_untargeted_screens_get_no_spots_and_no_summary_rows():
    hoankiem = screen("hoankiem-1", site="site-hk", org="/hn/hn-hoankiem/")
    result = plan([screen("phula-1"), hoankiem], [campaign(target_org_paths=frozenset({"/hn/hn-hadong/"}))])
    assert result.plan("hoankiem-1").spots == []
    assert {r.screen_id for r in result.summary} == {"phula-1"}


def test_resolve_targets_turns_stored_rows_into_campaign_fields():
    rows = [("organisation", "hn-hadong"), ("site_kind", "bus"), ("site", "s1"), ("screen", "x1"), ("group", "g")]
    assert resolve_targets(rows, {"hn-hadong": "/hn/hn-hadong/"}) == {
        "target_org_paths": frozenset({"/hn/hn-hadong/"}), "target_site_kinds": frozenset({SiteKind.bus}),
        "target_sites": frozenset({"s1"}), "target_screens": frozenset({"x1"}), "target_groups": frozenset({"g"})}


def test_filler_is_the_house_loop_when_there_is_one():
    loop = (creative("loop-b.mp4", MediaKind.video, 60), creative("loop-a.png", MediaKind.image, 10))
    p = plan([screen("lcd-1")], [campaign()], filler=loop).plan("lcd-1")
    assert p.filler == [loop[0].sha256, loop[1].sha256]
    assert p.media[loop[0].sha256].duration_ms == 60_000


def test_the_organisations_own_loop_comes_before_the_fleets():
    own = (creative("phula-loop.mp4", MediaKind.video, 60),)
    fleet_loop = (creative("city-loop.mp4", MediaKind.video, 60),)
    p = plan([screen("lcd-1", house_loop=own)], [campaign()], filler=fleet_loop).plan("lcd-1")
    assert p.filler == [own[0].sha256]


def test_without_a_house_loop_filler_is_the_playable_creatives_of_its_campaigns():
    other = campaign("other", creatives=(creative("other.mp4", MediaKind.video, 20), JINGLE))
    p = plan([screen("lcd-1")], [campaign(creatives=(POSTER, CLIP)), other]).plan("lcd-1")
    assert p.filler == sorted({POSTER.sha256, CLIP.sha256, other.creatives[0].sha256})


def test_a_speaker_never_gets_a_video_house_loop_as_filler():
    loop = (creative("loop.mp4", MediaKind.video, 60),)
    speaker = screen("speaker-1", kind=ScreenKind.speaker)
    p = plan([speaker], [campaign(creatives=(CLIP, JINGLE))], filler=loop).plan("speaker-1")
    assert p.filler == [JINGLE.sha256]


def test_the_media_table_holds_every_file_a_plan_refers_to():
    p = plan([screen("lcd-1")], [campaign(creatives=(CLIP, POSTER))], filler=(JINGLE, CLIP)).plan("lcd-1")
    assert set(p.media) == {CLIP.sha256, POSTER.sha256}
    assert p.media[POSTER.sha256].model_dump() == {"url": f"/media/{POSTER.sha256}", "bytes": POSTER.bytes,
                                                   "mime": "image/png", "duration_ms": 15_000}


def test_screens_with_the_same_site_and_targeting_share_one_computation():
    screens = [screen(f"phula-{n}") for n in range(5)] + [screen("speaker-1", kind=ScreenKind.speaker)]
    result = plan(screens, [campaign(creatives=(CLIP, JINGLE))])
    assert result.placement_count == 2
    first, second = result.plan("phula-0"), result.plan("phula-1")
    assert [s.start for s in first.spots] == [s.start for s in second.spots]
    assert {s.spot_id for s in first.spots}.isdisjoint(s.spot_id for s in second.spots)


def test_spot_ids_are_unique_within_a_plan_and_stable_across_runs():
    result = plan([screen("lcd-1")], [campaign(), campaign("other")], days=3)
    ids = [s.spot_id for s in result.plan("lcd-1").spots]
    assert len(set(ids)) == len(ids) == 60
    assert ids == [s.spot_id for s in plan([screen("lcd-1")], [campaign("other"), campaign()],
                                            days=3).plan("lcd-1").spots]


def test_the_fast_plan_json_is_the_canonical_json_of_the_plan_model():
    result = plan([screen("tokyo-1", timezone="Asia/Tokyo"), screen("lcd-1")], [campaign(creatives=(CLIP, POSTER))],
                  days=3)
    for player_id in result.player_ids:
        assert canonical_json(result.plan(player_id)) == result.plan_json(player_id)


def test_a_plans_version_is_the_hash_of_its_body_without_version_and_generated_at():
    result = plan([screen("lcd-1")], [campaign()])
    body = json.loads(result.plan_json("lcd-1"))
    assert body["version"] == plan_version(body) == result.version("lcd-1")
    assert body["generated_at"] == "2024-08-18T17:05:00Z"
    assert body["schema"] == "signage.plan/1" and body["player_id"] == "lcd-1"


def test_an_unchanged_plan_keeps_its_version_when_generated_again_later():
    first = plan([screen("lcd-1")], [campaign()]).plan("lcd-1")
    later = plan_fleet([screen("lcd-1")], [campaign()], MONDAY, 1, GENERATED_AT + timedelta(hours=6)).plan("lcd-1")
    assert later.generated_at != first.generated_at
    assert later.version == first.version


def test_a_change_of_campaign_changes_the_version():
    first = plan([screen("lcd-1")], [campaign()]).plan("lcd-1")
    changed = plan([screen("lcd-1")], [campaign(plays_per_day=11)]).plan("lcd-1")
    assert changed.version != first.version


def test_the_plans_mapping_builds_a_validated_plan_per_player():
    result = plan([screen("b"), screen("a")], [campaign()])
    assert list(result.plans) == ["a", "b"]
    assert isinstance(result.plans["a"], Plan)
    with pytest.raises(KeyError, match="no screen 'zz'"):
        result.plans["zz"]


def test_planning_refuses_bad_arguments_saying_what_to_give():
    with pytest.raises(ValueError, match="at least one day"):
        plan([screen("a")], [campaign()], days=0)
    with pytest.raises(ValueError, match="needs a timezone"):
        plan_fleet([screen("a")], [campaign()], MONDAY, 1, datetime(2024, 8, 18))
    with pytest.raises(ValueError, match="ids must be unique"):
        plan([screen("a"), screen("a")], [campaign()])
    with pytest.raises(ValueError, match="organisation path"):
        screen("a", org="hn-hadong")


# ---------------------------------------------------------------------------------------------------------
# The wire models


def test_a_plan_with_an_unknown_field_is_refused():
    body = json.loads(plan([screen("lcd-1")], [campaign()]).plan_json("lcd-1"))
    with pytest.raises(ValidationError, match="extra"):
        Plan.model_validate({**body, "priority": 1})


def test_a_plan_with_overlapping_spots_is_refused():
    body = json.loads(plan([screen("lcd-1")], [campaign()]).plan_json("lcd-1"))
    body["spots"][1]["start"] = body["spots"][0]["start"]
    with pytest.raises(ValidationError, match="overlap"):
        Plan.model_validate(body)


def test_a_plan_naming_media_it_does_not_list_is_refused():
    body = json.loads(plan([screen("lcd-1")], [campaign()]).plan_json("lcd-1"))
    body["media"] = {}
    with pytest.raises(ValidationError, match="media table lacks"):
        Plan.model_validate(body)


def test_a_parsed_plan_serialises_to_the_same_bytes():
    wire = plan([screen("lcd-1")], [campaign(creatives=(CLIP, POSTER))], days=3).plan_json("lcd-1")
    assert canonical_json(Plan.model_validate_json(wire)) == wire
    assert canonical_json(Plan.model_validate(json.loads(wire))) == wire


def test_canonical_json_sorts_keys_and_keeps_vietnamese_as_utf8():
    assert canonical_json({"b": 1, "a": "Hà Nội"}) == '{"a":"Hà Nội","b":1}'.encode()


# ---------------------------------------------------------------------------------------------------------
# Properties over random small fleets
#
# A "light" scenario keeps every campaign's spots far under half of each window (windows of an hour or more,
# at most 3 campaigns × 8 spots × 20 s), uses peak windows only and so always has capacity: there the plan
# must give exactly r spots, evenly spread. A "heavy" scenario crowds the windows with long spots, high rates,
# every window policy and other shares: there only the safety properties hold, and what does not fit must be
# reported.

ZONES = ("Asia/Ho_Chi_Minh", "Asia/Tokyo", "Asia/Kathmandu")
ORG_PATHS = ("/hn/", "/hn/a/", "/hn/a/x/", "/hn/a/y/", "/hn/b/")
SITE_KINDS = (SiteKind.ward_office, SiteKind.bus, SiteKind.airport)
GROUPS = ("g1", "g2")
SHORT_CREATIVES = tuple(creative(f"short-{kind}-{s}", kind, s) for kind in MediaKind for s in (5, 12, 20))
LONG_CREATIVES = tuple(creative(f"long-{kind}-{s}", kind, s) for kind in MediaKind for s in (45, 180, 600))
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Scenario:
    screens: list[PlanScreen]
    campaigns: list[PlanCampaign]
    first_day: date
    days: int
    max_share: float

    def result(self) -> PlanningResult:
        return plan_fleet(self.screens, self.campaigns, self.first_day, self.days, GENERATED_AT,
                          max_share=self.max_share)


@st.composite
def day_windows(draw: st.DrawFn, light: bool) -> tuple[Window, ...]:
    windows = []
    cursor = 6 * 60 if light else 5 * 60
    for _ in range(draw(st.integers(0, 3) | st.integers(1, 3))):
        start = cursor + draw(st.integers(0, 120))
        length = draw(st.integers(60, 180) if light else st.integers(5, 120))
        if start + length > 24 * 60:
            break
        windows.append(Window(start, start + length))
        cursor = start + length
    return tuple(windows)


@st.composite
def week(draw: st.DrawFn, light: bool) -> WeekSchedule:
    weekday, saturday, sunday = (draw(day_windows(light)) for _ in range(3))
    return WeekSchedule((weekday,) * 5 + (saturday, sunday))


def operating_around(peak: WeekSchedule, pad: int) -> WeekSchedule:
    """One operating window per day reaching `pad` minutes beyond the peak windows (08:00-17:00 if none)."""
    days = []
    for windows in peak.days:
        if windows:
            days.append((Window(max(0, windows[0].start - pad), min(24 * 60, windows[-1].end + pad)),))
        else:
            days.append((Window(8 * 60, 17 * 60),))
    return WeekSchedule(tuple(days))


@st.composite
def scenarios(draw: st.DrawFn, light: bool) -> Scenario:
    screens = []
    for site_index in range(draw(st.integers(1, 3))):
        peak = draw(week(light))
        operating = operating_around(peak, draw(st.integers(0, 60)))
        site_kind, zone, org = draw(st.sampled_from(SITE_KINDS)), draw(st.sampled_from(ZONES)), draw(
            st.sampled_from(ORG_PATHS))
        for n in range(draw(st.integers(1, 3))):
            groups = frozenset(draw(st.lists(st.sampled_from(GROUPS), max_size=2)))
            screens.append(PlanScreen(f"site{site_index}-{n}", draw(st.sampled_from(list(ScreenKind))),
                                      f"site{site_index}", site_kind, zone, org, operating, peak, groups))
    first_day = draw(st.dates(date(2024, 1, 1), date(2024, 12, 31)))
    days = draw(st.integers(1, 3))
    site_ids = sorted({s.site_id for s in screens})
    pool = SHORT_CREATIVES if light else SHORT_CREATIVES + LONG_CREATIVES
    campaigns = []
    for index in range(draw(st.integers(1, 3))):
        start = first_day + timedelta(days=draw(st.integers(-2, 2)))
        rate = draw(st.integers(1, 8) if light else st.integers(1, 30))
        policy = WindowPolicy.peak if light else draw(st.sampled_from(list(WindowPolicy)))
        explicit = draw(week(light=False)) if policy is WindowPolicy.explicit else None
        overrides = tuple(
            PlanOverride(rate + draw(st.integers(0, 4)), organisation_path=draw(st.sampled_from(ORG_PATHS)))
            if draw(st.booleans()) else PlanOverride(rate + draw(st.integers(0, 4)), site_id=draw(
                st.sampled_from(site_ids)))
            for _ in range(draw(st.integers(0, 2))))
        campaigns.append(PlanCampaign(
            f"c{index}", draw(st.sampled_from(ORG_PATHS)), start, start + timedelta(days=draw(st.integers(0, 4))),
            tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))), rate, policy,
            explicit, draw(st.integers(0, 2)),
            target_org_paths=draw(st.just(frozenset({"/hn/"})) | st.frozensets(st.sampled_from(ORG_PATHS), max_size=2)),
            target_site_kinds=frozenset(draw(st.lists(st.sampled_from(SITE_KINDS), max_size=2))),
            target_sites=frozenset(draw(st.lists(st.sampled_from(site_ids), max_size=1))),
            target_screens=frozenset(draw(st.lists(st.sampled_from([s.id for s in screens]), max_size=1))),
            target_groups=frozenset(draw(st.lists(st.sampled_from(GROUPS), max_size=1))),
            overrides=overrides))
    max_share = 0.5 if light else draw(st.sampled_from([0.25, 0.5, 1.0]))
    return Scenario(screens, campaigns, first_day, days, max_share)


def any_scenario() -> st.SearchStrategy[Scenario]:
    return st.one_of(scenarios(light=True), scenarios(light=False))


# Oracles, written from the rules rather than from the planner's code.

def is_targeted(c: PlanCampaign, s: PlanScreen) -> bool:
    if c.target_org_paths:
        in_scope = any(s.organisation_path.startswith(path) for path in c.target_org_paths)
    else:
        in_scope = bool(c.target_site_kinds) and s.organisation_path.startswith(c.organisation_path)
    of_kind = not c.target_site_kinds or s.site_kind in c.target_site_kinds
    return ((in_scope and of_kind) or s.site_id in c.target_sites or s.id in c.target_screens
            or bool(c.target_groups & s.group_ids))


def required(c: PlanCampaign, s: PlanScreen) -> int:
    raised = [o.plays_per_day for o in c.overrides if o.site_id == s.site_id
              or (o.organisation_path is not None and s.organisation_path.startswith(o.organisation_path))]
    return max([c.plays_per_day, *raised])


def instants(day: date, windows: tuple[Window, ...], tz: str) -> list[tuple[datetime, datetime]]:
    return [window_instants(day, w, tz) for w in windows]


def overlap(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return [(max(a0, b0), min(a1, b1)) for a0, a1 in a for b0, b1 in b if max(a0, b0) < min(a1, b1)]


def campaign_window(c: PlanCampaign, s: PlanScreen, day: date) -> list[tuple[datetime, datetime]]:
    operating = instants(day, s.operating_hours.on(day), s.timezone)
    if c.window_policy is WindowPolicy.operating:
        return operating
    chosen = c.explicit_windows if c.window_policy is WindowPolicy.explicit else s.peak_windows
    assert chosen is not None
    return overlap(instants(day, chosen.on(day), s.timezone), operating)


def horizon(scenario: Scenario) -> list[date]:
    return [scenario.first_day + timedelta(days=k) for k in range(scenario.days)]


def local_day(spot: Spot, s: PlanScreen) -> date:
    return spot.start.astimezone(ZoneInfo(s.timezone)).date()


def plans(scenario: Scenario) -> tuple[PlanningResult, dict[str, Plan]]:
    result = scenario.result()
    return result, {s.id: result.plan(s.id) for s in scenario.screens}


def campaign_by_id(scenario: Scenario) -> dict[str, PlanCampaign]:
    return {c.id: c for c in scenario.campaigns}


@PROPERTY_SETTINGS
@given(any_scenario())
def test_spots_never_overlap_on_a_screen(scenario):
    _, by_player = plans(scenario)
    for p in by_player.values():
        for before, after in zip(p.spots, p.spots[1:], strict=False):
            assert before.end <= after.start


@PROPERTY_SETTINGS
@given(any_scenario())
def test_every_spot_lies_inside_its_campaigns_window_and_dates(scenario):
    _, by_player = plans(scenario)
    campaigns = campaign_by_id(scenario)
    for s in scenario.screens:
        for spot in by_player[s.id].spots:
            c, day = campaigns[spot.campaign_id], local_day(spot, s)
            assert c.start_date <= day <= c.end_date and day in horizon(scenario)
            assert any(lo <= spot.start and spot.end <= hi for lo, hi in campaign_window(c, s, day))


@PROPERTY_SETTINGS
@given(scenarios(light=True))
def test_with_peak_windows_every_spot_lies_inside_a_peak_window_of_its_local_day(scenario):
    _, by_player = plans(scenario)
    for s in scenario.screens:
        for spot in by_player[s.id].spots:
            peaks = instants(local_day(spot, s), s.peak_windows.on(local_day(spot, s)), s.timezone)
            assert any(lo <= spot.start and spot.end <= hi for lo, hi in peaks)


@PROPERTY_SETTINGS
@given(any_scenario())
def test_spots_start_on_whole_seconds(scenario):
    _, by_player = plans(scenario)
    assert all(spot.start.microsecond == 0 for p in by_player.values() for spot in p.spots)


@PROPERTY_SETTINGS
@given(any_scenario())
def test_campaign_spots_never_take_more_than_the_share_of_a_peak_window(scenario):
    _, by_player = plans(scenario)
    for s in scenario.screens:
        for day in horizon(scenario):
            for lo, hi in instants(day, s.peak_windows.on(day), s.timezone):
                inside = sum(spot.duration_ms for spot in by_player[s.id].spots if lo <= spot.start < hi)
                assert inside <= scenario.max_share * (hi - lo).total_seconds() * 1000


@PROPERTY_SETTINGS
@given(any_scenario())
def test_untargeted_screens_get_no_spots(scenario):
    _, by_player = plans(scenario)
    campaigns = campaign_by_id(scenario)
    for s in scenario.screens:
        assert all(is_targeted(campaigns[spot.campaign_id], s) for spot in by_player[s.id].spots)


@PROPERTY_SETTINGS
@given(any_scenario())
def test_speakers_get_only_audio_and_screens_never_audio(scenario):
    _, by_player = plans(scenario)
    for s in scenario.screens:
        p = by_player[s.id]
        for sha256 in {spot.media for spot in p.spots} | set(p.filler):
            assert p.media[sha256].mime.startswith("audio/") == (s.kind is ScreenKind.speaker)


@PROPERTY_SETTINGS
@given(any_scenario())
def test_the_summary_accounts_for_every_required_spot(scenario):
    result, by_player = plans(scenario)
    rows = {(r.campaign_id, r.screen_id, r.date): r for r in result.summary}
    expected = {(c.id, s.id, day): required(c, s) for c in scenario.campaigns for s in scenario.screens
                for day in horizon(scenario)
                if is_targeted(c, s) and c.start_date <= day <= c.end_date and campaign_window(c, s, day)}
    assert {key: row.required for key, row in rows.items()} == expected
    screens = {s.id: s for s in scenario.screens}
    planned = Counter((spot.campaign_id, player_id, local_day(spot, screens[player_id]))
                      for player_id, p in by_player.items() for spot in p.spots)
    for key, row in rows.items():
        assert row.planned == planned[key] and row.planned + row.shortfall == row.required
        assert (row.reason is None) == (row.shortfall == 0)
    assert sum(r.shortfall for r in rows.values()) == sum(s.missing for s in capacity_shortfalls(result))


@PROPERTY_SETTINGS
@given(scenarios(light=True))
def test_each_targeted_screen_day_gets_exactly_r_spots_when_capacity_allows(scenario):
    result, by_player = plans(scenario)
    screens = {s.id: s for s in scenario.screens}
    planned = Counter((spot.campaign_id, player_id, local_day(spot, screens[player_id]))
                      for player_id, p in by_player.items() for spot in p.spots)
    for c in scenario.campaigns:
        for s in scenario.screens:
            playable = any(s.can_play(cr.kind) for cr in c.creatives)
            for day in horizon(scenario):
                wanted = is_targeted(c, s) and c.start_date <= day <= c.end_date and bool(s.peak_windows.on(day))
                assert planned[(c.id, s.id, day)] == (required(c, s) if wanted and playable else 0)
    assert all(row.reason in (None, NO_PLAYABLE_CREATIVE) for row in result.summary)


def largest_gap(starts: list[datetime], windows: list[tuple[datetime, datetime]]) -> float:
    """Largest gap between consecutive spot starts on the joined windows, in seconds.

    The stretches before the first spot and after the last count double: ideally each is half a gap, the
    spots starting at (j − ½)·W/r.
    """
    offsets, base = [], 0.0
    for lo, hi in windows:
        offsets += [base + (t - lo).total_seconds() for t in starts if lo <= t < hi]
        base += (hi - lo).total_seconds()
    assert len(offsets) == len(starts), "a spot lies outside the windows"
    offsets.sort()
    gaps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    return max([*gaps, 2 * offsets[0], 2 * (base - offsets[-1])])


@PROPERTY_SETTINGS
@given(scenarios(light=True))
def test_a_campaigns_spots_are_spread_with_no_gap_above_one_and_a_half_times_w_over_r(scenario):
    _, by_player = plans(scenario)
    for s in scenario.screens:
        for c in scenario.campaigns:
            for day in horizon(scenario):
                starts = [spot.start for spot in by_player[s.id].spots
                          if spot.campaign_id == c.id and local_day(spot, s) == day]
                if not starts:
                    continue
                windows = instants(day, s.peak_windows.on(day), s.timezone)
                length = sum((hi - lo).total_seconds() for lo, hi in windows)
                assert largest_gap(starts, windows) <= 1.5 * length / len(starts)


@PROPERTY_SETTINGS
@given(any_scenario(), st.randoms(use_true_random=False))
def test_the_same_inputs_give_byte_identical_plans_whatever_their_order(scenario, rng: random.Random):
    first = scenario.result()
    shuffled_screens, shuffled_campaigns = list(scenario.screens), list(scenario.campaigns)
    rng.shuffle(shuffled_screens)
    rng.shuffle(shuffled_campaigns)
    again = replace(scenario, screens=shuffled_screens, campaigns=shuffled_campaigns).result()
    assert first.player_ids == again.player_ids
    for player_id in first.player_ids:
        assert first.plan_json(player_id) == again.plan_json(player_id)
        assert canonical_json(first.plan(player_id)) == first.plan_json(player_id)
    assert first.summary == again.summary


@PROPERTY_SETTINGS
@given(any_scenario())
def test_spot_ids_are_unique_across_the_fleet(scenario):
    _, by_player = plans(scenario)
    ids = [spot.spot_id for p in by_player.values() for spot in p.spots]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------------------------
# Versions of a creative: by screen format, then by language (issue 21, item 6)


def version(name: str, language: str | None, size: tuple[int, int] = (1920, 1080), slot: int = 0) -> PlanCreative:
    return replace(creative(name, MediaKind.image, 15), slot=slot, language=language, width=size[0], height=size[1])


def airport_screen(screen_id: str, *, international: bool = True, size: tuple[int, int] = (1920, 1080)) -> PlanScreen:
    return replace(screen(screen_id, site="site-noibai", site_kind=SiteKind.airport), width=size[0], height=size[1],
                   international_audience=international)


def played(result: PlanningResult, player_id: str) -> list[str]:
    return [s.media for s in result.plan(player_id).spots]


def test_versions_in_vietnamese_and_english_take_turns_at_an_airport_within_one_campaigns_ten_plays():
    vi, en = version("welcome-vi.png", "vi"), version("welcome-en.png", "en")
    result = plan([airport_screen("noibai-1")], [campaign(creatives=(en, vi))])
    assert played(result, "noibai-1") == [vi.sha256, en.sha256] * 5  # Vietnamese first, then in turn
    assert {s.campaign_id for s in result.plan("noibai-1").spots} == {"ihanoi"}
    [row] = result.summary
    assert (row.required, row.planned, row.shortfall) == (10, 10, 0)


def test_a_site_without_an_international_audience_plays_the_vietnamese_version_only():
    vi, en = version("welcome-vi.png", "vi"), version("welcome-en.png", "en")
    result = plan([airport_screen("noibai-1", international=False)], [campaign(creatives=(en, vi))])
    assert played(result, "noibai-1") == [vi.sha256] * 10


def test_without_a_vietnamese_version_elsewhere_the_language_less_one_plays_else_the_first():
    en, zh, any_language = version("en.png", "en"), version("zh.png", "zh"), version("any.png", None)
    site = [airport_screen("s-1", international=False)]
    assert set(played(plan(site, [campaign(creatives=(en, any_language))]), "s-1")) == {any_language.sha256}
    assert set(played(plan(site, [campaign(creatives=(zh, en))]), "s-1")) == {zh.sha256}


def test_three_languages_rotate_in_turn_and_each_slot_keeps_its_place_in_the_rotation():
    vi, en, ko = version("vi.png", "vi"), version("en.png", "en"), version("ko.png", "ko")
    other = replace(creative("map.png", MediaKind.image, 15), slot=1)
    result = plan([airport_screen("noibai-1")], [campaign(creatives=(vi, en, ko, other))])
    media = played(result, "noibai-1")
    assert len(media) == 10
    assert media.count(other.sha256) == 5
    assert [m for m in media if m != other.sha256] == [vi.sha256, en.sha256, ko.sha256, vi.sha256, en.sha256]


def test_a_screen_takes_the_version_of_its_orientation():
    landscape, portrait = version("wide.png", None, (1280, 720)), version("tall.png", None, (1080, 1920))
    wide = airport_screen("wide-1", size=(1920, 1080))
    tall = airport_screen("tall-1", size=(1080, 1920))
    result = plan([wide, tall], [campaign(creatives=(portrait, landscape))])
    assert set(played(result, "wide-1")) == {landscape.sha256}
    assert set(played(result, "tall-1")) == {portrait.sha256}
    assert set(result.plan("wide-1").media) == {landscape.sha256}
    # A screen's orientation stands without its resolution; a square screen of none takes every version.
    unsized = replace(tall, id="unsized-1", width=None, height=None, orientation=Orientation.portrait)
    assert set(played(plan([unsized], [campaign(creatives=(landscape, portrait))]), "unsized-1")) == {portrait.sha256}
    square = airport_screen("square-1", international=False, size=(1080, 1080))
    assert set(played(plan([square], [campaign(creatives=(portrait, landscape))]), "square-1")) == {portrait.sha256}


def test_a_version_of_the_screens_exact_resolution_wins_over_one_of_its_orientation():
    hd, full_hd = version("hd.png", None, (1280, 720)), version("fhd.png", None, (1920, 1080))
    result = plan([airport_screen("hd-1", size=(1280, 720)), airport_screen("fhd-1", size=(1920, 1080)),
                   airport_screen("uhd-1", size=(3840, 2160))], [campaign(creatives=(full_hd, hd))])
    assert set(played(result, "hd-1")) == {hd.sha256}
    assert set(played(result, "fhd-1")) == {full_hd.sha256}
    # No exact match: every version of its orientation; one of them plays (the first of its language).
    assert set(played(result, "uhd-1")) == {full_hd.sha256}


def test_format_and_language_choose_together_posters_by_resolution_in_two_languages():
    posters = (version("vi-h.png", "vi", (1920, 1080)), version("vi-v.png", "vi", (1080, 1920)),
               version("en-h.png", "en", (1920, 1080)), version("en-v.png", "en", (1080, 1920)))
    result = plan([airport_screen("tall-1", size=(1080, 1920))], [campaign(creatives=posters)])
    assert played(result, "tall-1") == [posters[1].sha256, posters[3].sha256] * 5


def test_screens_that_choose_the_same_versions_share_one_placement():
    vi, en = version("vi.png", "vi"), version("en.png", "en")
    screens = [airport_screen("a-1"), airport_screen("a-2", size=(1280, 720)),
               airport_screen("b-1", international=False)]
    result = plan(screens, [campaign(creatives=(vi, en))])
    assert result.placement_count == 2
    # Without versions, formats and audiences do not split the fleet.
    assert plan(screens, [campaign()]).placement_count == 1


def test_a_speaker_plays_the_audio_versions_by_language_and_skips_the_image_ones():
    vi_audio = replace(creative("vi.mp3", MediaKind.audio, 20), slot=0, language="vi")
    en_audio = replace(creative("en.mp3", MediaKind.audio, 20), slot=0, language="en")
    en_image = version("en.png", "en")
    speaker = replace(screen("noibai-spk", site="site-noibai", site_kind=SiteKind.airport, kind=ScreenKind.speaker),
                      international_audience=True)
    result = plan([speaker], [campaign(creatives=(en_image, vi_audio, en_audio))])
    assert played(result, "noibai-spk") == [vi_audio.sha256, en_audio.sha256] * 5
