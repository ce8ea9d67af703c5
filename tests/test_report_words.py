"""The codes in report rows (a play's kind and status, a site kind, a player's reason) as people read them: pages,
PDFs and XLSX show the catalogue's labels, the CSV keeps the codes and the players' own words for the tools that
read it (scheduler/reports/words.py)."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl

from scheduler.reports.columns import PLAY_KIND, PLAY_STATUS, REASON, SITE_KIND
from scheduler.reports.exports import cell_text, iter_csv, write_xlsx
from scheduler.reports.table import Report, Sheet
from scheduler.reports.words import REASON_PREFIXES, REASONS

PLAYER = Path(__file__).resolve().parent.parent / "player"


def test_codes_show_their_labels_and_a_value_without_one_as_it_is():
    assert cell_text(PLAY_KIND, "makegood", "vi") == "Phát bù"
    assert cell_text(PLAY_STATUS, "failed", "en") == "Failed"
    assert cell_text(SITE_KIND, "ward_office", "vi") != "ward_office"
    assert cell_text(SITE_KIND, "Tổng", "vi") == "Tổng"  # a totals row's label


def test_a_players_reason_shows_its_label_and_one_the_labels_do_not_know_after_other_reason():
    assert cell_text(REASON, "media not cached", "vi") == "Chưa tải được nội dung về máy"
    assert cell_text(REASON, "playback error: libVLC could not play x.mp4", "vi") == "Lỗi khi phát"
    assert cell_text(REASON, "urgent alert A1", "en") == "Gave way to an urgent alert"
    assert cell_text(REASON, "a fault no one foresaw", "vi") == "Lý do khác: a fault no one foresaw"


def test_every_reason_labelled_is_one_a_player_writes():
    # The player writes these texts (player/programme.py, programme_run.py, takeover.py, agent.py); a reworded one
    # would fall to "other reason" unnoticed.
    source = "\n".join(path.read_text(encoding="utf-8") for path in PLAYER.glob("*.py"))
    for text in REASONS:
        assert re.search(f'"{re.escape(text)}"', source), text
    for prefix in REASON_PREFIXES:
        assert f'"{prefix}' in source, prefix


def test_the_csv_keeps_the_codes_and_the_xlsx_shows_the_labels(tmp_path):
    row = {"kind": "makegood", "status": "missed", "reason": "media not cached"}
    report = Report(kind="pop", title="Nhật ký phát sóng", organisation="Quận Hà Đông",
                    period=(date(2024, 8, 20), date(2024, 8, 20)), generated_at=datetime(2024, 8, 21, tzinfo=UTC),
                    sheets=[Sheet("Nhật ký", [PLAY_KIND, PLAY_STATUS, REASON], [row])])
    csv = b"".join(iter_csv(report)).decode("utf-8-sig")
    assert csv.splitlines()[1] == "makegood,missed,media not cached"
    report.sheets[0].rows = [row]
    out = io.BytesIO()
    write_xlsx(report, out)
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True)["Nhật ký"]
    assert list(sheet.iter_rows(min_row=2, values_only=True))[0] == (
        "Phát bù", cell_text(PLAY_STATUS, "missed", "vi"), "Chưa tải được nội dung về máy")
