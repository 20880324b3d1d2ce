"""``semanticsplat make-data``: write synthetic scenes in the ScanNet layout (data/scannet.py).

Each seed gives one scene folder per rig camera, ``scene_<seed>`` (one-camera rigs) or
``scene_<seed>_<camera>``, holding ``--views-per-scene`` frames taken every ``--dt`` seconds
along the scene's trajectory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from tqdm import tqdm

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import RIGS, get_rig, rig_cameras
from semanticsplat_ros.data.scannet import ImageFormat, write_scene
from semanticsplat_ros.data.splits import parse_seeds
from semanticsplat_ros.data.world import make_scene


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument(
        "--seeds", default="val", help="START:END (END exclusive) or a split name (default: val)"
    )
    parser.add_argument("--height", type=int, default=128, help="image height in pixels")
    parser.add_argument("--width", type=int, default=128, help="image width in pixels")
    parser.add_argument("--views-per-scene", type=int, default=16, help="frames per camera")
    parser.add_argument("--dt", type=float, default=0.4, help="seconds between frames")
    parser.add_argument("--rig", default="mono", choices=list(RIGS), help="camera rig")
    parser.add_argument("--trajectory", type=int, default=0, help="trajectory seed")
    parser.add_argument(
        "--image-format", default="png", choices=get_args(ImageFormat), help="colour image format"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def write_synthetic_scene(
    out: Path,
    seed: int,
    height: int,
    width: int,
    *,
    views_per_scene: int,
    dt: float = 0.4,
    rig: str = "mono",
    trajectory: int = 0,
    image_format: ImageFormat = "png",
) -> list[Path]:
    """Render and write scene ``seed``; returns the scene folders written (one per camera)."""
    spec = get_rig(rig)
    scene = make_scene(seed)
    times = np.arange(views_per_scene) * dt
    cams = [rig_cameras(scene, rig, float(t), height, width, seed=trajectory) for t in times]
    c2w = torch.cat([c[0] for c in cams])  # time-major: (t0 cams, t1 cams, ...)
    K = torch.cat([c[1] for c in cams])
    views = render_views(scene, c2w, K, height, width)
    written = []
    ncam = len(spec.cameras)
    for k, cam in enumerate(spec.cameras):
        name = f"scene_{seed:06d}" if ncam == 1 else f"scene_{seed:06d}_{cam.name}"
        idx = list(range(k, len(times) * ncam, ncam))
        written.append(write_scene(out, name, views.index_views(idx), image_format=image_format))
    return written


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    if args.height < 1 or args.width < 1 or args.views_per_scene < 1 or args.dt <= 0:
        raise ValueError("--height, --width, --views-per-scene must be >= 1 and --dt > 0")
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in tqdm(seeds, desc="make-data", unit="scene", disable=args.no_progress):
        write_synthetic_scene(
            args.out,
            seed,
            args.height,
            args.width,
            views_per_scene=args.views_per_scene,
            dt=args.dt,
            rig=args.rig,
            trajectory=args.trajectory,
            image_format=args.image_format,
        )
    print(f"wrote {len(seeds)} scenes ({args.rig} rig) to {args.out}")
    return 0
