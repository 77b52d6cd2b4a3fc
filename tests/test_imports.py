"""Data flows one way: no import cycle among the modules of gpt_core and playground (imports
inside functions count too), and the engine imports nothing of the app or of gradio."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gpt_core", "playground")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports: `from pkg import sub` names pkg.sub when that is a
    module, else pkg itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # a name inside a module: the module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        path.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_the_walk_sees_the_package_s_imports():
    g = graph()
    assert "gpt_core.gpt2.download" in g["gpt_core.gpt2.release"]
    assert "gpt_core.model" in g["gpt_core.gpt2.cache"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_the_project():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def top_level_imports(path: Path) -> set[str]:
    """The packages a file imports by absolute name (its relative imports are its own)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            roots.add((node.module or "").split(".")[0])
    return roots


def test_the_engine_imports_nothing_of_the_app_or_gradio():
    for name, path in modules().items():
        if name.startswith("gpt_core"):
            roots = top_level_imports(path)
            assert not {"playground", "gradio", "gradio_client", "app"} & roots, f"{name} imports {roots}"


def test_tests_import_nothing_from_benchmarks():
    # The launcher, the students and the load runs are test support (tests/*.py) that
    # benchmarks/ imports, never the other way round.
    for path in sorted((ROOT / "tests").glob("*.py")):
        assert "benchmarks" not in top_level_imports(path), f"tests/{path.name} imports from benchmarks/"


LEAF = ("download", "fetch", "verified")  # gpt_core/gpt2/: the HTTP, retry and verification leaf


@pytest.mark.parametrize("module", LEAF)
def test_the_download_leaf_imports_only_the_standard_library(module):
    tree = ast.parse((ROOT / "gpt_core" / "gpt2" / f"{module}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and node.module in LEAF, f"gpt_core/gpt2/{module}.py imports .{node.module}"
        elif isinstance(node, ast.ImportFrom):
            assert node.module.split(".")[0] in {"__future__", "dataclasses", "http", "pathlib", "typing", "urllib"}
        elif isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= {
                "contextlib", "errno", "fcntl", "hashlib", "json", "os", "re", "socket", "time", "urllib"}


# Small files of one job (nanoGPT's ~300 lines): past this a module is doing two things.
MAX_MODULE_LINES = 400


def test_no_module_is_long():
    files = {**modules(), "app": ROOT / "app.py"}
    long = {name: n for name, path in files.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
