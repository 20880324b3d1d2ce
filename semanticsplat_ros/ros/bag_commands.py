"""``semanticsplat bag``: recorded ROS 2 bags (MCAP or sqlite3) offline, through ``rosbags``.

    semanticsplat bag to-dataset BAG --out DIR [--params-file YAML] [--node-param NAME:=VALUE]
    semanticsplat bag run BAG --out OUT_BAG [--params-file YAML] [--summary FILE.json]
    semanticsplat bag record-sim --out BAG --seconds S [--width W --height H --rate HZ]

Cameras, topics, ``fixed_frame``, sync and TF tolerances are ``semanticsplat_node``'s parameters
(default: config/bringup.yaml). Bad input (missing, truncated or corrupt bag, missing topics, bad
parameters, an output that exists) prints one line on stderr and exits with 2; unusable sets are
counted in the summary printed at the end.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from semanticsplat_ros.data.sim_rig import SimRigConfig
from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.ros.bag_dataset import KeyframeRule, bag_to_dataset
from semanticsplat_ros.ros.bag_io import BagError, bag_topic, open_bag
from semanticsplat_ros.ros.bag_run import bag_run
from semanticsplat_ros.ros.bag_sets import load_bag_params, parse_depth_topics
from semanticsplat_ros.ros.bag_sim import record_sim
from semanticsplat_ros.ros.bringup import default_params_file
from semanticsplat_ros.ros.params import NodeParams, read_params_file

PROG = "semanticsplat bag"
# What a bad input raises below us; each becomes one line and exit code 2.
_INPUT_ERRORS = (BagError, ValueError, OSError)


def _add_node_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="input bag: a rosbag2 folder, .mcap or .db3 file")
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="semanticsplat_node parameters YAML (default: config/bringup.yaml)",
    )
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a semanticsplat_node parameter (repeatable), e.g. fixed_frame:=map",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", required=True, metavar="COMMAND")
    ds = sub.add_parser("to-dataset", help="keyframes of a bag as a ScanNet-layout dataset")
    _add_node_options(ds)
    ds.add_argument("--out", type=Path, required=True, help="dataset folder (created)")
    ds.add_argument("--scene-prefix", default="bag", help="scene folders <prefix>_<camera>")
    ds.add_argument(
        "--min-translation",
        type=float,
        default=0.05,
        help="a set is a keyframe when the first camera moved this far (m) since the last one",
    )
    ds.add_argument(
        "--min-rotation", type=float, default=5.0, help="... or turned this much (degrees)"
    )
    ds.add_argument("--max-frames", type=int, default=0, help="sets written at most (0: all)")
    ds.add_argument(
        "--depth-topic",
        action="append",
        default=[],
        metavar="CAMERA:=TOPIC",
        help="registered depth of a camera (32FC1 m or 16UC1 mm), written as depth/<i>.png",
    )
    run = sub.add_parser("run", help="the pipeline over every set, outputs to an MCAP bag")
    _add_node_options(run)
    run.add_argument("--out", type=Path, required=True, help="output bag folder (created)")
    run.add_argument("--summary", type=Path, default=None, help="write the summary as JSON")
    run.add_argument(
        "--checkpoint", default=None, help="model checkpoint (overrides model_checkpoint)"
    )
    run.add_argument("--device", default=None, help="auto | cpu | cuda (overrides device)")
    sim = sub.add_parser("record-sim", help="the synthetic sim rig written to an MCAP bag")
    sim.add_argument("--out", type=Path, required=True, help="output bag folder (created)")
    sim.add_argument("--seconds", type=float, required=True, help="seconds of the trajectory")
    sim.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="parameters YAML whose sim_rig section sets the rig (default: config/bringup.yaml)",
    )
    sim.add_argument("--width", type=int, default=None, help="image width (default: the YAML's)")
    sim.add_argument("--height", type=int, default=None, help="image height")
    sim.add_argument("--rate", type=float, default=None, help="frames per second")


def _say(text: str) -> None:
    """A line of the command's report on stdout (ruff's T20 allows print only in commands.py)."""
    sys.stdout.write(text + "\n")


def _params(args: argparse.Namespace) -> NodeParams:
    path = args.params_file or default_params_file()
    return load_bag_params(path, args.node_param)


@contextmanager
def _progress(total: int, unit: str) -> Iterator[Callable[[int], None]]:
    bar = tqdm(total=total or None, unit=unit, file=sys.stderr, disable=None, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def _image_total(bag: Path, params: NodeParams) -> int:
    reader = open_bag(bag)
    try:
        topic = bag_topic(params.cameras[0].image_topic)
        info = reader.topics.get(topic)
        return info.msgcount if info is not None else 0
    finally:
        reader.close()


def _to_dataset(args: argparse.Namespace) -> int:
    params = _params(args)
    depth_topics = parse_depth_topics(args.depth_topic, params.camera_names)
    rule = KeyframeRule(args.min_translation, args.min_rotation, args.max_frames)
    if min(rule.min_translation_m, rule.min_rotation_deg, rule.max_frames) < 0:
        raise ValueError("--min-translation, --min-rotation and --max-frames must be >= 0")
    total = _image_total(args.bag, params)
    with _progress(total * len(params.cameras), "image") as progress:
        result = bag_to_dataset(
            args.bag, args.out, params, rule, args.scene_prefix, depth_topics, progress
        )
    if not result.frames:
        raise BagError(f"no set of {args.bag} could be written: {result.stats.why_none()}")
    _say(f"{result.stats.summary()}; {result.frames} frames per camera in {args.out}")
    for scene in result.scene_dirs:
        _say(f"  {scene}")
    return 0


def _run(args: argparse.Namespace) -> int:
    params = _params(args)
    overrides = {}
    if args.checkpoint:
        overrides["model_checkpoint"] = args.checkpoint
    if args.device:
        overrides["device"] = args.device
    if args.summary is not None and not args.summary.parent.is_dir():
        raise ValueError(f"the folder of --summary {args.summary} does not exist")
    if args.out.exists():
        raise BagError(f"output bag {args.out} exists already; pick another --out")
    total = _image_total(args.bag, params)
    if params.torch_threads > 0:  # as the node's configure does
        torch.set_num_threads(params.torch_threads)
    pipeline = SemanticSplatPipeline(PipelineConfig.from_parameters(params, **overrides))
    with _progress(total * len(params.cameras), "image") as progress:
        summary = bag_run(args.bag, args.out, params, pipeline, progress)
    if args.summary is not None:
        args.summary.write_text(summary.to_json() + "\n")
    if not summary.encoded:
        raise BagError(f"no set of {args.bag} could be encoded: {summary.why_none}")
    _say(summary.line())
    return 0


def _record_sim(args: argparse.Namespace) -> int:
    path = args.params_file or default_params_file()
    values = read_params_file(path, node_name="sim_rig")
    fields = SimRigConfig.__dataclass_fields__
    kwargs = {k: v for k, v in values.items() if k in fields}
    if "cameras" in kwargs:
        kwargs["cameras"] = tuple(kwargs["cameras"])
    for name, value in (("width", args.width), ("height", args.height), ("rate_hz", args.rate)):
        if value is not None:
            kwargs[name] = value
    config = SimRigConfig(**kwargs)
    ticks = max(1, round(args.seconds * config.rate_hz)) if args.seconds > 0 else 0
    with _progress(ticks, "tick") as progress:
        counts = record_sim(args.out, args.seconds, config, progress=progress)
    _say(f"wrote {sum(counts.values())} messages on {len(counts)} topics to {args.out}")
    for topic, n in sorted(counts.items()):
        _say(f"  {topic}: {n}")
    return 0


def run(args: argparse.Namespace) -> int:
    command = {"to-dataset": _to_dataset, "run": _run, "record-sim": _record_sim}
    try:
        return command[args.bag_command](args)
    except _INPUT_ERRORS as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"{PROG} {args.bag_command}: error: {message}\n")
        return 2
