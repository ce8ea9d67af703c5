"""signage simulate: the real planner, agents, ingest and ledger on virtual time, with injected faults.

A small fleet (one ward office, three screens, peak 08:00-11:00 and 14:00-16:30) and one campaign of 10 plays a
day, over two days; each test injects one kind of fault and checks what the ledger says against it.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.yaml_source import FileRejected
from scheduler.models import DeliveryRollup, PlayRecord
from simulation.engine import journal_figures
from simulation.faults import FaultFile, read_fault_file
from simulation.outcome import check_run
from simulation.world import begin, build_world

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
DAY1, DAY2 = date(2024, 8, 20), date(2024, 8, 21)  # a Tuesday and a Wednesday
SCREENS = ("w-001", "w-002", "w-003")

FLEET = """
schema: signage.fleet/1
organisations:
  - {id: hn, name: Hà Nội, kind: city}
  - {id: ward, name: Phường Thử, kind: ward, parent: hn}
sites:
  - id: w-office
    name: UBND phường Thử
    kind: ward_office
    organisation: ward
    operating_hours: {daily: ["07:00-18:00"]}
    peak_windows: {daily: ["08:00-11:00", "14:00-16:30"]}
screens:
  - {id: w-001, site: w-office, name: LCD 1, kind: lcd, resolution: 1920x1080}
  - {id: w-002, site: w-office, name: LCD 2, kind: lcd, resolution: 1920x1080}
  - {id: w-003, site: w-office, name: LCD 3, kind: lcd, resolution: 1920x1080}
"""

CAMPAIGNS = """
schema: signage.campaigns/1
campaigns:
  - id: test-campaign
    name: Chiến dịch thử
    organisation: hn
    start_date: 2024-08-01
    end_date: 2024-09-30
    plays_per_day: 10
    creatives:
      - file: media/ihanoi-poster.png
        duration_s: 15
    targets: {organisations: [ward]}
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "media").mkdir()
    shutil.copy(EXAMPLES / "media" / "ihanoi-poster.png", tmp_path / "media")
    fleet, campaigns = tmp_path / "fleet.yaml", tmp_path / "campaigns.yaml"
    fleet.write_text(FLEET, encoding="utf-8")
    campaigns.write_text(CAMPAIGNS, encoding="utf-8")
    return fleet, campaigns


def at(day: date, clock_time: str) -> str:
    return datetime.combine(day, datetime.strptime(clock_time, "%H:%M").time(), HANOI).isoformat()


def run(files, tmp_path: Path, faults: dict, first: date = DAY1, last: date = DAY2):
    """Run the simulation over [first, last]; returns (findings, rollups by (screen, day), journal figures)."""
    world = build_world(*files, FaultFile.model_validate({"schema": "signage.faults/1", **faults}), first, last,
                        tmp_path / "run", "Asia/Ho_Chi_Minh")
    try:
        begin(world)
        world.simulation.run_until(world.end)
        world.simulation.drain()
        world.server.close_ledger_days()
        world.simulation.stop_players()
        with world.database.sessions() as session:
            findings = check_run(session, world.simulation.faults, world.server.peak_windows, first, last)
            rollups = {(r.screen_id, r.local_date): r for r in session.scalars(select(DeliveryRollup))}
            records = session.scalars(select(PlayRecord)).all()
        return findings, rollups, records, journal_figures(world.simulation.players, world.data_dir)
    finally:
        world.database.dispose()


def test_with_nothing_going_wrong_every_screen_day_is_compliant_and_every_record_arrives_once(files, tmp_path):
    findings, rollups, records, journals = run(files, tmp_path, {})
    assert (findings.screen_days, findings.compliant) == (6, 6)
    assert all(rollups[(s, d)].completed_in_peak == 10 and rollups[(s, d)].closed for s in SCREENS
               for d in (DAY1, DAY2))
    assert len(records) == 60 == journals["appended"]
    assert len({r.play_id for r in records}) == 60
    assert journals["backlog"] == 0 and findings.spots_doubled == 0
    assert all(r.status == "completed" and r.kind == "spot" for r in records)


def test_a_player_off_for_the_morning_peak_makes_its_spots_good_in_the_afternoon(files, tmp_path):
    faults = {"players": [{"player": "w-001", "offline": [{"from": at(DAY1, "07:30"), "to": at(DAY1, "11:30")}]}]}
    findings, rollups, records, _ = run(files, tmp_path, faults)
    day = rollups[("w-001", DAY1)]
    assert day.completed_in_peak == 10 and day.makegoods > 0
    makegoods = [r for r in records if r.player_id == "w-001" and r.kind == "makegood"]
    assert makegoods and all(r.started_at >= datetime.fromisoformat(at(DAY1, "14:00")) for r in makegoods)
    assert findings.compliant == findings.screen_days == 6


def test_a_player_off_all_day_is_short_and_the_ledger_says_offline(files, tmp_path):
    faults = {"players": [{"player": "w-002", "offline": [{"from": at(DAY1, "06:00"), "to": at(DAY1, "23:00")}]}]}
    findings, rollups, _, _ = run(files, tmp_path, faults)
    day = rollups[("w-002", DAY1)]
    assert (day.completed_in_peak, day.cause) == (0, "offline")
    assert rollups[("w-002", DAY2)].completed_in_peak == 10
    assert findings.screen_days == 6 and findings.compliant == 5
    assert findings.online == 5 and findings.online_compliant == 5  # the day off is not counted as online
    assert findings.causes == {"offline": 1} and not findings.mismatches


def test_failed_downloads_leave_the_spots_missed_for_media_and_the_ledger_says_media_missing(files, tmp_path):
    faults = {"players": [{"player": "w-003",
                           "download_failures": [{"from": at(DAY1, "00:00"), "to": at(DAY1, "23:00")}]}]}
    findings, rollups, records, journals = run(files, tmp_path, faults)
    day = rollups[("w-003", DAY1)]
    assert (day.completed_in_peak, day.cause) == (0, "media_missing")
    assert any(r.player_id == "w-003" and r.status == "missed" and r.reason == "media not cached" for r in records)
    assert rollups[("w-003", DAY2)].completed_in_peak == 10
    assert not findings.mismatches and journals["backlog"] == 0


def test_downloads_that_work_again_before_the_last_peak_ends_make_the_day_good(files, tmp_path):
    faults = {"players": [{"player": "w-003",
                           "download_failures": [{"from": at(DAY1, "00:00"), "to": at(DAY1, "15:00")}]}]}
    findings, rollups, records, _ = run(files, tmp_path, faults)
    assert rollups[("w-003", DAY1)].completed_in_peak == 10
    assert all(r.started_at >= datetime.fromisoformat(at(DAY1, "15:00")) for r in records
               if r.player_id == "w-003" and r.local_date == DAY1 and r.status == "completed")
    assert findings.compliant == findings.screen_days


def test_crashes_lose_no_record_and_double_no_spot(files, tmp_path):
    crashes = [{"at": at(day, moment), "down_for_s": 90} for day in (DAY1, DAY2)
               for moment in ("08:10", "09:47", "14:05", "15:31")]
    findings, rollups, records, journals = run(files, tmp_path, {"players": [{"player": "w-001",
                                                                              "crashes": crashes}]})
    assert journals["appended"] == len(records) and journals["backlog"] == 0
    assert findings.spots_doubled == 0
    assert all(rollups[("w-001", d)].completed_in_peak == 10 for d in (DAY1, DAY2))


def test_records_made_while_the_network_or_the_server_is_away_arrive_afterwards_exactly_once(files, tmp_path):
    faults = {"players": [{"player": "w-002", "network_down": [{"from": at(DAY1, "07:00"), "to": at(DAY1, "17:00")}]}],
              "broker_outages": [{"from": at(DAY2, "08:00"), "to": at(DAY2, "09:00")}],
              "server_downtime": [{"from": at(DAY2, "14:00"), "to": at(DAY2, "16:00")}]}
    findings, rollups, records, journals = run(files, tmp_path, faults)
    assert findings.compliant == findings.screen_days == 6  # players play on without the network
    assert len(records) == len({r.play_id for r in records}) == journals["appended"] == 60
    late = [r for r in records if r.player_id == "w-002" and r.local_date == DAY1]
    assert len(late) == 10 and all(r.received_at >= datetime.fromisoformat(at(DAY1, "17:00")) for r in late)


def test_a_player_whose_clock_runs_ahead_still_delivers_its_day(files, tmp_path):
    findings, rollups, _, _ = run(files, tmp_path, {"players": [{"player": "w-003", "clock_offset_s": 20}]})
    assert findings.compliant == findings.screen_days == 6


def test_a_share_of_the_fleet_is_picked_with_the_seed_and_each_day_gets_its_fault(files, tmp_path):
    faults = {"seed": 3, "shares": [{"share": 0.34, "offline_daily": {"from": "06:00", "to": "23:00"}}]}
    findings, rollups, _, _ = run(files, tmp_path, faults)
    off = sorted(key for key, row in rollups.items() if row.cause == "offline" and key[1] in (DAY1, DAY2))
    assert len(off) == 2 and off[0][0] == off[1][0]  # one player (a third of three), both days
    assert findings.online == 4 and findings.online_compliant == 4 and not findings.mismatches


def test_a_fault_file_naming_an_unknown_player_is_refused_with_the_names(files, tmp_path):
    with pytest.raises(ValueError, match="hn-nowhere"):
        run(files, tmp_path, {"players": [{"player": "hn-nowhere", "clock_offset_s": 1}]})


def test_the_example_fault_file_reads_as_the_acceptance_run_describes_it():
    faults = read_fault_file(EXAMPLES / "faults.yaml")
    assert [(rule.share, bool(rule.offline_daily), bool(rule.crash_daily)) for rule in faults.shares] == [
        (0.10, True, False), (0.02, False, True)]


def test_a_bad_fault_file_is_refused_naming_the_line_and_the_fix(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text("schema: signage.faults/1\nplayers:\n  - player: w-001\n    offline:\n"
                    "      - {from: 2024-08-20T09:00:00+07:00, to: 2024-08-20T08:00:00+07:00}\n", encoding="utf-8")
    with pytest.raises(FileRejected) as refused:
        read_fault_file(path)
    assert "faults.yaml:5" in str(refused.value) and "must come after" in str(refused.value)


def simulate_one_day(files, tmp_path: Path, fault: str, report: Path, *extra: str) -> subprocess.CompletedProcess:
    """`signage simulate --require 0.99` as a process over DAY1, with w-001 under `fault` all day."""
    fleet, campaigns = files
    faults = tmp_path / "faults.yaml"
    faults.write_text(f"""schema: signage.faults/1
players:
  - player: w-001
    {fault}: [{{from: "{at(DAY1, '00:00')}", to: "{at(DAY1, '23:00')}"}}]
""", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "signage_cli", "simulate", "--fleet", str(fleet), "--campaigns",
                           str(campaigns), "--from", DAY1.isoformat(), "--to", DAY1.isoformat(), "--faults",
                           str(faults), "--out", str(report), "--require", "0.99", *extra],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)


def test_signage_simulate_writes_the_compliance_report_and_prints_the_figures(files, tmp_path):
    report = tmp_path / "out" / "compliance.csv"
    done = simulate_one_day(files, tmp_path, "offline", report, "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["screen_days"], figures["compliant"], figures["online_screen_days"]) == (3, 2, 2)
    assert figures["causes"] == {"offline": 1} and figures["records_lost"] == 0
    with report.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert any("w-001" in row for row in rows[1:]) and len(rows) >= 4


def test_signage_simulate_exits_3_when_compliance_falls_below_what_is_required(files, tmp_path):
    done = simulate_one_day(files, tmp_path, "download_failures", tmp_path / "c.csv")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "media_missing 1" in done.stdout
