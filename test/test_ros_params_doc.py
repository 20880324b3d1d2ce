"""README documents every node parameter (the table must follow the schema)."""

from __future__ import annotations

from pathlib import Path

from semanticsplat_ros.ros.params import NODE_PARAMETERS, camera_parameters

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_parameter_with_its_default():
    text = README.read_text()
    for spec in (*NODE_PARAMETERS, *camera_parameters("<camera>")):
        rows = [line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |")]
        assert rows, f"README has no row for parameter {spec.name}"
        default = spec.default if isinstance(spec.default, str) else repr(spec.default)
        assert f"| {default or chr(34) * 2} |" in rows[0], f"README default of {spec.name}"
