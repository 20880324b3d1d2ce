"""``semanticsplat eval``: the synthetic protocols (``eval.commands``, whose options this
command shares) or, with ``--real``, real images through the pipeline as the node runs it.

    semanticsplat eval --seeds val
    semanticsplat eval --real middlebury --json out/eval/middlebury.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from semanticsplat_ros.eval import commands as synthetic
from semanticsplat_ros.pipeline_config import PipelineConfig
from semanticsplat_ros.real.middlebury import NODE_MODEL, evaluate_middlebury

REAL_DATASETS = ("middlebury",)


def markdown(results: dict[str, Any]) -> str:
    h, w = results["resolution"]
    lines = [
        f"### Real stereo: {results['dataset']} at {w}x{h}",
        "",
        "| method | median rel. error | AbsRel | coverage | seconds |",
        "|---|---|---|---|---|",
    ]
    for name, key in (("ours", "ours"), ("StereoSGBM (OpenCV)", "sgbm")):
        r = results[key]
        lines.append(
            f"| {name} | {r['median_rel']:.3f} | {r['abs_rel']:.3f} | {r['coverage']:.0%}"
            f" | {r['seconds']:.2f} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    synthetic.add_arguments(parser)
    parser.add_argument(
        "--real",
        choices=REAL_DATASETS,
        default=None,
        help="real images instead of synthetic scenes: middlebury = the Motorcycle stereo pair,"
        f" through the pipeline as the node runs it (default checkpoint {NODE_MODEL}, input"
        " 96x72), with OpenCV's StereoSGBM beside it",
    )
    parser.add_argument(
        "--panel",
        type=Path,
        default=Path("out/eval/middlebury.png"),
        help="with --real: the picture of image, truth, ours and SGBM",
    )


def run(args: argparse.Namespace) -> int:
    if args.real is None:
        return synthetic.run(args)
    config = PipelineConfig(
        model_checkpoint=str(args.checkpoint or NODE_MODEL),
        input_width=args.width or PipelineConfig.input_width,
        input_height=args.height or PipelineConfig.input_height,
        device=args.device,
        runtime="torch",
    )
    try:
        results = evaluate_middlebury(config, args.panel)
    except ImportError as exc:  # scikit-image or OpenCV missing: say which to install
        print(f"semanticsplat eval: error: {exc}", file=sys.stderr)
        return 1
    print(markdown(results))
    if "panel" in results:
        print(f"\npanel: {results['panel']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
