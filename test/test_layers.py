"""The package's layering, read from the source (every import, module- or function-level).

Declared (docs/architecture.md): geometry <- render / model / teachers / data <- train / eval <-
pipeline / mapping <- ros, bag, viewer (and the demo, which runs the ROS graph, lives in ros/).
Inside a declared layer a finer order holds (render and data before model and teachers; train
before eval, whose baseline and teacher protocols use the training losses), so
the import graph has no cycles. A module imports only from a lower rank or from its own package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import semanticsplat_ros

ROOT = Path(semanticsplat_ros.__file__).parent

# Rank of each top-level package or module of semanticsplat_ros (lower ranks are imported by
# higher ones, never the other way; equal ranks of different names never import each other).
RANKS: dict[str, float] = {
    "__init__": 0,
    "geometry": 0,
    "checkpoint": 0,
    "device": 0,
    "render": 1,
    "data": 1,
    "model": 2,
    "teachers": 2,
    "queries": 2,
    "metrics": 2,
    "ply": 2,
    "train": 3,
    "eval": 3.5,
    "visualize": 3,
    "pipeline": 4,
    "pipeline_config": 3.8,
    "mapping": 4,
    "export": 4.5,
    "report": 4.5,
    "real": 4.5,
    "ros": 5,
    "bag": 5,
    "viewer": 4.7,
    "bench": 6,
    "cli": 6,
}
# Entry points dispatch to subcommands lazily (so `semanticsplat --help` stays fast): only they
# may import project modules inside functions.
LAZY_OK_NAMES = {"cli.py", "bench.py", "commands.py", "benchmark.py"}
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "sensor_msgs",
    "geometry_msgs",
    "std_msgs",
    "std_srvs",
    "visualization_msgs",
    "diagnostic_msgs",
    "lifecycle_msgs",
    "tf2_msgs",
    "tf2_ros",
    "semanticsplat_msgs",
    "builtin_interfaces",
}


def _sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "assets" not in p.parts)


def _owner(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(tree: ast.AST):
    """(module name, line, inside a function) for every import in ``tree``."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    inside.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in inside
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno, id(node) in inside


def test_every_top_level_name_has_a_rank():
    owners = {_owner(p) for p in _sources()}
    missing = sorted(owners - set(RANKS))
    assert not missing, f"give these a rank in RANKS (and docs/architecture.md): {missing}"


def test_imports_go_down_the_layers():
    bad = []
    for path in _sources():
        me = _owner(path)
        for module, line, _ in _imports(ast.parse(path.read_text())):
            parts = module.split(".")
            if parts[0] != "semanticsplat_ros" or len(parts) < 2:
                continue
            other = parts[1]
            if other == me or other not in RANKS or me not in RANKS:
                continue
            if RANKS[other] >= RANKS[me]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} {me} -> {other}")
    assert not bad, "imports going up or across the layers:\n" + "\n".join(bad)


def test_project_imports_inside_functions_only_in_entry_points():
    bad = []
    for path in _sources():
        if path.name in LAZY_OK_NAMES:
            continue
        for module, line, inside in _imports(ast.parse(path.read_text())):
            if inside and module.split(".")[0] == "semanticsplat_ros":
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} {module}")
    assert not bad, "function-level imports of project modules:\n" + "\n".join(bad)


def test_only_ros_imports_ros_packages_and_at_module_top():
    bad = []
    for path in _sources():
        in_ros = _owner(path) == "ros"
        for module, line, inside in _imports(ast.parse(path.read_text())):
            if module.split(".")[0] not in ROS_PACKAGES:
                continue
            if not in_ros or (inside and path.name not in LAZY_OK_NAMES):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} {module}")
    assert not bad, "ROS imports outside ros/ or inside functions:\n" + "\n".join(bad)


def test_the_checks_see_the_package():
    """Guards the checks above against passing on an empty tree."""
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert "pipeline.py" in names and "geometry/projection.py" in names
    assert len(names) > 50
