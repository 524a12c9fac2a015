"""The shape of the code: three floors, no import circles, small modules, public errors."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("balance", "losses", "pipelines")
MODULES = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
           for package in PACKAGES for p in sorted((ROOT / package).glob("*.py"))}


def imports(path: pathlib.Path) -> set[str]:
    """Our modules that ``path`` imports anywhere (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES}
    return found


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def test_no_module_imports_a_module_that_imports_it_back():
    # Package __init__ files only re-export their modules; they are left out.
    graph = {a: {b for b in GRAPH[a] if b not in PACKAGES} for a in GRAPH if a not in PACKAGES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    circles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if reaches(b, a, {b}))
    assert not circles


def test_lower_floors_do_not_import_higher_ones():
    floor = {"balance": 0, "losses": 1, "pipelines": 2}
    upward = sorted(f"{a} -> {b}" for a in GRAPH for b in GRAPH[a]
                    if floor[b.split(".")[0]] > floor[a.split(".")[0]])
    assert not upward


def test_private_error_module_is_not_used_outside_balance():
    users = sorted(a for a in GRAPH if "balance._errors" in GRAPH[a] and not a.startswith("balance"))
    assert not users


def test_modules_are_at_most_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long
