"""``semanticsplat export-ply``: a scene's semantic Gaussians as a 3DGS-layout PLY.

    semanticsplat export-ply --out scene.ply --seed 3                  # synthetic, stereo rig, t=0
    semanticsplat export-ply --out scene.ply --scannet-scene data/synth/scene000003 --frames 0,10
    semanticsplat export-ply --out scene.ply --random-weights          # plumbing only

The PLY (``ply.write_ply``) holds per Gaussian the 3DGS attributes, the low-dimensional
segmentation feature (``f_seg_*``, the first ``scene.seg_dim`` channels of the Gaussian
features), the low-dimensional language feature (``f_lang_*``, the rest) and ``label`` /
``score``. The model predicts one Gaussian per context pixel at its input resolution, view-major
then row-major, so Gaussian ``k·h·w + i·w + j`` is pixel (i, j) of view k and takes that pixel's
class from ``scene.labels`` (the language field rendered there, classified against the class
list). A JSON sidecar (``FILE.json``) names the classes and the source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from semanticsplat_ros.data.rigs import RIGS
from semanticsplat_ros.data.scannet import ScanNetScene
from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.model.bundled import resolve_model_checkpoint
from semanticsplat_ros.pipeline import (
    CameraFrame,
    EncodedScene,
    PipelineConfig,
    SemanticSplatPipeline,
)
from semanticsplat_ros.ply import PlyGaussians, write_ply
from semanticsplat_ros.visualize import RANDOM_WEIGHTS_HINT, RANDOM_WEIGHTS_LABEL


def scene_ply_gaussians(pipeline: SemanticSplatPipeline, scene: EncodedScene) -> PlyGaussians:
    """The scene's Gaussians as ``PlyGaussians`` with labels and scores (see the module doc).

    The scene is relabelled first when the pipeline's class list changed since it was encoded.
    Raises ValueError unless there is exactly one Gaussian per input pixel.
    """
    if scene.classes != pipeline.classes:
        scene = pipeline.relabel(scene)
    g = scene.gaussian_grid  # (v, h, w, ...): view-major, then row-major, like the labels

    def np32(t: Any) -> np.ndarray:
        return t.reshape(-1, *t.shape[3:]).detach().float().cpu().numpy()

    return PlyGaussians(
        means=np32(g.means),
        quats=np32(g.quats),
        scales=np.maximum(np32(g.scales), np.float32(1e-12)),
        opacities=np.clip(np32(g.opacities), 0.0, 1.0),
        colors=np.clip(np32(g.colors), 0.0, 1.0),
        seg_features=np32(g.seg_features),
        lang_features=np32(g.lang_features),
        labels=scene.labels.reshape(-1).cpu().numpy().astype(np.int64),
        scores=scene.scores.reshape(-1).float().cpu().numpy(),
    )


def export_scene_ply(
    pipeline: SemanticSplatPipeline, scene: EncodedScene, path: str | Path
) -> Path:
    """Write the scene's semantic Gaussians to ``path`` (binary PLY); returns the path."""
    return write_ply(path, scene_ply_gaussians(pipeline, scene))


# --------------------------------------------------------------------------------------------
# Sources of frames
# --------------------------------------------------------------------------------------------


def synthetic_frames(
    seed: int, rig: str = "stereo", height: int = 192, width: int = 256, t: float = 0.0
) -> list[CameraFrame]:
    """The sim rig's cameras on scene ``seed`` at time ``t`` (as ``sim_rig`` publishes them)."""

    sim = SimRig(SimRigConfig(rig=rig, scene_seed=seed, width=width, height=height))
    frame = sim.render(t)
    return [
        CameraFrame(name, frame.images[i], frame.K[i], frame.c2w[i], stamp=t)
        for i, name in enumerate(sim.cameras)
    ]


def scannet_frames(
    folder: str | Path,
    frames: list[int] | None = None,
    height: int | None = None,
    width: int | None = None,
) -> tuple[list[CameraFrame], float, float]:
    """Frames of a ScanNet-layout scene folder (default: the first and the 11th or last) and
    the scene's (near, far)."""

    scene = ScanNetScene(folder, skip_invalid_poses=True)
    n = len(scene)
    if frames is None:
        frames = [0, min(10, n - 1)]
    if len(frames) < 2 or len(set(frames)) != len(frames):
        raise ValueError(f"need at least 2 distinct frames, got {frames} ({scene.name} has {n})")
    bad = [f for f in frames if not 0 <= f < n]
    if bad:
        raise ValueError(f"frames {bad} are outside 0..{n - 1} of scene {scene.name}")
    views = scene.load_views(frames, height, width)
    images = (views.images.clamp(0, 1) * 255.0 + 0.5).byte().permute(0, 2, 3, 1).numpy()
    out = [
        CameraFrame(
            f"frame_{scene.color_files[f].stem}",
            np.ascontiguousarray(images[k]),
            views.K[k].double().numpy(),
            views.c2w[k].double().numpy(),
        )
        for k, f in enumerate(frames)
    ]
    return out, float(scene.near), float(scene.far)


def parse_frames(text: str | None) -> list[int] | None:
    """``"0,10,20"`` -> ``[0, 10, 20]``; None/"" -> None."""
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--frames must be comma-separated integers, got {text!r}") from None


def pipeline_from_args(args: argparse.Namespace) -> SemanticSplatPipeline:
    """The pipeline for ``--checkpoint``/``--random-weights``/``--device``/``--input-*``; a
    missing checkpoint is a one-line FileNotFoundError."""
    if not args.random_weights:
        resolve_model_checkpoint(args.checkpoint, hint=RANDOM_WEIGHTS_HINT)
    return SemanticSplatPipeline(
        PipelineConfig(
            model_checkpoint=str(args.checkpoint or ""),
            device=args.device,
            input_width=args.input_width,
            input_height=args.input_height,
            random_weights=args.random_weights,
        )
    )


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:

    defaults = PipelineConfig()
    parser.add_argument("--out", type=Path, required=True, help="PLY file to write")
    parser.add_argument(
        "--checkpoint",
        default="",
        help="model: a checkpoint file or a bundled name (small, small_stereo); default: small",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    source.add_argument(
        "--scannet-scene", type=Path, default=None, help="a ScanNet-layout scene folder instead"
    )
    parser.add_argument(
        "--frames", default="", help="ScanNet frame indices, e.g. 0,10 (default: 0 and 10)"
    )
    parser.add_argument("--rig", default="stereo", choices=list(RIGS), help="synthetic rig")
    parser.add_argument("--height", type=int, default=None, help="image height (synthetic: 192)")
    parser.add_argument("--width", type=int, default=None, help="image width (synthetic: 256)")
    parser.add_argument("--input-height", type=int, default=defaults.input_height)
    parser.add_argument("--input-width", type=int, default=defaults.input_width)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help=f"no checkpoint: random network ({RANDOM_WEIGHTS_LABEL})",
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".ply":
        raise ValueError(f"--out must name a .ply file, got {out}")
    pipeline = pipeline_from_args(args)
    near = far = None
    if args.scannet_scene is not None:
        frames, near, far = scannet_frames(
            args.scannet_scene, parse_frames(args.frames), args.height, args.width
        )
        source: dict[str, Any] = {"scannet_scene": str(args.scannet_scene)}
    else:
        frames = synthetic_frames(args.seed, args.rig, args.height or 192, args.width or 256)
        source = {"synthetic_seed": args.seed, "rig": args.rig, "t": 0.0}
    scene = pipeline.encode(frames, near, far)
    export_scene_ply(pipeline, scene, out)
    g = scene.gaussians
    sidecar = {
        "ply": out.name,
        "num_gaussians": g.num_gaussians,
        "views": scene.names,
        "input_size": list(scene.labels.shape[-2:]),
        "seg_dim": scene.seg_dim,
        "lang_dim": g.feature_dim - scene.seg_dim,
        "classes": list(pipeline.classes),
        "gaussian_order": "view-major, then row-major: k*h*w + i*w + j = pixel (i, j) of view k",
        "source": source,
        "random_weights": bool(args.random_weights),
    }
    if args.random_weights:
        sidecar["warning"] = RANDOM_WEIGHTS_LABEL
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    note = f" [{RANDOM_WEIGHTS_LABEL}]" if args.random_weights else ""
    sys.stdout.write(
        f"wrote {out} ({g.num_gaussians} Gaussians from {len(frames)} views, seg {scene.seg_dim}"
        f" + lang {g.feature_dim - scene.seg_dim} features, labels over"
        f" {len(pipeline.classes)} classes){note}\n"
    )
    return 0
