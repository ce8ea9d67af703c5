"""The player stays installable on a screen PC: no server code, no server packages."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO

SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "jinja2", "apscheduler", "psycopg",
                   "argon2", "multipart")
SERVER_CODE = ("campaigns", "media", "scheduler", "signage.db")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_player_package_imports_no_server_code():
    offenders = []
    for path in sorted((REPO / "player").rglob("*.py")):
        for name in imported_modules(path):
            if any(name == code or name.startswith(code + ".") for code in SERVER_CODE):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


WEB_CODE = ("fastapi", "starlette", "scheduler.web")
DOMAIN_PACKAGES = ("campaigns", "media")


def test_the_domain_packages_import_no_web():
    """campaigns/ and media/ know nothing of HTTP: the web layer is scheduler/web/, over the kernel's errors."""
    offenders = []
    for package in DOMAIN_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for name in imported_modules(path):
                if any(name == web or name.startswith(web + ".") for web in WEB_CODE):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_the_boundary_check_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from scheduler.database import open_database\nimport campaigns.models as m\n")
    assert {"scheduler.database", "campaigns.models"} <= imported_modules(sample)


def test_the_core_install_does_not_require_server_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"]).lower()
    assert [p for p in SERVER_PACKAGES if p in core] == []
    assert "server" in project["optional-dependencies"]


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def run_without_server_packages(code: str) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=set(SERVER_PACKAGES)) + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_the_player_and_kernel_import_without_server_packages():
    modules = ["player", "signage", "signage.config", "signage.clock", "signage.errors", "signage.cli"]
    modules += [f"player.{p.stem}" for p in (REPO / "player").glob("*.py") if p.stem != "__init__"]
    if (REPO / "signage" / "protocol.py").exists():
        modules.append("signage.protocol")
    result = run_without_server_packages("import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules))
    assert result.returncode == 0, result.stderr


def test_the_cli_works_without_server_packages_and_says_what_a_server_verb_needs():
    helped = run_without_server_packages("import sys; sys.argv = ['signage', '--help']\n"
                                         "from signage.cli import main; main()")
    assert helped.returncode == 0, helped.stderr
    refused = run_without_server_packages("import sys; sys.argv = ['signage', 'db', 'upgrade']\n"
                                          "from signage.cli import main; main()")
    assert refused.returncode == 1
    assert "pip install 'hanoi-signage[server]'" in refused.stderr
