"""The reporting rounds file (campaigns/round_file.py): the Ba Vì example imports, exports and imports back to the
same state, twice changing nothing; a bad file is refused whole, each problem on its line; `signage rounds import`
and `export` from the command line."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.models import ReportRound, ReportSeries
from campaigns.round_file import export_rounds, import_rounds
from campaigns.yaml_source import FileRejected
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "ba-vi-rounds.yaml"


def test_the_ba_vi_example_imports_with_its_four_deadlines(session, fleet, clock):
    report = import_rounds(session, EXAMPLE, clock)
    assert report.as_json()["counts"]["rounds"] == {"created": 4, "updated": 0, "unchanged": 0}
    series = session.get(ReportSeries, "ba-vi-ihanoi-2024")
    assert series.organisation_id == "hn-bavi" and len(series.fields) == 12
    deadlines = session.scalars(select(ReportRound.deadline).order_by(ReportRound.deadline)).all()
    assert deadlines == [datetime(2024, 7, 18, 17, 0, tzinfo=UTC), datetime(2024, 7, 25, 17, 0, tzinfo=UTC),
                         datetime(2024, 8, 19, 17, 0, tzinfo=UTC), datetime(2024, 9, 9, 17, 0, tzinfo=UTC)]
    assert [f.key for f in series.fields if f.figure is None][:3] == ["staff_total", "staff_installed",
                                                                      "staff_installed_percent"]


def test_export_imports_back_to_the_same_state_and_twice_changes_nothing(session, fleet, clock, tmp_path):
    import_rounds(session, EXAMPLE, clock)
    exported = export_rounds(session, "Asia/Ho_Chi_Minh")
    again = tmp_path / "again.yaml"
    again.write_text(exported, encoding="utf-8")
    assert not import_rounds(session, again, clock).changed
    assert not import_rounds(session, EXAMPLE, clock).changed
    assert export_rounds(session, "Asia/Ho_Chi_Minh") == exported
    assert "deadline: 2024-07-19 00:00:00+07:00" in exported


def test_a_changed_file_updates_and_removes_a_field(session, fleet, clock, tmp_path):
    import_rounds(session, EXAMPLE, clock)
    text = EXAMPLE.read_text(encoding="utf-8")
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("deadline: 2024-09-10T00:00:00+07:00", "deadline: 2024-09-12T00:00:00+07:00")
                       .replace("      - key: notes\n        label: Khó khăn, vướng mắc, đề xuất\n        kind: text\n",
                                ""), encoding="utf-8")
    report = import_rounds(session, changed, clock).as_json()["counts"]
    assert report["rounds"] == {"created": 0, "updated": 1, "unchanged": 3}
    assert "notes" not in [f.key for f in session.get(ReportSeries, "ba-vi-ihanoi-2024").fields]


BAD = """schema: signage.rounds/1
series:
  - id: ba-vi-2024
    organisation: hn-nowhere
    name: Báo cáo
    fields:
      - key: installs
        label: Tỷ lệ cài đặt
        kind: percent
        maximum: 120
      - key: screens
        label: Màn hình
        figure: speakers
    rounds:
      - name: Báo cáo lần 1
        period_start: 2024-07-01
        period_end: 2024-07-18
        deadline: 2024-07-19 00:00:00
"""


def test_a_bad_file_is_refused_whole_with_each_problem_on_its_line(session, fleet, clock, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    with pytest.raises(FileRejected) as refused:
        import_rounds(session, bad, clock)
    found = {(p.line, p.path) for p in refused.value.problems}
    assert found == {(7, "series[0].fields[0]"), (13, "series[0].fields[1].figure"),
                     (18, "series[0].rounds[0].deadline")}, refused.value
    assert session.scalar(select(ReportSeries.id)) is None
    # the references are checked once the file is well formed
    bad.write_text(BAD.replace("maximum: 120", "maximum: 100").replace("figure: speakers", "figure: screens")
                   .replace("deadline: 2024-07-19 00:00:00", "deadline: 2024-07-19T00:00:00+07:00"), encoding="utf-8")
    with pytest.raises(FileRejected) as refused:
        import_rounds(session, bad, clock)
    assert [(p.line, p.message) for p in refused.value.problems] == [(4, "there is no organisation 'hn-nowhere'")]


def test_the_command_line_imports_and_exports(database, fleet, cli_env, tmp_path):
    def signage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "signage_cli", *args], capture_output=True, text=True,
                              env=cli_env, timeout=120)

    done = signage("rounds", "import", str(EXAMPLE), "--json")
    assert done.returncode == 0, done.stderr
    out = Path(tmp_path / "out.yaml")
    exported = signage("rounds", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "Báo cáo lần 4" in out.read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    refused = signage("rounds", "import", str(bad))
    assert refused.returncode == 2 and "bad.yaml:13" in refused.stderr
