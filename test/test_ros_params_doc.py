"""docs/parameters.md documents every parameter and is exactly what the schema generates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from semanticsplat_ros.ros.params import NODE_PARAMETERS, camera_parameters
from semanticsplat_ros.ros.recorder_params import RECORDER_PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "parameters.md"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_parameters_doc", ROOT / "tools" / "gen_parameters_doc.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _yaml_default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    if isinstance(value, str):
        return value or '""'
    return repr(value)


def test_parameters_doc_is_the_generated_text():
    assert DOC.read_text() == _generator().render(), (
        "docs/parameters.md differs from the schema: run .venv/bin/python tools/gen_parameters_doc.py"
    )


def test_parameters_doc_lists_every_parameter_with_its_default():
    text = DOC.read_text()
    for spec in (*NODE_PARAMETERS, *camera_parameters("<camera>"), *RECORDER_PARAMETERS):
        rows = [line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |")]
        assert rows, f"docs/parameters.md has no row for parameter {spec.name}"
        default = _yaml_default(spec.default)
        assert any(f"| `{default}` |" in row for row in rows), f"default of {spec.name}"


def test_readme_links_the_parameters_doc():
    assert "docs/parameters.md" in (ROOT / "README.md").read_text()
