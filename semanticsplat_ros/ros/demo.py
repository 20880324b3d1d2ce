"""``semanticsplat demo``: the whole product on the embedded synthetic world -> ``out/demo/``.

    semanticsplat demo --out out/demo                       # the trained model (make demo)
    semanticsplat demo --out /tmp/demo --random-weights     # plumbing only, no checkpoint

What it does, with a progress line per step on stderr:

1. Starts the graph of ``semanticsplat bringup`` (``sim_rig`` with the stereo pair
   ``head_left``/``head_right`` + ``semanticsplat_node``, from ``config/bringup.yaml`` with a few
   overrides) as subprocesses through ``ros.bringup.Graph``, on a private ``ROS_DOMAIN_ID`` with
   ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``.
2. An in-process rclpy client subscribes to the rig's images, camera_info, TF and ground truth
   (``/sim_rig/<camera>/gt_depth``, ``gt_labels``), to the node's depth, labels, semantic cloud
   and Gaussians, and to ``/diagnostics``, and waits for the first *complete* scene: one stamp
   for which every one of those arrived (a timeout names what never did). The graph then runs
   ``--seconds`` longer for rate and latency statistics.
3. Calls ``~/segment_point`` (pixel form on an object of ``head_left`` chosen from the ground
   truth; 3D form at a point of the semantic cloud) and ``~/query_text`` (chair, table, couch,
   bed), timing each round trip; then stops the graph with SIGTERM (always, also on failure).
4. Re-encodes the same frames (same pixels, intrinsics and TF poses) with the pipeline in this
   process, because the node does not publish its feature fields, for the PCA figures and the
   PLY. With ``--random-weights`` this is a differently initialised network than the node's.
5. Writes figures, ``scene.ply``, ``summary.json`` (latencies, depth error and label agreement
   against the ground truth, IoU of each text query with its ground-truth class, cloud size) and
   ``index.md`` (every file with a caption), and prints the summary.

Steps 2-3 are ``ros.demo_client`` (the rclpy part), step 5 ``report`` (pure); this module starts
and stops the graph and encodes in-process.

``--node-param NAME=VALUE`` (repeatable) sets a ``semanticsplat_node`` parameter on top of the
params file, for the node and for the in-process pipeline of step 4 alike (e.g. the teachers:
``--node-param sam_checkpoint=vit_b:/w/sam.pth --node-param
clip_checkpoint=open_clip:ViT-B-16:/w/clip.bin``). VALUE is read as YAML, as ``-p NAME:=VALUE``
is (``0.5`` a float, ``[a, b]`` a list); the overrides are validated with the node's parameter
schema before anything starts. Parameters the demo sets itself are refused (use its flags).

With ``--viewer [PORT]`` the node also serves the browser viewer (its ``viewer_port``), and the
graph keeps running after step 3 until Ctrl-C (or ``--viewer-seconds``) so that it can be
looked at; the figures are written once it stops.

Exit code 0 on success, 1 with a one-line message on failure, 2 for a bad ``--node-param``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from semanticsplat_ros.export import export_scene_ply
from semanticsplat_ros.model.bundled import resolve_model_checkpoint
from semanticsplat_ros.pipeline import (
    CameraFrame,
    EncodedScene,
    PipelineConfig,
    SemanticSplatPipeline,
)
from semanticsplat_ros.report import (
    PLY_NAME,
    Collected,
    ReportSettings,
    format_summary,
    write_report,
)
from semanticsplat_ros.ros.bringup import (
    SIM_RIG_NAME,
    Graph,
    default_params_file,
    environment,
    node_command,
    sim_rig_command,
)
from semanticsplat_ros.ros.demo_client import ClientSettings, DemoError, Progress, collect
from semanticsplat_ros.ros.params import (
    NODE_NAME,
    NodeParams,
    load_params_file,
    read_params_file,
    validate_params,
)
from semanticsplat_ros.visualize import RANDOM_WEIGHTS_HINT, RANDOM_WEIGHTS_LABEL

DEMO_NODE_PARAMS = {
    "random_weights": "use --random-weights",
    "device": "use --device",
    "input_width": "use --input-width",
    "input_height": "use --input-height",
    "model_checkpoint": "use --checkpoint",
    "viewer_port": "use --viewer",
    "publish_gaussians": "the demo reads the node's Gaussians",
    "diagnostics_period_s": "the demo reads the node's diagnostics",
}
"""Node parameters the demo sets itself (``node_overrides``), refused as ``--node-param``."""


class NodeParamError(ValueError):
    """A bad ``--node-param`` (exit code 2)."""


@dataclass
class NodeSetup:
    """The node's parameters: the params file with the ``--node-param`` overrides on top."""

    params_file: Path
    params: NodeParams
    """Validated, overrides included (what the node and the in-process pipeline use)."""
    overrides: list[tuple[str, str]]
    """``--node-param`` as (name, YAML text), for the node's ``-p name:=text``."""


def parse_node_params(items: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """``["NAME=VALUE", ...]`` -> ``{name: (text, value)}`` with ``value`` the text read as YAML
    (as ROS reads ``-p NAME:=VALUE``; ``NAME:=VALUE`` is accepted too). Later items win.
    NodeParamError for a malformed item or a parameter the demo sets itself."""
    out: dict[str, tuple[str, Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.removesuffix(":").strip()
        if not sep or not name:
            raise NodeParamError(f"--node-param {item!r} must look like NAME=VALUE")
        if name in DEMO_NODE_PARAMS:
            raise NodeParamError(
                f"--node-param {name}: the demo sets it itself ({DEMO_NODE_PARAMS[name]})"
            )
        text = text.strip() or "''"
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise NodeParamError(f"--node-param {item!r}: VALUE is not valid YAML") from None
        out[name] = (text, value)
    return out


def node_setup(args: argparse.Namespace) -> NodeSetup:
    """The params file (``--params-file`` or bringup.yaml) and ``--node-param`` on top, checked
    with the node's parameter schema. The file's own problems raise ValueError naming it; those
    the overrides bring (unknown name, bad value) raise NodeParamError, one line."""
    params_file = Path(args.params_file) if args.params_file else default_params_file()
    params = load_params_file(params_file)
    overrides = parse_node_params(args.node_param)
    if overrides:
        values = read_params_file(params_file)
        values.update({name: value for name, (_, value) in overrides.items()})
        try:
            params = validate_params(values)
        except ValueError as exc:
            lines = [line.strip().removeprefix("- ") for line in str(exc).splitlines()]
            problems = lines[1:] if len(lines) > 1 and lines[0].endswith(":") else lines
            raise NodeParamError("--node-param: " + "; ".join(problems)) from None
    pairs = [(name, text) for name, (text, _) in overrides.items()]
    return NodeSetup(params_file, params, pairs)


def node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Parameters of ``semanticsplat_node`` set on top of the params file."""
    params: dict[str, Any] = {
        "random_weights": bool(args.random_weights),
        "device": args.device,
        "input_width": args.input_width,
        "input_height": args.input_height,
        "publish_gaussians": True,
        "diagnostics_period_s": 0.5,
    }
    if args.checkpoint:
        params["model_checkpoint"] = str(resolve_model_checkpoint(args.checkpoint).resolve())
    if args.viewer is not None:
        params["viewer_port"] = args.viewer
    return params


_VIEWER_URL = re.compile(r"viewer at (http://\S+)")


def hold_for_viewer(
    args: argparse.Namespace, graph: Graph, log_path: Path, progress: Progress
) -> None:
    """Keep the graph running for the viewer until Ctrl-C, ``--viewer-seconds`` or a node
    exits; the URL is the one the node logged (a busy port makes it take the next one)."""
    found = _VIEWER_URL.search(log_path.read_text(errors="replace"))
    url = found.group(1) if found else f"http://127.0.0.1:{args.viewer}/"
    until = "Ctrl-C" if args.viewer_seconds is None else f"{args.viewer_seconds:g} s"
    progress(f"viewer at {url} (the graph keeps running until {until})")
    wait_s = args.viewer_seconds if args.viewer_seconds is not None else float("inf")
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and not graph.exited():
            time.sleep(0.2)
    except KeyboardInterrupt:
        progress("Ctrl-C: stopping")


def rig_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Parameters of ``sim_rig`` set on top of the params file."""
    return {
        "width": args.width,
        "height": args.height,
        "scene_seed": args.seed,
        "rate_hz": float(args.rate_hz),
        # Held still (one pre-rendered frame replayed with fresh stamps) unless --moving: the
        # figures then do not depend on which frame the node happened to take.
        "loop_s": 0.0 if args.moving else 1.0 / float(args.rate_hz),
    }


def graph_commands(args: argparse.Namespace, setup: NodeSetup) -> dict[str, list[str]]:
    """Command lines of the node (params file, the demo's settings, then ``--node-param``) and
    of the rig; the sizes on ``args`` must be resolved (``run_graph`` does it)."""
    node_params = [*node_overrides(args).items(), *setup.overrides]
    return {
        NODE_NAME: node_command(setup.params_file, parameters=node_params),
        SIM_RIG_NAME: sim_rig_command(setup.params_file, parameters=rig_overrides(args)),
    }


def run_graph(
    args: argparse.Namespace, out: Path, progress: Progress, setup: NodeSetup
) -> tuple[Collected, NodeParams]:
    """Steps 1-3: start the graph, collect, stop it (always). Returns what was collected and the
    node's parameters (``setup``'s). Sizes not given on the command line are set on ``args``
    from the params file."""
    params_file = setup.params_file
    node_cfg = setup.params
    # Sizes not given on the command line are the params file's.
    rig_cfg = read_params_file(params_file, node_name=SIM_RIG_NAME)
    args.width = args.width or int(rig_cfg.get("width", 256))
    args.height = args.height or int(rig_cfg.get("height", 192))
    args.input_width = args.input_width or node_cfg.input_width
    args.input_height = args.input_height or node_cfg.input_height
    _check_sizes(args)
    cameras = list(node_cfg.camera_names)
    domain_id = args.domain_id if args.domain_id is not None else random.randint(1, 100)
    env = {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "FASTDDS_BUILTIN_TRANSPORTS": os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        "PYTHONUNBUFFERED": "1",
    }
    commands = graph_commands(args, setup)
    log_path = out / "graph.log"
    with log_path.open("w") as log, environment(env):
        graph = Graph(commands, env={**os.environ, **env}, stdout=log, stderr=log)
        progress(
            f"starting {SIM_RIG_NAME} (stereo {args.width}x{args.height} at {args.rate_hz} Hz,"
            f" scene {args.seed}) + {NODE_NAME} (input {args.input_width}x{args.input_height},"
            f" {'RANDOM WEIGHTS' if args.random_weights else 'trained model'}) on ROS_DOMAIN_ID"
            f" {domain_id}; log: {log_path}"
        )
        graph.start()
        collected: Collected | None = None
        try:
            collected = collect(
                _client_settings(args),
                cameras,
                node_cfg.fixed_frame,
                graph,
                domain_id,
                log_path,
                progress,
            )
            if args.viewer is not None:
                hold_for_viewer(args, graph, log_path, progress)
        finally:
            progress("stopping the graph (SIGTERM)")
            codes = graph.stop(signal.SIGTERM, timeout=20.0)
        if collected is not None:
            collected.exit_codes = codes
            bad = {n: c for n, c in codes.items() if c != 0}
            if bad:
                progress(f"warning: nodes exited with {bad} (see {log_path})")
    if collected is None:  # unreachable: collect returned or raised
        raise DemoError("the graph produced nothing")
    return collected, node_cfg


def encode_in_process(
    args: argparse.Namespace, c: Collected, node_cfg: NodeParams
) -> tuple[SemanticSplatPipeline, EncodedScene]:
    """Step 4: the collected frames (same pixels, intrinsics and TF poses) encoded by a pipeline
    in this process, built like the node's."""
    pipeline = SemanticSplatPipeline(pipeline_config(args, node_cfg))
    stamp_s = c.stamp_ns * 1e-9
    frames = [CameraFrame(cam, c.images[cam], c.K[cam], c.c2w[cam], stamp_s) for cam in c.cameras]
    return pipeline, pipeline.encode(frames)


def pipeline_config(args: argparse.Namespace, node_cfg: NodeParams) -> PipelineConfig:
    """The in-process pipeline's config: the node's (teachers, range, classes, ...), with the
    demo's model, device and input size."""
    return PipelineConfig.from_parameters(
        node_cfg,
        model_checkpoint=str(args.checkpoint or ""),
        device=args.device,
        input_width=args.input_width,
        input_height=args.input_height,
        random_weights=args.random_weights,
    )


def write_outputs(
    args: argparse.Namespace, out: Path, c: Collected, node_cfg: NodeParams, progress: Progress
) -> dict[str, Any]:
    """Steps 4-5: in-process encode, ``scene.ply``, then the report; returns the summary."""
    progress("encoding the same frames in-process (feature PCA, PLY)")
    pipeline, scene = encode_in_process(args, c, node_cfg)
    export_scene_ply(pipeline, scene, out / PLY_NAME)
    settings = ReportSettings(
        random_weights=bool(args.random_weights),
        model_checkpoint=str(args.checkpoint or ""),
        scene_seed=args.seed,
        image_size=(args.height, args.width),
        input_size=(args.input_height, args.input_width),
        class_names=tuple(node_cfg.classes),
    )
    return write_report(out, settings, c, scene)


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument(
        "--checkpoint",
        default="",
        help="model: a checkpoint file or a bundled name (small, small_stereo); default: the "
        "params file's model_checkpoint",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="seconds the graph keeps running after the first complete scene (statistics)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help=f"no checkpoint: random network ({RANDOM_WEIGHTS_LABEL})",
    )
    parser.add_argument(
        "--viewer",
        type=int,
        nargs="?",
        const=8080,
        default=None,
        metavar="PORT",
        help="the node serves the browser viewer on PORT (default 8080); the graph keeps running"
        " until Ctrl-C",
    )
    parser.add_argument(
        "--viewer-seconds",
        type=float,
        default=None,
        help="with --viewer: stop after this many seconds instead of at Ctrl-C",
    )
    parser.add_argument("--params-file", type=Path, default=None, help="default: bringup.yaml")
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a semanticsplat_node parameter on top of the params file (repeatable; VALUE"
        " read as YAML), e.g. sam_checkpoint=vit_b:/w/sam.pth",
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic scene seed")
    parser.add_argument("--width", type=int, default=None, help="rig image width (params file)")
    parser.add_argument("--height", type=int, default=None, help="rig image height (params file)")
    parser.add_argument(
        "--input-width", type=int, default=None, help="model input width (params file)"
    )
    parser.add_argument(
        "--input-height", type=int, default=None, help="model input height (params file)"
    )
    parser.add_argument("--rate-hz", type=float, default=5.0, help="rig frame rate")
    parser.add_argument(
        "--moving",
        action="store_true",
        help="let the rig move along its trajectory (default: it holds its first pose, so the"
        " figures are the same from run to run)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the first scene"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=60.0, help="seconds to wait for each service call"
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random in 1..100)"
    )


def _client_settings(args: argparse.Namespace) -> ClientSettings:
    return ClientSettings(
        timeout=args.timeout, seconds=args.seconds, call_timeout=args.call_timeout
    )


def _check_args(args: argparse.Namespace) -> None:
    if not args.random_weights:
        resolve_model_checkpoint(args.checkpoint, hint=RANDOM_WEIGHTS_HINT)
    _client_settings(args)
    if not 0 < args.rate_hz <= 100:
        raise ValueError(f"--rate-hz must be in (0, 100], got {args.rate_hz}")
    if args.viewer is not None and not 1 <= args.viewer <= 65535:
        raise ValueError(f"--viewer must be a port in 1..65535, got {args.viewer}")
    if args.viewer_seconds is not None and not args.viewer_seconds >= 0:
        raise ValueError(f"--viewer-seconds must be >= 0, got {args.viewer_seconds}")
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        raise ValueError(f"--domain-id must be in 0..232, got {args.domain_id}")


def _check_sizes(args: argparse.Namespace) -> None:
    for name in ("input_width", "input_height"):
        value = getattr(args, name)
        if value is None:
            continue
        if value < 16 or value % 8:
            raise ValueError(
                f"--{name.replace('_', '-')} must be a multiple of 8, >= 16, got {value}"
            )
    if None not in (args.width, args.height) and not (
        8 <= args.width <= 4096 and 8 <= args.height <= 4096
    ):
        raise ValueError(f"--width/--height must be in [8, 4096], got {args.width}x{args.height}")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    _check_sizes(args)
    try:
        setup = node_setup(args)
    except NodeParamError as exc:
        sys.stderr.write(f"semanticsplat demo: error: {exc}\n")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    if args.random_weights:
        progress(f"*** {RANDOM_WEIGHTS_LABEL} ***")
    try:
        collected, node_cfg = run_graph(args, out, progress, setup)
        summary = write_outputs(args, out, collected, node_cfg, progress)
    except DemoError as exc:
        sys.stderr.write(f"semanticsplat demo: error: {exc}\n")
        return 1
    failed = [
        call.name
        for call in collected.calls
        if not call.success and call.name != "segment_point_3d"
    ]
    sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.write(f"wrote {len(summary['files'])} files to {out} (see {out / 'index.md'})\n")
    if failed:
        sys.stderr.write(f"semanticsplat demo: error: service calls failed: {', '.join(failed)}\n")
        return 1
    return 0
