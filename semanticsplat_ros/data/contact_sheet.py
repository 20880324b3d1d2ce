"""``semanticsplat contact-sheet``: one PNG with RGB / depth / labels / instances of scenes.

Columns are scenes (one head-camera view each, at ``--time`` on trajectory 0; with ``--style
varied`` or ``held-out`` a view of that style's random camera and sensor), rows are RGB,
depth (turbo-like colour map, near = bright), class labels (CLASS_COLORS, legend at the bottom)
and instances (a colour per instance id).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from semanticsplat_ros.data.classes import CLASS_COLORS, CLASS_NAMES
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import RIGS, rig_cameras
from semanticsplat_ros.data.splits import parse_seeds
from semanticsplat_ros.data.styled import WORLD_STYLES, WorldStyle, check_style, styled_example
from semanticsplat_ros.data.types import Views
from semanticsplat_ros.data.world import make_scene

_DEPTH_STOPS = np.array(
    [[0.99, 0.95, 0.55], [0.98, 0.6, 0.2], [0.85, 0.25, 0.3], [0.45, 0.1, 0.5], [0.1, 0.05, 0.25]]
)


def colorize_depth(depth: np.ndarray, max_depth: float = 8.0) -> np.ndarray:
    """(h, w) metres -> (h, w, 3) uint8; 0 (unknown) is black."""
    x = np.clip(depth / max_depth, 0.0, 1.0) * (len(_DEPTH_STOPS) - 1)
    i = np.clip(np.floor(x).astype(int), 0, len(_DEPTH_STOPS) - 2)
    f = (x - i)[..., None]
    rgb = _DEPTH_STOPS[i] * (1 - f) + _DEPTH_STOPS[i + 1] * f
    rgb[depth <= 0] = 0.0
    return (rgb * 255).astype(np.uint8)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """(h, w) class ids -> (h, w, 3) uint8 with CLASS_COLORS; -1 is black."""
    lut = np.array([*CLASS_COLORS, (0, 0, 0)], dtype=np.uint8)
    return lut[np.where(labels < 0, len(CLASS_COLORS), labels)]


def colorize_ids(ids: np.ndarray) -> np.ndarray:
    """(h, w) ids -> (h, w, 3) uint8, a fixed pseudo-random colour per id; -1 is black."""
    x = (ids.astype(np.int64) + 1) * 2654435761 % (1 << 32)
    rgb = np.stack([(x >> 8) & 255, (x >> 16) & 255, (x >> 24) & 255], axis=-1)
    rgb = 60 + (rgb * 195) // 255
    rgb[ids < 0] = 0
    return rgb.astype(np.uint8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument(
        "--seeds", default="200000:200006", help="START:END scene seeds (one column each)"
    )
    parser.add_argument("--size", type=int, default=160, help="tile size in pixels")
    parser.add_argument("--time", type=float, default=2.0, help="trajectory time (seconds)")
    parser.add_argument("--rig", default="mono", choices=list(RIGS), help="first camera of rig")
    parser.add_argument(
        "--style", default="classic", choices=WORLD_STYLES, help="world style (data.styled)"
    )


def _view(seed: int, size: int, t: float, rig: str, style: WorldStyle) -> Views:
    if style == "classic":
        scene = make_scene(seed)
        c2w, K = rig_cameras(scene, rig, t, size, size)
        return render_views(scene, c2w[:1], K[:1], size, size)
    times = (np.array([t]), np.array([]))
    return styled_example(
        seed, style, size, size, num_context=1, num_target=0, index=0, times=times
    ).context


def contact_sheet(
    seeds: range, size: int = 160, t: float = 2.0, rig: str = "mono", style: str = "classic"
) -> Image.Image:
    """The sheet as a PIL image (rows RGB / depth / labels / instances, a column per seed)."""
    if len(seeds) == 0 or len(seeds) > 32:
        raise ValueError(f"contact sheet takes 1..32 scenes, got {len(seeds)}")
    if size < 16:
        raise ValueError(f"--size must be >= 16, got {size}")
    style = check_style(style)
    columns = []
    for seed in seeds:
        v = _view(seed, size, t, rig, style)
        rgb = (v.images[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        columns.append(
            [
                rgb,
                colorize_depth(v.depth[0].numpy()),
                colorize_labels(v.labels[0].numpy()),
                colorize_ids(v.instances[0].numpy()),
            ]
        )
    pad, left, top, legend_h = 4, 80, 22, 30
    w = left + len(seeds) * (size + pad)
    h = top + 4 * (size + pad) + legend_h
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, seed in enumerate(seeds):
        x = left + c * (size + pad)
        draw.text((x + 4, 5), f"seed {seed}", fill=(0, 0, 0))
        for r, tile in enumerate(columns[c]):
            sheet.paste(Image.fromarray(tile), (x, top + r * (size + pad)))
    for r, name in enumerate(("RGB", "depth", "labels", "instances")):
        draw.text((6, top + r * (size + pad) + size // 2 - 6), name, fill=(0, 0, 0))
    y = top + 4 * (size + pad) + 8
    x = left
    for name, color in zip(CLASS_NAMES, CLASS_COLORS, strict=True):
        draw.rectangle((x, y, x + 14, y + 14), fill=color)
        draw.text((x + 18, y + 1), name, fill=(0, 0, 0))
        x += 30 + 7 * len(name)
    return sheet


def run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    sheet = contact_sheet(seeds, args.size, args.time, args.rig, args.style)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {len(seeds)} scenes)")  # noqa: T201
    return 0
