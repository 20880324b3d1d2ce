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
    "eval": "semanticsplat_ros.eval.benchmark",
    "bag": "semanticsplat_ros.ros.bag_bench",
    "viewer": "semanticsplat_ros.viewer.benchmark",
    "train": "semanticsplat_ros.train.benchmark",
}

TIMED = ("node",)
"""Benchmarks that run for a fixed time, which ``--duration`` sets."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="which benchmark")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", type=Path, default=None, help="write <name>.json files here")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke tests")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="node only: seconds measured (default 120; 20 with --quick)",
    )
    parser.add_argument(
        "--sam", default=None, help="train only: SAM teacher spec (default: random-weight vit_b)"
    )
    parser.add_argument(
        "--language",
        default=None,
        help="train only: language teacher spec (default: random-weight open_clip ViT-B-16)",
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the figures as Markdown here"
    )


def _run_one(name: str, args: argparse.Namespace) -> dict:
    module = importlib.import_module(BENCHMARKS[name])
    teachers = {"sam": args.sam, "language": args.language}
    if any(teachers.values()):
        if name != "train":
            raise ValueError(f"--sam and --language apply to train only, not {name!r}")
        if not all(teachers.values()):
            raise ValueError("give both --sam and --language, or neither")
        return module.benchmark(device=args.device, quick=args.quick, **teachers)
    if args.duration is None:
        return module.benchmark(device=args.device, quick=args.quick)
    if name not in TIMED:
        raise ValueError(f"--duration applies to {', '.join(TIMED)} only, not {name!r}")
    return module.benchmark(device=args.device, quick=args.quick, duration_s=args.duration)


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
    if args.markdown is not None:
        args.markdown.write_text(markdown_report(results, quick=args.quick))
    payload = results[names[0]] if len(names) == 1 else results
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for name, res in results.items():
            print(f"== {name}")
            print(json.dumps(res, indent=2))
    return 0


def machine_description() -> dict[str, str]:
    """What the figures were measured on (CPU model, cores, memory, torch, CUDA device)."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "gpu": gpu,
    }


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + ".")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            continue  # tables of cases are written separately
        else:
            rows.append((name, value))
    return rows


def markdown_report(results: dict[str, dict], quick: bool = False) -> str:
    """BENCHMARKS.md: the machine, then one section per benchmark (scalars and case tables)."""
    lines = ["# Benchmarks", ""]
    lines.append(
        "Written by `semanticsplat bench all --out out/bench --markdown BENCHMARKS.md` "
        "(`make bench`); every figure below comes from that run. Timings are medians after "
        "warm-up; on a shared machine compare them as ratios within one run."
    )
    if quick:
        lines += ["", "**Quick mode: reduced sizes, smoke-test figures only.**"]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine_description().items()]
    for name, res in results.items():
        lines += ["", f"## {name}", ""]
        scalars = _flatten(res)
        if scalars:
            lines += ["| key | value |", "|---|---|"]
            lines += [f"| `{k}` | {_cell(v)} |" for k, v in scalars]
        for key, value in res.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                cols = list(dict.fromkeys(c for row in value for c in row))
                lines += ["", f"`{key}`:", "", "| " + " | ".join(cols) + " |"]
                lines.append("|" + "---|" * len(cols))
                lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in value]
    import torch

    lines += ["", "## GPU", ""]
    if torch.cuda.is_available():
        lines.append("Measured above on the GPU named under Machine (`device: cuda`).")
    else:
        lines.append(
            "Not measured: this run had no GPU. On a CUDA machine `make bench` writes the same "
            "tables with `device: cuda` (gsplat rasterizer backend)."
        )
    lines.append("")
    return "\n".join(lines)
