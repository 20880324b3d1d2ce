"""The ``semanticsplat`` command.

Each subcommand lives in the module that owns the capability and is imported only when it is run
(so ``semanticsplat --help`` stays fast and never imports torch or rclpy). A command module
exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "make-data": Command(
        "semanticsplat_ros.data.commands", "write a synthetic dataset (ScanNet layout)"
    ),
    "contact-sheet": Command(
        "semanticsplat_ros.data.contact_sheet", "PNG of RGB / depth / labels / instances of scenes"
    ),
    "train": Command("semanticsplat_ros.train.commands", "train the model (stage 0, 1 or 2)"),
    "train-teachers": Command(
        "semanticsplat_ros.teachers.commands", "train the tiny default teachers"
    ),
    "check-teachers": Command(
        "semanticsplat_ros.teachers.check", "load SAM + language teachers, run one view through"
    ),
    "cache-teachers": Command(
        "semanticsplat_ros.teachers.cache_command", "teacher features of a dataset, cached once"
    ),
    "eval": Command(
        "semanticsplat_ros.real.commands",
        "evaluate on held-out scenes (paper tables) or real images (--real middlebury)",
    ),
    "export-ply": Command("semanticsplat_ros.export", "write a scene's semantic Gaussians as PLY"),
    "demo": Command(
        "semanticsplat_ros.ros.demo", "the main job: rig + node + services -> out/demo"
    ),
    "bringup": Command("semanticsplat_ros.ros.bringup", "start the ROS graph without ros2 launch"),
    "bag": Command(
        "semanticsplat_ros.ros.bag_commands",
        "ROS 2 bags offline: to-dataset, run (pipeline -> MCAP), record-sim",
    ),
    "bench": Command(
        "semanticsplat_ros.bench", "benchmarks (render, data, model, node, eval, bag, viewer, all)"
    ),
    "view": Command("semanticsplat_ros.viewer.commands", "serve a scene or map PLY in the browser"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: semanticsplat COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run `semanticsplat COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from semanticsplat_ros import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"semanticsplat: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if exc.name and command.module.startswith(exc.name):
            print(
                f"semanticsplat: command {name!r} is not available in this build", file=sys.stderr
            )
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"semanticsplat {name}", description=command.help)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        # Bad input from the user: a clear one-line error, no traceback.
        print(f"semanticsplat {name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
