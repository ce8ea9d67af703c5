"""Each package one room: the player installable on a screen PC (no server code, no server packages), the kernel
importing none of the other packages, the domain no web, and no import circles between modules."""

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


# The player's pure modules decide from what they are given: no disk, no network, no threads, no clock, no playback.
PURE_PLAYER_MODULES = ("player.programme", "player.takeover")
IO_MODULES = ("os", "io", "pathlib", "shutil", "tempfile", "sqlite3", "socket", "ssl", "select", "threading",
              "multiprocessing", "queue", "asyncio", "subprocess", "urllib", "http", "time", "logging", "paho", "vlc",
              "httpx", "signage.clock", "signage.signing", "signage.player_config")


def test_the_players_pure_modules_import_nothing_of_io():
    """programme (what the plan asks for now) and takeover (what the alerts put on the screen now) take the instant
    and what happened as arguments; only the agent's other modules reach the disk, the broker and libVLC."""
    offenders = []
    for module in PURE_PLAYER_MODULES:
        path = REPO / (module.replace(".", "/") + ".py")
        for name in imported_modules(path):
            inside = name.startswith("player.") or name.startswith("signage.")
            allowed = any(name == pure or name.startswith(pure + ".") for pure in (*PURE_PLAYER_MODULES,
                                                                                   "signage.protocol"))
            if any(name == io or name.startswith(io + ".") for io in IO_MODULES) or (inside and not allowed):
                offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_the_agent_only_wires_the_players_rooms_together():
    """What plays, what the alerts show, proof-of-play, commands, plans and statuses each have a module of their
    own; the agent connects them. A long agent is a room growing back into it (issue 17: it was 985 lines)."""
    lines = len((REPO / "player" / "agent.py").read_text(encoding="utf-8").splitlines())
    assert lines < 450, f"player/agent.py has {lines} lines: move the new job into a module of its own"


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


KERNEL_MAY_NOT_IMPORT = ("scheduler", "campaigns", "media", "loadtest", "simulation", "player", "signage_cli")


def test_the_kernel_imports_none_of_the_other_packages():
    """signage/ is what both sides share (settings, clock, errors, protocol, signing, the storage base): it sits at
    the bottom of the graph. The `signage` command is assembled above everything, in signage_cli."""
    offenders = []
    for path in sorted((REPO / "signage").rglob("*.py")):
        for name in imported_modules(path):
            if any(name == other or name.startswith(other + ".") for other in KERNEL_MAY_NOT_IMPORT):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


# -- the module graph ------------------------------------------------------------------------------------------

PROJECT_PACKAGES = ("signage", "signage_cli", "campaigns", "media", "scheduler", "player", "loadtest", "simulation")


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(nodes, module: str, is_package: bool):
    """The names of every import among `nodes` and inside them, at the top or in a function, relative ones made
    absolute; what is imported under `if TYPE_CHECKING:` only is left out (it never runs)."""
    for node in nodes:
        if _type_checking_only(node):
            yield from _imports(node.orelse, module, is_package)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imports(ast.iter_child_nodes(node), module, is_package)


def module_graph(root: Path = REPO, packages=PROJECT_PACKAGES) -> dict[str, set[str]]:
    """Each module of the project's packages (migrations left out) and the project modules it imports."""
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path

    def project_module(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = {project_module(name) for name in _imports(tree.body, module, path.name == "__init__.py")}
        graph[module] = {name for name in found if name is not None and name != module}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The graph's strongly connected components of more than one module (Tarjan, without recursion)."""
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    members = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.add(member)
                        if member == node:
                            break
                    if len(members) > 1:
                        circles.append(frozenset(members))
    return circles


def test_no_module_imports_itself_back_through_others():
    """An import inside a function closes a circle as well as one at the top: signage/cli.py and
    scheduler/broker_cli.py once imported each other that way, and alert_delivery the MQTT bridge (which imports
    ingest, which imported alert_delivery)."""
    assert [sorted(circle) for circle in import_circles(module_graph())] == []


def test_the_circle_check_sees_a_circle_through_an_import_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n")
    (package / "e.py").write_text("import pkg.d\n")
    graph = module_graph(tmp_path, ("pkg",))
    assert graph["pkg.d"] == set()
    assert import_circles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]


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
    modules = ["player", "signage", "signage.config", "signage.clock", "signage.errors", "signage.console",
               "signage_cli"]
    modules += [f"player.{p.stem}" for p in (REPO / "player").glob("*.py") if p.stem != "__init__"]
    if (REPO / "signage" / "protocol.py").exists():
        modules.append("signage.protocol")
    result = run_without_server_packages("import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules))
    assert result.returncode == 0, result.stderr


def test_the_cli_works_without_server_packages_and_says_what_a_server_verb_needs():
    helped = run_without_server_packages("import sys; sys.argv = ['signage', '--help']\n"
                                         "from signage_cli import main; main()")
    assert helped.returncode == 0, helped.stderr
    refused = run_without_server_packages("import sys; sys.argv = ['signage', 'db', 'upgrade']\n"
                                          "from signage_cli import main; main()")
    assert refused.returncode == 1
    assert "pip install 'hanoi-signage[server]'" in refused.stderr


def test_the_player_install_runs_the_players_own_verb(tmp_path):
    """`signage player run` reaches the player's code (here: its config file refused) with the server's packages
    blocked: the entry point mounts the server's verbs without importing their code."""
    argv = ["signage", "player", "run", "--config", str(tmp_path / "absent.json")]
    ran = run_without_server_packages(f"import sys; sys.argv = {argv!r}\nfrom signage_cli import main; main()")
    assert ran.returncode == 2, ran.stderr
    assert "signage player register" in ran.stderr
