"""The shape of the code: floors, one-way data flow inside ``pipelines``, no import circle, no job importing
another job, and no module using another module's private names (see docs/architecture.md)."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# balance <- losses <- pipelines <- the demo application.
FLOORS = {"balance": 0, "losses": 1, "pipelines": 2, "rebalance_demo": 3}
# Inside pipelines, data flows one way: shared values, then reading, counting, sampling, the jobs, the command line.
PIPELINES_FLOORS = {"config": 0, "console": 0, "outcome": 0, "progress": 0, "io": 1, "counting": 2, "sampling": 3, "jobs": 4,
                    "cli": 5}
# The command line is where the demo application is started; no library module imports it.
DEMO_STARTER = "pipelines.cli"


def module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


MODULES = {module_name(p): p for package in FLOORS for p in sorted((ROOT / package).rglob("*.py"))}
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imports(tree: ast.AST) -> set[str]:
    """Our modules that a module imports anywhere (also inside functions), by absolute name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES}
    return found


GRAPH = {name: imports(tree) - {name} for name, tree in TREES.items()}


def package(name: str) -> str:
    return name.split(".")[0]


def pipelines_floor(name: str) -> int:
    return PIPELINES_FLOORS[name.split(".")[1]]


def test_every_module_is_in_a_known_place():
    # A new sub-package of pipelines is given its floor above, on purpose.
    unplaced = sorted(n for n in MODULES if package(n) == "pipelines" and n != "pipelines"
                      and n.split(".")[1] not in PIPELINES_FLOORS)
    assert not unplaced


def test_no_import_circle():
    # Package __init__ files only re-export their modules; they are left out.
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    graph = {a: GRAPH[a] - packages for a in GRAPH if a not in packages}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    circles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if reaches(b, a, {b}))
    assert not circles


def test_lower_floors_do_not_import_higher_ones():
    upward = sorted(f"{a} -> {b}" for a in GRAPH for b in GRAPH[a]
                    if FLOORS[package(b)] > FLOORS[package(a)] and not (a == DEMO_STARTER and
                                                                        package(b) == "rebalance_demo"))
    assert not upward


def test_pipelines_library_code_does_not_import_losses():
    users = sorted(f"{a} -> {b}" for a in GRAPH for b in GRAPH[a]
                   if package(a) == "pipelines" and package(b) == "losses")
    assert not users


def test_data_flows_one_way_inside_pipelines():
    inner = [(a, b) for a in GRAPH for b in GRAPH[a]
             if package(a) == package(b) == "pipelines" and "pipelines" not in (a, b)]
    upward = sorted(f"{a} -> {b}" for a, b in inner if pipelines_floor(b) > pipelines_floor(a))
    assert not upward


def job_modules() -> set[str]:
    """The modules of pipelines.jobs that are jobs: they define ``run`` and ``main``."""
    jobs = set()
    for name, tree in TREES.items():
        if name.startswith("pipelines.jobs."):
            functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            if {"run", "main"} <= functions:
                jobs.add(name)
    return jobs


def test_no_job_imports_another_job():
    jobs = job_modules()
    assert jobs >= {"pipelines.jobs.stats", "pipelines.jobs.sample"}
    crossed = sorted(f"{a} -> {b}" for a in jobs for b in GRAPH[a] if b in jobs)
    assert not crossed


def private_imports(name: str, tree: ast.AST) -> list[str]:
    """``from M import _x`` of another module, and private modules of another package.

    A package's private modules (``losses._base``) are for its own modules.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in MODULES:
            for alias in node.names:
                own_module = f"{node.module}.{alias.name}" in MODULES and package(node.module) == package(name)
                if alias.name.startswith("_") and not alias.name.startswith("__") and not own_module:
                    found.append(f"{name}: from {node.module} import {alias.name}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                private = [p for p in module.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
                if module in MODULES and private and package(module) != package(name):
                    found.append(f"{name}: imports {module}, private to {package(module)}")
    return found


def _our_names() -> set[str]:
    """Every name our code defines or sets on ``self``."""
    ours = set()
    for tree in TREES.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                ours.add(node.attr)
            elif isinstance(node, ast.Name):
                ours.add(node.id)
    return ours


OUR_NAMES = _our_names()


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def private_members(name: str, tree: ast.AST) -> list[str]:
    """``x._y`` where ``x`` is not ``self``/``cls``/``super()`` and ``_y`` is one of our names.

    Inside a class, ``other._y`` is allowed for the class's own members (``_y``
    set or read on ``self`` in that class): another instance of the same class.
    """
    found = []

    def visit(node: ast.AST, own: frozenset) -> None:
        if isinstance(node, ast.ClassDef):
            own = own | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
                         and isinstance(n.value, ast.Name) and n.value.id == "self" and _is_private(n.attr)}
        if isinstance(node, ast.Attribute) and _is_private(node.attr) and node.attr in OUR_NAMES:
            owner = node.value
            exempt = (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super")
            if not exempt and node.attr not in own:
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(tree, frozenset())
    return sorted(found)


def test_no_module_imports_another_modules_private_names():
    found = [line for name, tree in TREES.items() for line in private_imports(name, tree)]
    assert not found


def test_no_module_reaches_into_another_objects_private_members():
    found = [line for name, tree in TREES.items() for line in private_members(name, tree)]
    assert not found


def test_the_rules_catch_what_they_forbid():
    # The checks above pass on the code only if they can fail: each is shown a module that breaks it.
    bad = ast.parse("from pipelines.io.readers import _one_per_row\nimport balance.string_counts\n"
                    "from pipelines.jobs.stats import run\nreader._dataset(shard)\n")
    assert private_imports("pipelines.jobs.sample", bad) == [
        "pipelines.jobs.sample: from pipelines.io.readers import _one_per_row"]
    assert private_imports("losses.x", ast.parse("from balance.counting import x\nimport balance._version\n")) == [
        "losses.x: imports balance._version, private to balance"]
    assert private_members("pipelines.jobs.sample", bad) == ["pipelines.jobs.sample:4: reader._dataset"]
    assert "pipelines.jobs.stats" in imports(bad)
