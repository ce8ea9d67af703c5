"""`signage report ...` as a real process on the known day of tests/test_ledger.py: files readers can open."""

from __future__ import annotations

import csv
import subprocess

import openpyxl

from tests.test_cli import run
from tests.test_compliance_report import closed  # noqa: F401
from tests.test_ledger import ledger  # noqa: F401

DAY = ["--campaign", "ihanoi-2024", "--from", "2024-08-20", "--to", "2024-08-20"]


def test_the_districts_compliance_opens_in_a_spreadsheet_with_a_sheet_per_level(closed, cli_env, tmp_path):  # noqa: F811
    out = tmp_path / "hadong.xlsx"
    result = run(cli_env, "report", "compliance", *DAY, "--scope", "hn-hadong", "--out", str(out))
    assert result.returncode == 0, result.stderr
    book = openpyxl.load_workbook(out, read_only=True)
    assert len(book.sheetnames) == 5  # the title sheet, then unit, site kind, site, screen-day
    days = list(book[book.sheetnames[-1]].iter_rows(values_only=True))
    assert len(days) == 1 + 5


def test_the_pdf_for_a_ward_names_it_and_its_period(closed, cli_env, tmp_path):  # noqa: F811
    out = tmp_path / "vanquan.pdf"
    result = run(cli_env, "report", "compliance", *DAY, "--scope", "hn-hadong-vanquan", "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Báo cáo tuân thủ phát sóng" in text and "Văn Quán" in text and "20/08/2024" in text


def test_the_log_exports_as_csv_and_in_the_playout_format(closed, cli_env, tmp_path):  # noqa: F811
    log = tmp_path / "log.csv"
    assert run(cli_env, "report", "pop", *DAY, "--scope", "hn-hadong-vanquan", "--out", str(log)).returncode == 0
    rows = list(csv.reader(log.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 1 + 11
    playout = tmp_path / "playout.csv"
    result = run(cli_env, "report", "pop", *DAY, "--scope", "hn-hadong-vanquan", "--format", "playout",
                 "--out", str(playout))
    assert result.returncode == 0, result.stderr
    assert len(playout.read_text().splitlines()) == 9  # the completed plays: 8 spots and the make-good


def test_a_bad_date_is_refused_with_exit_2_and_nothing_written(closed, cli_env, tmp_path):  # noqa: F811
    out = tmp_path / "x.csv"
    result = run(cli_env, "report", "rounds", "--from", "20/08/2024", "--out", str(out))
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr
    assert not out.exists()


def test_the_cli_exports_of_the_log_write_no_live_formula(closed, cli_env, tmp_path):  # noqa: F811
    """Issue 16, item 5: a play whose campaign and media ids are a formula, exported by `signage report pop` as
    CSV, XLSX and the playout format: every such cell starts with an apostrophe (before the fix the CSV and the
    playout file held "=HYPERLINK(..." as is, and the XLSX cell the same text)."""
    from datetime import UTC, datetime

    from tests.test_ledger import VANQUAN
    from tests.test_pop_log_csv import FORMULA, add_formula_play

    play_id = add_formula_play(closed, VANQUAN, datetime(2024, 8, 20, 4, 0, tzinfo=UTC))
    period = ["--from", "2024-08-20", "--to", "2024-08-20", "--scope", "hn-hadong-vanquan"]
    for fmt in ("csv", "xlsx", "playout"):
        out = tmp_path / f"log.{fmt}"
        result = run(cli_env, "report", "pop", *period, "--format", fmt, "--out", str(out))
        assert result.returncode == 0, result.stderr
        if fmt == "xlsx":
            rows = list(openpyxl.load_workbook(out, read_only=True)["Nhật ký"].iter_rows(values_only=True))
            (row,) = [r for r in rows if r[-1] == play_id]
            assert row[13:15] == ("'" + FORMULA, "'" + FORMULA) and row[9] == 15000  # the ids, after the names
        else:
            rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
            (row,) = [r for r in rows if r[-1] == play_id]
            cells = row[13:15] if fmt == "csv" else [row[7], row[13]]
            assert cells == ["'" + FORMULA, "'" + FORMULA], fmt


def test_a_period_without_plays_says_so_exits_3_and_writes_no_file(closed, cli_env, tmp_path):  # noqa: F811
    """Issue 18, item 6: `signage report pop --format playout` for a period without plays wrote a 0-byte file and
    exited 0. Now nothing is written, stderr says why (in the report's language) and the exit code is 3, as for
    a shortfall of `signage plan`; with --allow-empty the file is written all the same."""
    quiet = ["--campaign", "ihanoi-2024", "--from", "2024-08-25", "--to", "2024-08-26", "--scope", "hn-hadong"]
    for kind, fmt in (("pop", "playout"), ("pop", "csv"), ("pop", "xlsx"), ("compliance", "pdf"),
                      ("rounds", "csv")):
        out = tmp_path / "reports" / f"{kind}.{fmt}"
        result = run(cli_env, "report", kind, *quiet, "--format", fmt, "--out", str(out))
        assert result.returncode == 3, (kind, fmt, result.stderr)
        assert list(out.parent.iterdir()) == [], (kind, fmt)  # no file, no temporary one left behind
        assert "không có dữ liệu để ghi" in result.stderr and "25/08/2024–26/08/2024" in result.stderr
        assert "--allow-empty" in result.stderr and "wrote" not in result.stdout
    playout = run(cli_env, "report", "pop", *quiet, "--format", "playout", "--out", str(tmp_path / "p.csv"))
    assert "lượt phát hoàn thành" in playout.stderr

    english = run(cli_env, "report", "pop", *quiet, "--lang", "en", "--out", str(tmp_path / "log.csv"))
    assert english.returncode == 3 and "nothing to write" in english.stderr and "no rows" in english.stderr

    kept = tmp_path / "empty.csv"
    allowed = run(cli_env, "report", "pop", *quiet, "--format", "playout", "--allow-empty", "--out", str(kept))
    assert allowed.returncode == 0, allowed.stderr
    assert kept.exists() and kept.read_bytes() == b"" and "(no rows)" in allowed.stdout


def test_plays_that_are_not_playouts_leave_the_playout_file_unwritten(closed, clock, cli_env, tmp_path):  # noqa: F811
    """A day whose only play failed: the log has its row, the playout file (completed plays only) would be empty."""
    import json
    from datetime import date

    from scheduler.ingest import ScreenDirectory, ingest_pop
    from signage.db import transaction
    from tests.test_ledger import VANQUAN, at, play

    failed = play(VANQUAN, at(9, day=date(2024, 8, 27)), status="failed", reason="playback error: libVLC failed")
    with transaction(closed.sessions) as session:
        ingest_pop(session, [(VANQUAN, json.dumps({"schema": "signage.pop/1", "batch_id": "failed-only",
                                                   "records": [failed]}).encode())], ScreenDirectory(), clock.now())
    day = ["--from", "2024-08-27", "--to", "2024-08-27", "--scope", "hn-hadong-vanquan"]
    log = run(cli_env, "report", "pop", *day, "--out", str(tmp_path / "log.csv"))
    assert log.returncode == 0, log.stderr
    assert len((tmp_path / "log.csv").read_text(encoding="utf-8-sig").splitlines()) == 1 + 1
    playout = run(cli_env, "report", "pop", *day, "--format", "playout", "--out", str(tmp_path / "playout.csv"))
    assert playout.returncode == 3 and "lượt phát hoàn thành" in playout.stderr
    assert not (tmp_path / "playout.csv").exists()
