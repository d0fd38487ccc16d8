"""The layer rules are executable: lint-imports keeps them, and breaks on an upward import."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DemoCache
from voronka.demo import DemoOptions

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT_IMPORTS.exists():
        pytest.skip("lint-imports is not installed next to this Python (pip install import-linter)")


@pytest.mark.usefixtures("lint_available")
def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.usefixtures("lint_available")
@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("analysis/funnel/report.py", "voronka.ingest.importers", "Faces over content"),
        ("ingest/connectors/base.py", "voronka.analysis.funnel.report", "Faces over content"),
        ("crm/deals.py", "voronka.web.app", "Faces over content"),
        ("models.py", "voronka.crm.accounts", "The store and the shared kernel"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, forbidden: str, contract: str) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "voronka", src / "voronka", ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "voronka" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\nimport {forbidden}  # noqa\n", encoding="utf-8")
    result = _lint(src, tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1, result.stdout
    assert broken[0].startswith(contract)


def test_the_command_line_entry_point_loads_nothing_heavy() -> None:
    """``voronka --help`` must start at once: the command modules load the library when they run."""
    heavy = ("sqlalchemy", "pydantic", "pydantic_settings", "rich", "numpy", "scipy", "alembic", "openpyxl",
             "xlsxwriter", "httpx", "fastapi", "babel")  # fmt: skip
    code = f"import sys, voronka.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    # Printing the help loads nothing heavy either (Typer's Rich help renderer alone took 0.15 s).
    code = (
        "import sys\nfrom voronka.cli import app\ntry:\n    app(['--help'], prog_name='voronka')\n"
        f"except SystemExit:\n    print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "funnel" in result.stdout
    assert result.stderr.strip() == "[]"


def test_a_sqlite_report_loads_no_other_dialect_and_no_migrations(demo_cache: DemoCache) -> None:
    """A report on the embedded default loads what it reads with: a ``postgresql_*`` argument in the
    models once imported the PostgreSQL dialect at every start (60 ms), Alembic would cost 0.2 s."""
    probe = (
        "sorted(m for m in sys.modules if m.split('.')[:3] == ['sqlalchemy', 'dialects', 'postgresql']"
        " or m.split('.')[0] in ('alembic', 'psycopg'))"
    )
    assert _funnel_then(demo_cache, probe) == "[]"


def test_a_report_command_loads_no_pydantic(demo_cache: DemoCache) -> None:
    """pydantic is the web app's: the command line's settings are a dataclass, and Typer is kept
    below 0.29, which built a pydantic TypeAdapter per option (0.05 s and more of every command)."""
    probe = "sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_settings', 'pydantic_core'))"
    assert _funnel_then(demo_cache, probe) == "[]"


@pytest.mark.parametrize(("command", "title"), [("funnel", "Funnel «"), ("stats", "Statistics «"), ("diagnose", "")])
def test_a_report_command_loads_no_orm(demo_cache: DemoCache, command: str, title: str) -> None:
    """Report commands read through the Core tables of ``voronka.schema``: the ORM and its mapped
    classes (a third of a command's start-up) load only where a service writes."""
    probe = "sorted(m for m in sys.modules if m.split('.')[:2] == ['sqlalchemy', 'orm'] or m == 'voronka.models')"
    assert _funnel_then(demo_cache, probe, command, title) == "[]"


def _funnel_then(demo_cache: DemoCache, probe: str, command: str = "funnel", title: str = "Funnel «") -> str:
    """``voronka funnel`` (or another ``command``) on a small demo in a fresh interpreter, as the
    console script runs it; then ``probe`` (an expression) evaluated there, as printed, just before
    the report ends the process."""
    database = demo_cache.file(DemoOptions(leads=60, seed=3), "UTC")
    code = (
        "import sys\nfrom voronka.cli import main\n"
        "app = sys.modules['voronka.cli.app']  # the package's `app` is the Typer application\n"
        "end = app._end_without_teardown\n"
        f"def probe_then_end():\n    print({probe}, file=sys.stderr)\n    end()\n"
        "app._end_without_teardown = probe_then_end\n"
        f"sys.argv = ['voronka', '--db', 'sqlite:///{database}', '{command}']\nmain()"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    assert title in result.stdout, result.stdout
    assert "Мебель на заказ" in result.stdout, result.stdout
    return result.stderr.strip()


def _ending_of(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """``voronka`` with ``arguments`` in a fresh interpreter that says on stderr when its teardown runs."""
    code = (
        "import atexit, sys\natexit.register(lambda: print('teardown', file=sys.stderr))\n"
        f"from voronka.cli import main\nsys.argv = ['voronka', *{arguments!r}]\nmain()"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("command", ["funnel", "stats", "diagnose"])
def test_a_report_ends_without_the_interpreter_teardown(demo_cache: DemoCache, command: str) -> None:
    """A report that only read ends as soon as its output is flushed (0.01 s of its run was the
    interpreter freeing every module); the output is whole and the exit code says success."""
    database = demo_cache.file(DemoOptions(leads=60, seed=3), "UTC")
    ended = _ending_of(["--lang", "en", "--db", f"sqlite:///{database}", command, "--format", "json"])
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)
    assert "teardown" not in ended.stderr


def test_a_failed_report_or_a_write_ends_the_usual_way(demo_cache: DemoCache, tmp_path: Path) -> None:
    """Only a report that succeeded skips the teardown: an error, and every command that writes,
    end as Python always ends (what they registered to run at exit runs)."""
    database = demo_cache.file(DemoOptions(leads=60, seed=3), "UTC")
    failed = _ending_of(["--lang", "en", "--db", f"sqlite:///{database}", "funnel", "--format", "xml"])
    assert failed.returncode != 0
    assert "Error:" in failed.stderr
    assert "teardown" in failed.stderr
    wrote = _ending_of(["--lang", "en", "--db", f"sqlite:///{tmp_path / 'new.db'}", "init", "--stages", "Lead,Won"])
    assert wrote.returncode == 0, wrote.stderr
    assert "teardown" in wrote.stderr


def test_help_lists_every_command_without_loading_one() -> None:
    """The top level builds only the command that runs; its help is read from the command table."""
    code = (
        "import sys\nfrom voronka.cli import app\ntry:\n    app(['--help'], prog_name='voronka')\n"
        "except SystemExit:\n    print(sorted(m for m in sys.modules if m.endswith('_cmd')), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == "[]"
    assert "hypothesis  Hypotheses: a change at one step, tested on two arms of deals." in result.stdout


QUERY_CALLS = re.compile(r"\bselect\(|\b(?<!request\.)session\.(?:get|scalars?|execute|add|delete)\(")


@pytest.mark.parametrize("layer", ["web", "cli"])
def test_the_faces_hold_no_query(layer: str) -> None:
    """Routes and commands call library services for every read and write: no SQLAlchemy query."""
    folder = Path(__file__).parents[1] / "src" / "voronka" / layer
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(folder.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if QUERY_CALLS.search(line)
    ]
    assert found == []


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    """No import circles (docs/architecture.md): a module and a module it imports at its top never
    both import each other, directly or through others. A package may import its own submodules."""
    import ast
    from pathlib import Path

    import voronka

    root = Path(voronka.__file__).parent.parent
    graph: dict[str, set[str]] = {}
    for path in (root / "voronka").rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("voronka"):
                imported.add(str(node.module))
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("voronka")}
        graph[module] = {m for m in imported if not m.startswith(module + ".")}  # its own submodules

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            for nxt in graph.get(current, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    circles = sorted((a, b) for a, bs in graph.items() for b in bs if not a.startswith(b + ".") and reaches(b, a))
    assert circles == []


def test_a_report_with_its_output_closed_still_ends_well(demo_cache: DemoCache) -> None:
    """Started with standard output closed (``>&-``), Python has no ``sys.stdout``: the report
    ends without a traceback and says success, as before it ended early."""
    database = demo_cache.file(DemoOptions(leads=60, seed=3), "UTC")
    code = f"import sys\nsys.argv = ['voronka', '--db', 'sqlite:///{database}', 'funnel', '--format', 'json']\n"
    code += "from voronka.cli import main\nmain()"
    ended = subprocess.run(  # standard output closed in the child before Python starts
        [sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1)
    )
    assert ended.returncode == 0, ended.stderr
    assert "Traceback" not in ended.stderr
