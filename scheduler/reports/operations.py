"""The other reports: the proof-of-play log, screen health, and progress by rounds (the totals a ward or district
sends up for a period). Each yields its rows from the database as it goes, for exports of any length."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sqlalchemy import String, case, func, literal, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from campaigns.models import Campaign, Organisation, Screen, Site
from campaigns.screen_state import ATTENTION_ORDER, attention, state_of
from media.models import MediaAsset
from scheduler.models import DeliveryRollup, PlayerDay, PlayerPresence, PlayRecord
from scheduler.plan_store import newest_versions
from scheduler.reports.columns import HEALTH_COLUMNS, NOW_COLUMNS, POP_COLUMNS, ROUND_COLUMNS
from scheduler.reports.compliance import capped_delivered, met_requirement
from scheduler.reports.exports import csv_header
from scheduler.reports.formulas import FORMULA_CELL, inert, inert_sql
from scheduler.reports.scope import Scope
from scheduler.reports.table import Report, Sheet

HEARTBEAT = timedelta(seconds=30)  # players send a status every 30 s while they run (docs/design.md §3)


# -- proof-of-play log ----------------------------------------------------------------------------------------

def pop_log(session: Session, scope: Scope) -> Iterator[dict]:
    """Every play attempt of the scope and period (by local date), in the order they started."""
    query = scope.filter_plays(
        select(PlayRecord.started_at, PlayRecord.ended_at, PlayRecord.player_id, Screen.name.label("screen_name"),
               Site.id.label("site_id"),
               Site.name.label("site"), Organisation.id.label("organisation_id"),
               Organisation.name.label("organisation"), PlayRecord.campaign_id, Campaign.name.label("campaign_name"),
               PlayRecord.media, MediaAsset.original_name.label("media_name"), PlayRecord.kind,
               PlayRecord.scheduled_start, PlayRecord.duration_ms,
               PlayRecord.status, PlayRecord.reason, PlayRecord.play_id)
    ).outerjoin(Campaign, Campaign.id == PlayRecord.campaign_id).outerjoin(
        MediaAsset, (MediaAsset.sha256 == PlayRecord.media)  # the campaign's unit's name of the file
        & (MediaAsset.organisation_id == Campaign.organisation_id))
    query = query.order_by(PlayRecord.local_date, PlayRecord.started_at, PlayRecord.play_id)
    # Core, not the ORM, and plain tuples zipped into dicts: this is the export path of millions of rows.
    result = session.connection().execution_options(stream_results=True, yield_per=5000).execute(query)
    keys = list(result.keys())
    for chunk in result.partitions():
        for row in chunk:
            yield dict(zip(keys, row, strict=True))


def _local_text(column, minutes: int):
    """PostgreSQL: a UTC timestamp column as local ISO text with milliseconds (cut, not rounded) and offset."""
    # Taken to UTC wall time first: to_char would otherwise write the session's TimeZone, whatever it is.
    local = func.to_char(func.timezone("UTC", column) + func.make_interval(0, 0, 0, 0, 0, minutes),
                         'YYYY-MM-DD"T"HH24:MI:SS.MS')
    return case((column.is_(None), None), else_=local + _offset_text(minutes))


def pop_log_csv(session: Session, scope: Scope, timezone: str, language: str = "vi") -> Iterator[bytes]:
    """The proof-of-play log as CSV, the same columns and format as `exports.iter_csv` writes from `pop_log`,
    but formatted by the database and written straight from its cursor: the log of a city runs to millions of
    rows. Times are in `timezone` at its offset on the period's first day (Hà Nội keeps one offset all year).
    Every text cell is quoted and, ids included, made inert when it starts like a formula (formulas.py's rule),
    times always carry milliseconds, lines end in CRLF; both databases give the same bytes."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(csv_header(POP_COLUMNS, language))
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    minutes = scope.offset_minutes(timezone)
    if session.get_bind().dialect.name == "postgresql":
        yield from _pop_log_copy(session, scope, minutes)
    else:
        yield from _pop_log_lines(session, scope, minutes)


# The log's text columns, which the CSV always quotes (the others, times and the duration, never need quotes).
_POP_QUOTED = ("screen_name", "site", "organisation", "campaign_name", "media_name", "kind", "status", "reason",
               "player_id", "campaign_id", "media", "play_id")
_CHUNK_ROWS = 20000
_IN_LIST_MAX_SCREENS = 2000  # SQLite: up to this many screens in scope, the query names them; above, Python filters


def _pop_log_copy(session: Session, scope: Scope, minutes: int) -> Iterator[bytes]:
    """PostgreSQL: the whole CSV is written by the server (COPY ... TO STDOUT), joins and order included, and
    streamed out as it comes; Python only turns its LF line ends into CRLF."""
    def text(column):  # every text cell: a formula's start made inert, NULL as empty
        return func.coalesce(inert_sql(column), "")

    def local(column):
        return _local_text(column, minutes)

    # A screen's names in one lookup the server remembers per screen (Memoize), not three joins per row; OFFSET 0
    # keeps the planner from flattening it back into those joins.
    names = (scope.filter_screens(select(text(Screen.name).label("screen_name"), text(Site.name).label("site"),
                                         text(Organisation.name).label("organisation")).select_from(Screen))
             .where(Screen.id == PlayRecord.player_id).offset(0).lateral("names"))
    query = (select(local(PlayRecord.started_at).label("started_at"), local(PlayRecord.ended_at).label("ended_at"),
                    names.c.screen_name, names.c.site, names.c.organisation,
                    text(Campaign.name).label("campaign_name"), text(MediaAsset.original_name).label("media_name"),
                    text(PlayRecord.kind).label("kind"), local(PlayRecord.scheduled_start).label("scheduled_start"),
                    PlayRecord.duration_ms, text(PlayRecord.status).label("status"),
                    text(PlayRecord.reason).label("reason"), text(PlayRecord.player_id).label("player_id"),
                    text(PlayRecord.campaign_id).label("campaign_id"), text(PlayRecord.media).label("media"),
                    text(PlayRecord.play_id).label("play_id"))
             .select_from(PlayRecord).join(names, true())
             .outerjoin(Campaign, Campaign.id == PlayRecord.campaign_id)
             .outerjoin(MediaAsset, (MediaAsset.sha256 == PlayRecord.media)  # the campaign's unit's name of the file
                        & (MediaAsset.organisation_id == Campaign.organisation_id))
             .where(PlayRecord.local_date.between(scope.first, scope.last)))
    if scope.campaign_id is not None:
        query = query.where(PlayRecord.campaign_id == scope.campaign_id)
    query = query.order_by(PlayRecord.local_date, PlayRecord.started_at, PlayRecord.play_id)
    compiled = query.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE ({', '.join(_POP_QUOTED)}))"
    connection = session.connection().connection.driver_connection
    encoding = connection.info.encoding
    with connection.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
        rows: list = []
        for row in copy:  # one row at a time, as libpq hands them over
            rows.append(row)
            if len(rows) == _CHUNK_ROWS:
                yield _crlf_lines(rows, encoding)
                rows = []
        if rows:
            yield _crlf_lines(rows, encoding)


def _crlf_lines(rows: list, encoding: str) -> bytes:
    """COPY's rows (each ending in LF) as one chunk of UTF-8 with CRLF line ends, as the csv module writes; an LF
    inside a quoted text stays as it is."""
    data = b"".join(rows)
    if data.count(b"\n") == len(rows):
        data = data.replace(b"\n", b"\r\n")
    else:
        data = b"".join([bytes(row[:-1]) + b"\r\n" for row in rows])
    return data if encoding == "utf-8" else data.decode(encoding).encode()


def _pop_log_lines(session: Session, scope: Scope, minutes: int) -> Iterator[bytes]:
    """SQLite: the log's own index (which holds every column read here) walked in order, and each line put
    together in Python from the raw columns: SQLite's own string functions (strftime, ||, printf) cost more per
    row than an f-string. The names of screens (with their site and organisation), campaigns and files are looked
    up once each, as CSV cells ready to join."""
    names = {screen_id: (",".join(_csv_quote(inert(name)) for name in (screen, site, organisation)).encode(),
                         _csv_quote(inert(screen_id)))
             for screen_id, screen, site, organisation in session.execute(
                 scope.filter_screens(select(Screen.id, Screen.name, Site.name, Organisation.name)))}
    campaigns = _campaign_cells(session, scope)
    query = (select(PlayRecord.player_id, PlayRecord.started_at, PlayRecord.ended_at,
                    func.coalesce(PlayRecord.campaign_id, ""), PlayRecord.media, PlayRecord.kind,
                    func.coalesce(PlayRecord.scheduled_start, ""), PlayRecord.duration_ms, PlayRecord.status,
                    func.coalesce(PlayRecord.reason, ""), PlayRecord.play_id)
             .where(PlayRecord.local_date.between(literal(scope.first.isoformat(), String),
                                                  literal(scope.last.isoformat(), String)))
             .order_by(PlayRecord.local_date, PlayRecord.started_at, PlayRecord.play_id))
    if scope.campaign_id is not None:
        # "+campaign_id", SQLite's way of saying no index answers this: otherwise it takes the campaign's index and
        # sorts millions of rows, instead of walking the log's own index in order and testing each row.
        unindexed = UnaryExpression(PlayRecord.campaign_id.expression, operator=custom_op("+"), type_=String())
        query = query.where(unindexed == literal(scope.campaign_id, String))
    if len(names) <= _IN_LIST_MAX_SCREENS:  # a ward or a district: ask for its screens; a city: sort out here
        query = query.where(PlayRecord.player_id.in_([literal(screen, String) for screen in sorted(names)]))
    compiled = query.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    parameters = [compiled.params[name] for name in compiled.positiontup]
    # The raw DB-API cursor: rows as plain tuples of str, no result processing.
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(str(compiled), parameters)
        local, offset = _local_minutes(scope, minutes), _offset_text(minutes)
        plain = (all(cells.count(b'"') == 6 and screen_id.count('"') == 2 for cells, screen_id in names.values())
                 and all(cells.count(b'"') == 2 and all(name.count(b'"') == 2 for name in files.values())
                         for cells, files in campaigns.values()))
        while rows := cursor.fetchmany(_CHUNK_ROWS):
            yield _pop_lines(rows, names, campaigns, local, offset, minutes, plain)
    finally:
        cursor.close()


_NO_CAMPAIGN: tuple[bytes, dict[str, bytes]] = (b',"",', {})


def _campaign_cells(session: Session, scope: Scope) -> dict[str, tuple[bytes, dict[str, bytes]]]:
    """Each campaign of the scope by id: its name as a CSV cell between commas, and its unit's library (a file's
    name as a CSV cell by its sha256), as `pop_log` joins them; campaigns of one unit share its library."""
    query = select(Campaign.id, Campaign.name, Campaign.organisation_id)
    if scope.campaign_id is not None:
        query = query.where(Campaign.id == scope.campaign_id)
    found = session.execute(query).all()
    libraries: dict[str, dict[str, bytes]] = {unit: {} for _, _, unit in found}
    for unit, sha256, name in session.execute(select(MediaAsset.organisation_id, MediaAsset.sha256,
                                                     MediaAsset.original_name)
                                              .where(MediaAsset.organisation_id.in_(sorted(libraries)))):
        libraries[unit][sha256] = _csv_quote(inert(name)).encode()
    return {campaign: (f",{_csv_quote(inert(name))},".encode(), libraries[unit]) for campaign, name, unit in found}


def _local_minutes(scope: Scope, minutes: int) -> dict[str, str]:
    """SQLite's UTC timestamp text ("2024-08-20 01:30:05.250000", the fixed format SQLAlchemy stores) by its first
    16 characters, the minute, to the local minute in ISO ("2024-08-20T08:30"), made ahead for the period (a plain
    dict: the fastest lookup there is); "" stays "" (no scheduled start)."""
    table = {"": ""}
    _add_minutes(table, minutes, datetime.combine(scope.first - timedelta(days=1), datetime.min.time()),
                 datetime.combine(scope.last + timedelta(days=2), datetime.min.time()))
    return table


def _add_minutes(table: dict[str, str], minutes: int, first: datetime, end: datetime) -> None:
    shift, step = timedelta(minutes=minutes), timedelta(minutes=1)
    while first < end:
        table[first.strftime("%Y-%m-%d %H:%M")] = (first + shift).strftime("%Y-%m-%dT%H:%M")
        first += step


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _pop_lines(rows: list[tuple], names: dict[str, tuple[bytes, str]],
               campaigns: dict[str, tuple[bytes, dict[str, bytes]]], local: dict[str, str], offset: str, minutes: int,
               plain: bool) -> bytes:
    """The CSV lines of the rows of screens in `names` (their names, site and organisation as CSV bytes, and their
    id as a CSV cell), with their campaign's and file's names from `campaigns`. Each time is its local minute, then
    its seconds and milliseconds as stored (cut, never rounded), then the offset. The rest of a line is ASCII but
    for a reason or an id now and then, and is encoded on its own: a line with the Vietnamese names in it would be
    a wide str, slower to build and to encode. Text is quoted without doubling its quotes and without the formula
    check first, which the count of quotes and a search for a quoted cell starting like a formula then prove were
    right (no text held a quote, none starts like a formula), else the lines are made again with quotes doubled and
    each text made inert (formulas.py's rule; the names were made so already)."""
    try:
        lines = [f"{local[a[:16]]}{a[16:23]}{offset},{local[b[:16]]}{b[16:23]}{offset},".encode() + screen[0] +
                 (named := campaigns.get(campaign, _NO_CAMPAIGN))[0] + named[1].get(media, b'""') +
                 f',"{kind}",{local[s[:16]]}{s[16:23]}{s and offset},{duration},"{status}","{reason}",{screen[1]},'
                 f'"{campaign}","{media}","{play}"\r\n'.encode()
                 for player, a, b, campaign, media, kind, s, duration, status, reason, play in rows
                 if (screen := names.get(player)) is not None]
    except KeyError:  # a minute outside the period (an end, or a scheduled start, days off): add its days
        _add_days_of(local, minutes, rows)
        return _pop_lines(rows, names, campaigns, local, offset, minutes, plain)
    data = b"".join(lines)
    if plain and data.count(b'"') == 24 * len(lines) and FORMULA_CELL.search(data) is None:
        return data

    def q(text: str) -> str:
        return _csv_quote(inert(text))

    return b"".join([f"{local[a[:16]]}{a[16:23]}{offset},{local[b[:16]]}{b[16:23]}{offset},".encode() + screen[0] +
                     (named := campaigns.get(campaign, _NO_CAMPAIGN))[0] + named[1].get(media, b'""') +
                     f",{q(kind)},{local[s[:16]]}{s[16:23]}{s and offset},{duration},{q(status)},{q(reason)},"
                     f"{screen[1]},{q(campaign)},{q(media)},{q(play)}\r\n".encode()
                     for player, a, b, campaign, media, kind, s, duration, status, reason, play in rows
                     if (screen := names.get(player)) is not None])


def _add_days_of(local: dict[str, str], minutes: int, rows: list[tuple]) -> None:
    for row in rows:
        for value in (row[1], row[2], row[6]):
            if value[:16] not in local:
                day = datetime.fromisoformat(value[:10])
                _add_minutes(local, minutes, day, day + timedelta(days=1))
                if value[:16] not in local:
                    raise ValueError(f"play {row[10]!r} has a time stored as {value!r}, not as SQLAlchemy stores "
                                     f"times in SQLite (YYYY-MM-DD HH:MM:SS.ffffff, UTC)")


def _csv_quote(text: str | None) -> str:
    return '"' + (text or "").replace('"', '""') + '"'


def pop_report(session: Session, scope: Scope, now: datetime, language: str = "vi") -> Report:
    en = language == "en"
    return Report(kind="pop", title="Nhật ký phát sóng" if not en else "Proof-of-play log",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=[Sheet("Nhật ký" if not en else "Log", POP_COLUMNS, pop_log(session, scope),
                                row_count=pop_count(session, scope))],
                  language=language, notes=[scope.campaign_note(language)])


def pop_count(session: Session, scope: Scope) -> int:
    return session.scalar(scope.filter_plays(select(func.count()).select_from(PlayRecord))) or 0


# -- screen health ---------------------------------------------------------------------------------------------

def operating_seconds(site: Site, day: date) -> int:
    return sum(w.end - w.start for w in site.effective_operating_hours().on(day)) * 60


def health_days(session: Session, scope: Scope) -> Iterator[dict]:
    """Per screen and day of the period: the share of its operating hours it was heard from, first and last."""
    screens = session.execute(scope.filter_screens(select(Screen.id, Site, Organisation.name))
                              .order_by(Screen.id)).all()
    heard = {(d.player_id, d.local_date): d for d in session.scalars(
        select(PlayerDay).where(PlayerDay.player_id.in_([s[0] for s in screens]),
                                PlayerDay.local_date.between(scope.first, scope.last)))}
    day = scope.first
    while day <= scope.last:
        for screen_id, site, organisation in screens:
            if not scope.in_service_on(screen_id, day):
                continue
            seconds = operating_seconds(site, day)
            seen = heard.get((screen_id, day))
            uptime = min(1.0, seen.heartbeats * HEARTBEAT.total_seconds() / seconds) if seen and seconds else (
                0.0 if seconds else None)
            yield {"date": day, "screen_id": screen_id, "site": site.name, "organisation": organisation,
                   "uptime": uptime, "first_seen": seen.first_seen if seen else None,
                   "last_seen": seen.last_seen if seen else None,
                   "had_plan": ("có" if seen.had_plan else "không") if seen else ""}
        day += timedelta(days=1)


STATE_WORDS = {"online": ("Đang hoạt động", "Online"), "offline": ("Mất kết nối", "Offline"),
               "never": ("Chưa kết nối lần nào", "Never connected")}
ATTENTION_WORDS = {"dark_in_peak": ("Tắt trong giờ cao điểm", "Dark in its peak hours"),
                   "offline": ("Mất kết nối", "Offline"), "degraded": ("Cần kiểm tra", "Degraded"),
                   "ok": ("Bình thường", "Fine"), "never": ("Chưa kết nối lần nào", "Never connected"),
                   "retired": ("Đã ngừng sử dụng", "Retired")}
TROUBLE_WORDS = {"cache_missing": ("thiếu media", "media missing"),
                 "journal_failing": ("nhật ký không ghi được", "journal failing"),
                 "journal_backlog": ("nhật ký tồn đọng", "journal backlog"),
                 "clock_offset": ("lệch đồng hồ", "clock offset"),
                 "refused": ("từ chối lịch hoặc lệnh", "refused a plan or command")}


def _words(table: dict[str, tuple[str, str]], key: str, language: str) -> str:
    vi, en = table[key]
    return en if language == "en" else vi


def health_now(session: Session, scope: Scope, now: datetime, language: str = "vi") -> list[dict]:
    """Each screen of the scope as its player last reported, by what needs action first (campaigns/screen_state.py's
    `attention`: dark in its peak hours now, offline, degraded, fine; never connected last), the longest silent
    first within a group. `attention_kind` is the group's word of the fixed vocabulary, for the page."""
    newest = newest_versions(session)
    rows = session.execute(scope.filter_screens(
        select(Screen.id, Screen.name, Screen.retired_at, Site, Organisation.name.label("organisation"),
               PlayerPresence))
        .outerjoin(PlayerPresence, PlayerPresence.player_id == Screen.id).order_by(Screen.id)).all()
    result = []
    for screen_id, screen_name, retired_at, site, organisation, presence in rows:
        state = state_of(screen_id, presence, newest.get(screen_id), now)
        kind = attention(state, site, now, retired=retired_at is not None)
        needs = _words(ATTENTION_WORDS, kind, language)
        if state.troubles and kind != "retired":
            needs += ": " + ", ".join(_words(TROUBLE_WORDS, t, language) for t in state.troubles)
        result.append({"screen_id": screen_id, "screen_name": screen_name, "site": site.name,
                       "organisation": organisation,
                       "state": _words(STATE_WORDS, state.state, language), "attention": needs,
                       "attention_kind": kind, "last_seen": state.last_seen,
                       "plan_confirmed": ("có" if state.plan_current else "không") if language != "en" else (
                           "yes" if state.plan_current else "no"),
                       "cache_ready": state.cache_ready, "cache_missing": state.cache_missing,
                       "journal_backlog": state.journal_backlog, "clock_offset_ms": state.clock_offset_ms})
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    result.sort(key=lambda r: (ATTENTION_ORDER.index(r["attention_kind"]),
                               r["last_seen"] or oldest if r["attention_kind"] in ("dark_in_peak", "offline")
                               else oldest, r["screen_id"]))
    return result


def health_report(session: Session, scope: Scope, now: datetime, language: str = "vi") -> Report:
    en = language == "en"
    return Report(kind="health", title="Tình trạng màn hình" if not en else "Screen health",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=[Sheet("Hiện tại" if not en else "Now", NOW_COLUMNS,
                                health_now(session, scope, now, language)),
                          Sheet("Theo ngày" if not en else "By day", HEALTH_COLUMNS, health_days(session, scope))],
                  language=language)


# -- progress by rounds ----------------------------------------------------------------------------------------

def rounds(session: Session, scope: Scope) -> list[dict]:
    """Per unit under the scope: its screens with any requirement in the period, those that met every day's,
    and its plays. Compliance is delivered over required plays, each screen-day counted up to its requirement."""
    short = case((met_requirement(), 0), else_=1)
    per_screen = session.execute(scope.filter_ledger(
        select(Organisation.path, DeliveryRollup.screen_id, func.sum(short).label("short_days"),
               func.sum(capped_delivered()).label("delivered"), func.sum(DeliveryRollup.required).label("required"))
    ).group_by(Organisation.path, DeliveryRollup.screen_id)).all()
    names = dict(session.execute(scope.filter_organisations(select(Organisation.id, Organisation.name))).all())
    units: dict[str, dict] = {}
    for path, _screen, short_days, delivered, required in per_screen:
        unit = scope.unit_of(path)
        row = units.setdefault(unit, {"unit": names.get(unit, unit), "screens": 0, "screens_compliant": 0,
                                      "plays_delivered": 0, "plays_required": 0})
        row["screens"] += 1
        row["screens_compliant"] += short_days == 0
        row["plays_delivered"] += delivered or 0
        row["plays_required"] += required or 0
    result = sorted(units.values(), key=lambda r: r["unit"])
    for row in result:
        row["compliance"] = row["plays_delivered"] / row["plays_required"] if row["plays_required"] else None
    return result


def rounds_report(session: Session, scope: Scope, now: datetime, language: str = "vi") -> Report:
    en = language == "en"
    rows = rounds(session, scope)
    total = {"unit": "Tổng" if not en else "Total",
             **{key: sum(r[key] for r in rows) for key in ("screens", "screens_compliant", "plays_delivered",
                                                           "plays_required")}}
    total["compliance"] = total["plays_delivered"] / total["plays_required"] if total["plays_required"] else None
    return Report(kind="rounds", title="Báo cáo tiến độ theo đợt" if not en else "Progress report for the round",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=[Sheet("Theo đơn vị" if not en else "By unit", ROUND_COLUMNS, rows, total)],
                  language=language, notes=[scope.campaign_note(language)])


__all__ = ["health_report", "pop_log", "pop_report", "rounds", "rounds_report"]
