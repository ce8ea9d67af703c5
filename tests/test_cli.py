"""The `signage` command as a user runs it: a real process, real files, exit codes and messages."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CAMPAIGN_FILE, FLEET_FILE

SIGNAGE = [str(Path(sys.executable).parent / "signage")]


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SIGNAGE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_help_lists_every_verb_with_a_description():
    result = subprocess.run([*SIGNAGE, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for verb in ("fleet", "campaign", "db", "server", "demo"):
        assert any(line.strip("│ ").startswith(verb + " ") for line in result.stdout.splitlines()), verb


def test_fleet_import_reports_counts_as_json_and_a_second_run_changes_nothing(cli_env):
    first = run(cli_env, "fleet", "import", str(FLEET_FILE), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"]["screens"]["created"] >= 60
    second = json.loads(run(cli_env, "fleet", "import", str(FLEET_FILE), "--json").stdout)
    assert second["changed"] is False


def test_a_bad_fleet_file_exits_2_with_the_line_and_fix_on_stderr(cli_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: signage.fleet/1\norganisations:\n  - {id: hn, name: HN, kind: metropolis}\n")
    result = run(cli_env, "fleet", "import", str(bad))
    assert result.returncode == 2
    assert f"{bad}:3: organisations[0].kind" in result.stderr
    assert "Fix: use one of" in result.stderr
    assert "nothing was changed" in result.stderr


def test_a_bad_file_with_json_prints_the_problems_as_json(cli_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: signage.fleet/1\nsites:\n  - {id: s1, name: S, kind: office, organisation: ghost}\n")
    result = run(cli_env, "fleet", "import", str(bad), "--json")
    assert result.returncode == 2
    answer = json.loads(result.stdout)
    assert answer["ok"] is False
    assert answer["problems"][0]["path"] == "sites[0].organisation"
    assert answer["problems"][0]["line"] == 3


def test_campaign_import_then_list_shows_the_campaign(cli_env):
    assert run(cli_env, "fleet", "import", str(FLEET_FILE)).returncode == 0
    imported = run(cli_env, "campaign", "import", str(CAMPAIGN_FILE))
    assert imported.returncode == 0, imported.stderr
    listed = json.loads(run(cli_env, "campaign", "list", "--json").stdout)
    assert [(c["id"], c["plays_per_day"], c["end_date"]) for c in listed] == [("ihanoi-2024", 10, "2024-10-10")]


def test_fleet_export_writes_a_file_that_imports_back_unchanged(cli_env, tmp_path):
    run(cli_env, "fleet", "import", str(FLEET_FILE))
    exported = tmp_path / "export.yaml"
    assert run(cli_env, "fleet", "export", "--out", str(exported)).returncode == 0
    again = json.loads(run(cli_env, "fleet", "import", str(exported), "--json").stdout)
    assert again["changed"] is False


def test_a_bad_setting_is_named_with_the_variable_to_fix(cli_env):
    result = run({**cli_env, "SIGNAGE_TIMEZONE": "Asia/Hanoi_City"}, "db", "upgrade")
    assert result.returncode == 2
    assert "timezone" in result.stderr and "Asia/Ho_Chi_Minh" in result.stderr
