"""World styles: the classic embedded world, the varied world and its held-out style.

``classic`` is ``world.make_scene`` seen by the fixed 70° head camera: what the bundled models
were trained on and what the sim rig renders. ``varied`` (``world_varied``) draws every scene
from many shape families, room shapes and material families (procedural and photographs), lights
it with cast shadows, ambient occlusion, lamps and an exposure, and sees it through a random
camera (``random_rigs``: FOV 50-110°, stereo baselines 5-50 cm, fans and rings of cameras) with a
random sensor (``camera_effects``: noise, blur, vignetting, tone curve, white balance, JPEG).
``held-out`` is the same generator restricted to the shape and material families that
``varied`` never uses (``world_varied.HELD_OUT_FAMILIES``): training on ``varied`` and evaluating
on ``held-out`` (``semanticsplat eval --style held-out``) measures generalisation to furniture and
materials the model never saw.

Everything is a pure function of (seed, example index, sizes): the same call gives the same
example on any machine.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Literal, get_args

import numpy as np
import torch

from semanticsplat_ros.data.camera_effects import apply_effects, sample_effects
from semanticsplat_ros.data.random_rigs import HFOV_RANGE_DEG, mono_rig, sample_rig
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import Rig, rig_cameras
from semanticsplat_ros.data.scene import PointLight, Scene
from semanticsplat_ros.data.types import Example, Views
from semanticsplat_ros.data.world import make_scene
from semanticsplat_ros.data.world_varied import make_varied_scene

WorldStyle = Literal["classic", "varied", "held-out"]
"""Which generator and cameras make a synthetic example (see the module docstring)."""

WORLD_STYLES: tuple[WorldStyle, ...] = get_args(WorldStyle)

RIG_INSTANT_PROB = 0.5
"""Probability that a varied example with several context views takes them from a random rig's
cameras at one instant (else: one random camera at several times along its trajectory)."""

LAMP_LIGHT_PROB = 0.7
"""Probability that each lamp shade of a varied scene is a lit point light."""


def check_style(style: str) -> WorldStyle:
    """``style`` itself, or ValueError naming the styles."""
    if style not in WORLD_STYLES:
        raise ValueError(f"unknown world style {style!r}; styles: {', '.join(WORLD_STYLES)}")
    return style  # type: ignore[return-value]


def _lights(scene: Scene, rng: np.random.Generator) -> Scene:
    """The varied lighting: shadows, ambient occlusion, exposure and the lamps' bulbs."""
    lamps = []
    for p in scene.primitives:
        if p.name.endswith("/shade") and rng.random() < LAMP_LIGHT_PROB:
            color = tuple(float(c) for c in rng.uniform([0.9, 0.75, 0.55], [1.0, 0.95, 0.9]))
            lamps.append(PointLight(p.center, color, float(rng.uniform(25.0, 80.0))))
    return replace(
        scene,
        shadows=bool(rng.random() < 0.85),
        point_lights=tuple(lamps[:3]),
        ao_strength=float(rng.uniform(0.2, 0.8)),
        exposure=float(rng.uniform(0.85, 1.3)),
        ambient=float(rng.uniform(0.3, 0.5)),
    )


@functools.lru_cache(maxsize=32)
def styled_scene(seed: int, style: WorldStyle = "classic") -> Scene:
    """Scene ``seed`` of ``style`` (memoised: scenes are immutable once built)."""
    check_style(style)
    if style == "classic":
        return make_scene(seed)
    scene = make_varied_scene(seed, held_out=style == "held-out")
    return _lights(scene, np.random.default_rng([int(seed), 0x11647]))


def _render(scene: Scene, cams: list[tuple[torch.Tensor, torch.Tensor]], h: int, w: int) -> Views:
    c2w = torch.cat([c for c, _ in cams])
    K = torch.cat([k for _, k in cams])
    return render_views(scene, c2w, K, h, w)


def styled_example(
    seed: int,
    style: WorldStyle,
    height: int,
    width: int,
    *,
    num_context: int,
    num_target: int,
    index: int,
    times: tuple[np.ndarray, np.ndarray],
    rig: Rig | None = None,
) -> Example:
    """Example ``index`` of scene ``seed`` in a varied ``style``: a random rig or camera, the
    varied lights, a random sensor. ``times``: the (context, target) times a moving camera
    would use (``synthetic.sample_times``); a rig at one instant uses the first context time.
    ``rig``: always these cameras at one instant (num_context = its camera count)."""
    scene = styled_scene(int(seed), style)
    rng = np.random.default_rng([int(seed), int(index), 0x57E1])
    trajectory = int(index)
    context_t, target_t = times
    if rig is None and num_context > 1 and rng.random() < RIG_INSTANT_PROB:
        rig = sample_rig(rng, cameras=num_context)
    if rig is not None:
        t0 = float(context_t[0])
        cams = [rig_cameras(scene, rig, t0, height, width, seed=trajectory)]
        span = float(context_t[-1] - context_t[0]) if len(context_t) > 1 else 1.0
        for t in t0 + rng.uniform(-0.5, 0.5, num_target) * span:
            c2w, K = rig_cameras(scene, rig, float(t), height, width, seed=trajectory)
            i = int(rng.integers(len(c2w)))
            cams.append((c2w[i : i + 1], K[i : i + 1]))
    else:
        mono = mono_rig(float(rng.uniform(*HFOV_RANGE_DEG)))
        cams = [
            rig_cameras(scene, mono, float(t), height, width, seed=trajectory)
            for t in np.concatenate([context_t, target_t])
        ]
    views = _render(scene, cams, height, width)
    effects = sample_effects(rng)
    views = replace(views, images=apply_effects(views.images, effects, rng))
    context = views.index_views(list(range(num_context)))
    target = views.index_views(list(range(num_context, num_context + num_target)))
    tag = "varied" if style == "varied" else "heldout"
    return Example(context, target, scene_id=f"{tag}_{int(seed):06d}_{trajectory}")


__all__ = [
    "WORLD_STYLES",
    "WorldStyle",
    "check_style",
    "styled_example",
    "styled_scene",
]
