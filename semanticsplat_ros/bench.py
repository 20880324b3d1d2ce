"""``semanticsplat bench NAME``: dispatch to the benchmark module owning NAME.

Benchmarks print figures (JSON with ``--json``); they are never timed tests. ``all`` runs every
benchmark and writes one JSON file per benchmark under ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

BENCHMARKS: dict[str, str] = {
    "render": "semanticsplat_ros.render.benchmark",
    "data": "semanticsplat_ros.data.benchmark",
    "model": "semanticsplat_ros.model.benchmark",
    "node": "semanticsplat_ros.ros.benchmark",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="which benchmark")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", type=Path, default=None, help="write <name>.json files here")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke tests")


def _run_one(name: str, args: argparse.Namespace) -> dict:
    module = importlib.import_module(BENCHMARKS[name])
    return module.benchmark(device=args.device, quick=args.quick)


def run(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    results = {}
    for name in names:
        try:
            results[name] = _run_one(name, args)
        except ModuleNotFoundError as exc:
            if args.name != "all":
                raise ValueError(f"benchmark {name!r} is not available: {exc}") from exc
            results[name] = {"error": f"not available: {exc}"}
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.json").write_text(json.dumps(results[name], indent=2) + "\n")
    payload = results[names[0]] if len(names) == 1 else results
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for name, res in results.items():
            print(f"== {name}")
            print(json.dumps(res, indent=2))
    return 0
