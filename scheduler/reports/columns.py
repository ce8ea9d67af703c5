"""The reports' columns, each titled once (Vietnamese, English), and the columns each report's sheets show.

A column means the same wherever it stands: a report that shows a site, a screen or a campaign shows the one
column below, and a sheet's columns are a list of these names. The rows the reports make are keyed by
`Column.key`; a key may stand in two columns of different reports when the figure behind it differs (e.g.
"compliance": a share of screen-days in the compliance report's summaries, delivered over required plays in its
screen-days and in the rounds).
"""

from __future__ import annotations

from dataclasses import replace

from scheduler.reports.table import Column
from scheduler.reports.words import labelled, reason_words

# -- where and when: the fleet and the period --------------------------------------------------------------------
DATE = Column("date", "Ngày", "Date", "date", 11)
UNIT = Column("unit", "Đơn vị", "Unit", "text", 36)
UNIT_ID = Column("organisation_id", "Mã đơn vị", "Unit id", "id", 22)
ORGANISATION = Column("organisation", "Đơn vị", "Organisation", "text", 28)
SITE = Column("site", "Điểm đặt", "Site", "text", 30)
SITE_KIND = Column("site_kind", "Loại điểm", "Site kind", "text", 24, words=labelled("site."))
# Ids that have names: pages and PDFs show the name (table.for_reading); CSV and XLSX the id tools need, after the
# name where a sheet lists both.
SCREEN_NAME = Column("screen_name", "Màn hình", "Screen", "text", 28)
SCREEN_ID = Column("screen_id", "Mã màn hình", "Screen id", "id", 24, named_by=SCREEN_NAME)
CAMPAIGN_NAME = Column("campaign_name", "Chiến dịch", "Campaign", "text", 28)
CAMPAIGN_ID = Column("campaign_id", "Mã chiến dịch", "Campaign id", "id", 16, named_by=CAMPAIGN_NAME)

# -- the delivery ledger (compliance) ----------------------------------------------------------------------------
SCREEN_DAYS = Column("screen_days", "Màn hình-ngày", "Screen-days", "int", 12)
COMPLIANT = Column("compliant", "Đạt", "Compliant", "int", 10)
REQUIRED = Column("required", "Yêu cầu", "Required", "int", 10)
PLANNED = Column("planned", "Đã lập lịch", "Planned", "int", 11)
DELIVERED = Column("delivered", "Đã phát (giờ cao điểm)", "Delivered (peak)", "int", 14)
DELIVERED_TOTAL = Column("delivered_total", "Tổng lượt phát", "All plays", "int", 12)
MAKEGOODS = Column("makegoods", "Phát bù", "Make-goods", "int", 10)
DELIVERY = Column("delivery", "Tỷ lệ phát", "Delivery %", "percent", 11)
COMPLIANT_SHARE = Column("compliance", "Tỷ lệ màn hình-ngày đạt", "Compliant %", "percent", 14)
CAUSES = Column("causes", "Nguyên nhân thiếu", "Shortfall causes", "text", 40)
DAY_COMPLIANCE = Column("compliance", "Tỷ lệ", "Compliance", "percent", 9)
CAUSE = Column("cause", "Nguyên nhân", "Cause", "text", 24)

# -- the proof-of-play log ---------------------------------------------------------------------------------------
STARTED_AT = Column("started_at", "Bắt đầu", "Started", "datetime", 20)
ENDED_AT = Column("ended_at", "Kết thúc", "Ended", "datetime", 20)
MEDIA_NAME = Column("media_name", "Nội dung", "Media", "text", 24)
MEDIA = Column("media", "Media (sha256)", "Media (sha256)", "id", 20, named_by=MEDIA_NAME)
PLAY_KIND = Column("kind", "Loại", "Kind", "text", 16, words=labelled("play.kind."))
SCHEDULED_START = Column("scheduled_start", "Giờ theo lịch", "Scheduled", "datetime", 20)
DURATION = Column("duration_ms", "Thời lượng", "Duration", "duration_ms", 10)
PLAY_STATUS = Column("status", "Kết quả", "Status", "text", 16, words=labelled("play.status."))
REASON = Column("reason", "Lý do", "Reason", "text", 30, words=reason_words)
PLAY_ID = Column("play_id", "Mã lượt phát", "Play id", "id", 36)

# -- screen health -----------------------------------------------------------------------------------------------
UPTIME = Column("uptime", "Thời gian hoạt động", "Uptime", "percent", 12)
FIRST_SEEN_IN_DAY = Column("first_seen", "Lần đầu trong ngày", "First seen", "datetime", 20)
LAST_SEEN_IN_DAY = Column("last_seen", "Lần cuối trong ngày", "Last seen", "datetime", 20)
HAD_PLAN = Column("had_plan", "Có lịch phát", "Had a plan", "text", 10)
STATE = Column("state", "Trạng thái", "State", "text", 14)
ATTENTION = Column("attention", "Cần xử lý", "Needs action", "text", 30)
LAST_SEEN = Column("last_seen", "Lần cuối", "Last seen", "datetime", 20)
PLAN_CONFIRMED = Column("plan_confirmed", "Lịch phát mới nhất đã nhận", "Newest plan confirmed", "text", 14)
CACHE_READY = Column("cache_ready", "Media sẵn sàng", "Media ready", "int", 10)
CACHE_MISSING = Column("cache_missing", "Media thiếu", "Media missing", "int", 10)
JOURNAL_BACKLOG = Column("journal_backlog", "Bản ghi chờ gửi", "Journal backlog", "int", 12)
CLOCK_OFFSET = Column("clock_offset_ms", "Lệch đồng hồ (ms)", "Clock offset (ms)", "int", 12)

# -- progress by rounds ------------------------------------------------------------------------------------------
SCREENS = Column("screens", "Số màn hình", "Screens", "int", 10)
SCREENS_COMPLIANT = Column("screens_compliant", "Màn hình đạt", "Screens compliant", "int", 12)
PLAYS_DELIVERED = Column("plays_delivered", "Lượt phát (giờ cao điểm)", "Plays delivered (peak)", "int", 14)
PLAYS_REQUIRED = Column("plays_required", "Lượt yêu cầu", "Plays required", "int", 12)
ROUND_COMPLIANCE = Column("compliance", "Tỷ lệ đạt", "Compliance", "percent", 10)

# -- message cadence ---------------------------------------------------------------------------------------------
MESSAGES = Column("messages", "Tin thường xuyên trong kỳ", "Regular messages in the period", "int", 14)
URGENT = Column("urgent", "Cảnh báo khẩn trong kỳ", "Urgent alerts in the period", "int", 14)
LAST_MESSAGE = Column("last_message", "Tin thường xuyên gần nhất", "Last regular message", "datetime", 20)
DAYS_SINCE = Column("days_since", "Số ngày từ tin gần nhất", "Days since it", "decimal", 12)
LONGEST_GAP = Column("longest_gap", "Khoảng cách dài nhất (ngày)", "Longest gap (days)", "decimal", 14)
INTERVAL = Column("interval_days", "Khoảng cách quy định (ngày)", "Interval (days)", "int", 12)
LATE = Column("late", "Quá khoảng cách quy định", "Over its interval", "text", 12)
DUE_BY = Column("due_by", "Hạn tin tiếp theo", "Due by", "datetime", 20)
RHYTHM_STATE = Column("rhythm_state", "Tình trạng", "State", "text", 14, words=labelled("rhythm.state."))


# -- the sheets' columns -----------------------------------------------------------------------------------------

# Compliance: a summary sheet is its label columns, then these figures.
FIGURE_COLUMNS = [SCREEN_DAYS, COMPLIANT, REQUIRED, PLANNED, DELIVERED, DELIVERED_TOTAL, MAKEGOODS, DELIVERY,
                  COMPLIANT_SHARE, CAUSES]
BY_UNIT_COLUMNS = [UNIT, *FIGURE_COLUMNS]
BY_SITE_KIND_COLUMNS = [SITE_KIND, *FIGURE_COLUMNS]
BY_SITE_COLUMNS = [replace(SITE, width=36), UNIT, *FIGURE_COLUMNS]
DAY_COLUMNS = [DATE, ORGANISATION, SITE, SCREEN_ID, CAMPAIGN_ID, REQUIRED, PLANNED, DELIVERED, MAKEGOODS,
               DAY_COMPLIANCE, CAUSE]

# The log names its screen, campaign and file, and keeps their ids after the rest for tools (a page shows the names).
POP_COLUMNS = [STARTED_AT, ENDED_AT, SCREEN_NAME, SITE, ORGANISATION, CAMPAIGN_NAME, MEDIA_NAME, PLAY_KIND,
               SCHEDULED_START, DURATION, PLAY_STATUS, REASON, replace(SCREEN_ID, key="player_id"), CAMPAIGN_ID, MEDIA,
               PLAY_ID]

HEALTH_COLUMNS = [DATE, SCREEN_ID, SITE, ORGANISATION, UPTIME, FIRST_SEEN_IN_DAY, LAST_SEEN_IN_DAY, HAD_PLAN]
NOW_COLUMNS = [SCREEN_ID, SITE, ORGANISATION, STATE, ATTENTION, LAST_SEEN, PLAN_CONFIRMED, CACHE_READY, CACHE_MISSING,
               JOURNAL_BACKLOG, CLOCK_OFFSET]

ROUND_COLUMNS = [UNIT, SCREENS, SCREENS_COMPLIANT, PLAYS_DELIVERED, PLAYS_REQUIRED, ROUND_COMPLIANCE]

CADENCE_COLUMNS = [UNIT, UNIT_ID, MESSAGES, URGENT, LAST_MESSAGE, DAYS_SINCE, LONGEST_GAP, INTERVAL, LATE, DUE_BY,
                   RHYTHM_STATE]

# -- mobile loudspeaker rounds (campaigns/mobile_rounds.py): a day's shortfall is its rounds missed ----------------
MOBILE_PLANNED = Column("planned", "Lượt loa kế hoạch", "Rounds planned", "int", 12)
MOBILE_DONE = Column("done", "Lượt đã chạy (giờ cao điểm)", "Rounds done (peak)", "int", 14)
MOBILE_MISSED = Column("missed", "Lượt thiếu", "Rounds short", "int", 10)
MOBILE_OUTSIDE_PEAK = Column("outside_peak", "Lượt ngoài giờ cao điểm (không tính)", "Outside peak (not counted)",
                             "int", 16)
MOBILE_SHARE = Column("compliance", "Tỷ lệ đạt", "Compliance", "percent", 10)
MOBILE_UNIT_ID = replace(UNIT_ID, named_by=UNIT)  # pages and PDFs name the unit; CSV and XLSX keep its id too
MOBILE_UNIT_COLUMNS = [UNIT, MOBILE_UNIT_ID, MOBILE_PLANNED, MOBILE_DONE, MOBILE_MISSED, MOBILE_SHARE,
                       MOBILE_OUTSIDE_PEAK]
MOBILE_DAY_COLUMNS = [DATE, UNIT, MOBILE_UNIT_ID, MOBILE_PLANNED, MOBILE_DONE, MOBILE_MISSED, MOBILE_SHARE,
                      MOBILE_OUTSIDE_PEAK]
