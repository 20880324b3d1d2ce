"""Write docs/parameters.md from the parameter schema (the ParamSpec lists), so it cannot drift.

    .venv/bin/python tools/gen_parameters_doc.py           # rewrite docs/parameters.md
    .venv/bin/python tools/gen_parameters_doc.py --check   # exit 1 when the file is out of date

test/test_ros_params_doc.py asserts the committed file equals ``render()``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from semanticsplat_ros.ros.params import NODE_NAME, NODE_PARAMETERS, ParamSpec, camera_parameters
from semanticsplat_ros.ros.recorder_params import RECORDER_NODE_NAME, RECORDER_PARAMETERS

DOC = Path(__file__).resolve().parent.parent / "docs" / "parameters.md"
CAMERA = "<camera>"
"""Placeholder camera name of the per-camera parameters."""

# Words with a <placeholder> would vanish in rendered Markdown (taken for HTML): set them as code.
_PLACEHOLDER_WORD = re.compile(r"(?<![`\w])([~/\w.:]*<[a-z_]+>(?:[\w/]+|\.(?=\w)|<[a-z_]+>)*)")

HEADER = """# Parameters

Generated from the parameter schema (`semanticsplat_ros/ros/params.py`, the recorder's list in
`semanticsplat_ros/ros/recorder_params.py`) by `.venv/bin/python tools/gen_parameters_doc.py`; a test
fails when this file and the schema differ. Every parameter is declared with a descriptor (type,
range, allowed values): `ros2 param describe <node> <name>` shows the same text. Read-only
parameters are read once when the node is configured; the others may be set while it runs.
Floats must be written with a decimal point (ROS does not cast an int to a double).
"""


def default_text(spec: ParamSpec) -> str:
    """A parameter's default as written in a parameters YAML (the table shows it as code)."""
    value = spec.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    if isinstance(value, str):
        return value or '""'
    return repr(value)


def _range_text(spec: ParamSpec) -> str:
    if spec.choices:
        return ", ".join(f"`{c}`" for c in spec.shown_choices())
    if spec.low is None and spec.high is None:
        return ""
    low = "-inf" if spec.low is None else repr(spec.low)
    high = "inf" if spec.high is None else repr(spec.high)
    return f"[{low}, {high}]"


def _meaning(spec: ParamSpec) -> str:
    text = _PLACEHOLDER_WORD.sub(r"`\1`", spec.description).replace("|", "\\|")
    return f"{text} (read-only)" if spec.read_only else text


def table(specs: Iterable[ParamSpec]) -> str:
    """A Markdown table of ``specs``: name, type, default, range or choices, meaning."""
    lines = [
        "| parameter | type | default | range / choices | meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        lines.append(
            f"| `{spec.name}` | {spec.kind} | `{default_text(spec)}` | {_range_text(spec)} "
            f"| {_meaning(spec)} |"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole of docs/parameters.md."""
    cameras = camera_parameters(CAMERA)
    return "\n".join(
        [
            HEADER,
            f"## `{NODE_NAME}`",
            "",
            "Set in `config/bringup.yaml` (copy it for your robot). Per camera named in `cameras`:",
            "",
            table(cameras),
            "The node's own parameters:",
            "",
            table(NODE_PARAMETERS),
            f"## `{RECORDER_NODE_NAME}` (`semanticsplat_record`)",
            "",
            "Records synchronised, posed keyframes in the ScanNet layout (docs/training.md). Its"
            " cameras take the same two per-camera parameters as the node's.",
            "",
            table(RECORDER_PARAMETERS),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run tools/gen_parameters_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
