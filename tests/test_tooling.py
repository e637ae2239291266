"""The project's own hygiene, enforced by CI: ruff over everything, mypy over all of src/,
every test file collected by the README's test command, and an acyclic package graph."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    res = subprocess.run(
        ["ruff", "check", "src", "tests", "bench", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean_on_all_of_src() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "src"], cwd=ROOT, capture_output=True, text=True
    )
    if "No module named mypy" in res.stderr:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    assert res.returncode == 0, res.stdout + res.stderr


def _readme_test_command() -> list[str]:
    """The test command as README.md writes it, so this test follows the README."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^python3 -m pytest[^\n]*$", text, re.M)
    assert m, "README.md has no `python3 -m pytest ...` test command"
    return m.group(0).split()[1:]


def test_the_readme_test_command_collects_every_test_file() -> None:
    """pytest skips folders named build, dist, venv, node_modules or starting with a dot
    without a word; a test file it never collects has proved nothing."""
    args = [a for a in _readme_test_command() if a != "-q"]
    res = subprocess.run(
        [sys.executable, *args, "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    collected = {line.split("::")[0] for line in res.stdout.splitlines() if "::" in line}
    on_disk = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if "ctx" not in p.relative_to(ROOT).parts
    }
    missing = sorted(on_disk - collected)
    assert not missing, f"test files the README's command never runs: {missing}"


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path, module: str) -> set[str]:
    """Every slimage module that PATH imports, at module level or inside a function:
    a lazy import is still a dependency."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return {m for m in found if m == "slimage" or m.startswith("slimage.")}


def test_the_package_graph_is_acyclic() -> None:
    """Subpackages form layers (oci below layers below store ...); a cycle means two of
    them are really one, or a helper lives in the wrong place."""
    src = ROOT / "src"
    graph: dict[str, set[str]] = {}
    for path in (src / "slimage").rglob("*.py"):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        module = ".".join(parts)
        me = _package_of(module)
        for dep in _imports(path, module):
            if dep != "slimage" and _package_of(dep) != me:
                graph.setdefault(me, set()).add(_package_of(dep))
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, f"package cycles: {cycles}"
    assert len(graph) >= 10, "the import scan found too few packages to mean anything"


def test_the_architecture_page_names_every_package_and_module_it_points_at() -> None:
    """docs/architecture.md must stay true: every package exists in it, and every module
    it names in backticks exists in the tree."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    src = ROOT / "src" / "slimage"
    packages = sorted(p.name for p in src.iterdir() if (p / "__init__.py").exists())
    missing = [name for name in packages if f"`{name}/`" not in page]
    assert not missing, f"docs/architecture.md does not describe: {missing}"
    named = set(re.findall(r"`([a-z_]+)\.py`", page))
    modules = {p.stem for p in src.rglob("*.py")}
    stale = sorted(named - modules)
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
