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
    # Phú La's head raised it to 15 there (the example file's override), by name as the planner counts it.
    assert [(r["organisation"], r["place"], r["plays_per_day"]) for r in listed[0]["rates"]] == [
        ("hn-hadong-phula", "UBND phường Phú La", 15)]
    # Piped (no terminal), the table is as wide as its cells: nothing cut to fit 80 columns (issue 18, item 6).
    table = run({**cli_env, "COLUMNS": "60"}, "campaign", "list")
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if "ihanoi-2024" in line]
    assert all(cell in row for cell in ("Tuyên truyền ứng dụng iHanoi", "UBND Thành phố Hà Nội", "2024-08-15",
                                        "2024-10-10", "peak"))
    assert "UBND phường Phú La: 15" in table.stdout
    assert "…" not in table.stdout


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


def test_plan_writes_one_file_per_player_and_a_summary(cli_env, tmp_path):
    run(cli_env, "fleet", "import", str(FLEET_FILE))
    run(cli_env, "campaign", "import", str(CAMPAIGN_FILE))
    out = tmp_path / "plans"
    result = run(cli_env, "plan", "--date", "2024-08-20", "--days", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    plans = sorted(p for p in out.glob("*.json") if p.name != "summary.json")
    assert len(plans) == 82
    plan = json.loads((out / "hn-nb-t2-001.json").read_text())
    assert plan["schema"] == "signage.plan/1" and len(plan["spots"]) == 30
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shortfalls"] == []
    assert summary["campaigns"][0]["campaign_id"] == "ihanoi-2024"


def test_a_what_if_plan_from_files_touches_no_database(cli_env, tmp_path):
    out = tmp_path / "plans"
    result = run(cli_env, "plan", "--date", "2024-08-20", "--days", "1", "--out", str(out),
                 "--fleet", str(FLEET_FILE), "--campaigns", str(CAMPAIGN_FILE))
    assert result.returncode == 0, result.stderr
    assert (out / "summary.json").exists()
    data_dir = Path(cli_env["SIGNAGE_DATA_DIR"])
    assert not (data_dir / "signage.db").exists()


def test_plan_exits_3_on_a_shortfall_and_still_writes_the_summary(cli_env, tmp_path):
    heavy = tmp_path / "heavy.yaml"
    text = CAMPAIGN_FILE.read_text(encoding="utf-8").replace("plays_per_day: 10\n", "plays_per_day: 400\n")
    text = text.replace("plays_per_day: 15\n", "plays_per_day: 450\n")
    heavy.write_text(text.replace("file: media/", f"file: {CAMPAIGN_FILE.parent}/media/"), encoding="utf-8")
    out = tmp_path / "plans"
    result = run(cli_env, "plan", "--date", "2024-08-20", "--days", "1", "--out", str(out),
                 "--fleet", str(FLEET_FILE), "--campaigns", str(heavy))
    assert result.returncode == 3, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shortfalls"] and all(s["reason"] == "no capacity" for s in summary["shortfalls"])
    assert "spots missing" in result.stderr


def test_plan_exits_2_on_bad_input(cli_env, tmp_path):
    assert run(cli_env, "plan", "--date", "20/08/2024", "--out", str(tmp_path)).returncode == 2
    assert run(cli_env, "plan", "--out", str(tmp_path), "--fleet", str(FLEET_FILE)).returncode == 2
