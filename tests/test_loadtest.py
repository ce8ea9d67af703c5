"""`signage loadtest` as a process: a small fleet of simulated players against the real Mosquitto and server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.audit import AuditFigures
from loadtest.options import LoadtestOptions
from loadtest.phases import IngestFigures, ReplanFigures, StormFigures
from loadtest.report import LoadtestReport

SIGNAGE = str(Path(sys.executable).parent / "signage")


def run_signage(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAGE_")}
    return subprocess.run([SIGNAGE, *args], cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_option(request) -> list[str]:
    if request.param == "sqlite":
        return []
    return ["--database-url", request.getfixturevalue("postgres").create_database()]


def test_twenty_players_confirm_a_campaign_change_send_proof_of_play_and_survive_a_broker_restart(
        tmp_path, database_option):
    figures_file = tmp_path / "figures.json"
    done = run_signage(["loadtest", "--players", "20", "--processes", "2", "--connect-spread", "0.5",
                        "--ingest-seconds", "3", "--batch", "20",
                        # Speed is the bench's business: no rate to reach, and time targets beyond the phases' own
                        # timeouts (120 s, which only stop a run that hangs), so the run's outcome here is decided by
                        # what it checks (every player in step, nothing lost or doubled), never by the machine's load.
                        "--target-ingest", "0", "--target-replan", "3600", "--target-storm", "3600",
                        "--work-dir", str(tmp_path / "stand"), "--json", str(figures_file), *database_option],
                       tmp_path, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("every player confirmed it", "committed rate", "records/s", "every player in step",
                   "lost / doubled / refused / unacknowledged", "all checks passed"):
        assert figure in done.stdout, done.stdout
    figures = json.loads(figures_file.read_text())
    assert figures["passed"] is True and all(check["passed"] for check in figures["checks"])
    replan, ingest, storm, audit = figures["replan"], figures["ingest"], figures["storm"], figures["audit"]
    assert replan["confirmed"] == 20 and replan["plays_per_day_after"] == replan["plays_per_day_before"] + 1
    assert 0 < replan["plans_stored_s"] <= replan["confirmed_s"]
    assert ingest["records_committed"] > 0 and ingest["committed_per_s"] > 0 and ingest["backlog_after_drain"] == 0
    assert storm["synchronised"] == storm["reconnected"] == 20 and storm["synchronised_s"] > 0
    assert audit["sent"] == audit["rows"] == audit["distinct_rows"] >= ingest["records_sent"] > 0
    assert audit["missing"] == audit["duplicates"] == audit["rejected"] == audit["unacknowledged"] == 0
    assert set(figures["peak_rss_mib"]) >= {"server", "mosquitto", "players-0", "players-1"}


def test_bad_options_are_refused_before_anything_starts(tmp_path):
    done = run_signage(["loadtest", "--players", "0", "--reconnect-min", "5", "--reconnect-max", "1"], tmp_path,
                       timeout=60)
    assert done.returncode == 2
    assert "--players: Input should be greater than or equal to 1" in done.stderr
    assert not any(tmp_path.iterdir())


def report_with(confirmed_s: float | None, rate: float, synchronised_s: float | None, missing: int) -> LoadtestReport:
    options = LoadtestOptions(players=10)
    return LoadtestReport(
        options, replan=ReplanFigures(10, 11, 0.1, 1.0, 2.0, confirmed_s, 10 if confirmed_s else 7, 10),
        ingest=IngestFigures(30, 50, 1, 1000, 900, rate, 1.0, 0, 0),
        storm=StormFigures(1.0, 2.0, synchronised_s, 10, 10 if synchronised_s else 9, 10, 10),
        audit=AuditFigures(sent=1000, distinct_sent=1000, rows=1000 - missing, distinct_rows=1000 - missing,
                           missing=missing, unexpected=0, rejected=0, unacknowledged=0))


def test_each_target_and_the_ledger_check_decides_the_outcome():
    assert report_with(3.0, 6000, 12.0, 0).passed
    failing = {"slow plans": report_with(11.0, 6000, 12.0, 0),
               "plans never confirmed": report_with(None, 6000, 12.0, 0),
               "slow ingest": report_with(3.0, 4999, 12.0, 0),
               "slow storm": report_with(3.0, 6000, 31.0, 0),
               "a lost record": report_with(3.0, 6000, 12.0, 1)}
    for name, report in failing.items():
        assert not report.passed, name
        assert [check.name for check in report.checks() if not check.passed], name
