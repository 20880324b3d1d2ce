"""Procedural material families for the varied synthetic world (``data/world_varied.py``).

Every family is built only from the fields of ``scene.Texture`` (smooth noise, warped stripes,
soft checker) and two albedos. ``material`` draws a family's colours (a random tint and
brightness around a palette colour or a given base) and its frequencies from ``b.rng``; the three
noise waves are drawn at different scales (a low, a middle and a high frequency range), so that
surfaces have structure both when seen from across the room and from close by.

Frequencies are in cycles per metre in the primitive's local frame. They stay at or below about
12 cycles/m on small objects and are scaled down by ``BIG_SCALE`` on big surfaces (``big=True``:
floors, walls) so that 64-128 px renders show the pattern without aliasing; tile cells are
0.2-0.6 m.

With probability ``PHOTO_PROB`` a surface of any family also carries the detail of a real
photograph (``photo_textures``: scikit-image's brick, grass, gravel, wood, fur, ... at a random
scale, strength and tint) on top of its procedural pattern.

``HELD_OUT_MATERIAL`` ("stone") is the family the varied world keeps out of its ordinary scenes
(see ``world_varied.HELD_OUT_FAMILIES``); ``pick_family`` applies that rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, NamedTuple, get_args

import numpy as np

from semanticsplat_ros.data.builder import FABRICS, WALL_PAINTS, WOODS, SceneBuilder, shade
from semanticsplat_ros.data.photo_textures import photo_texture
from semanticsplat_ros.data.scene import Texture, Vec3

MaterialFamily = Literal["wood", "fabric", "weave", "tiles", "plaster", "carpet", "stone", "noise"]
"""A procedural material family (see ``material``)."""

MATERIAL_FAMILIES: tuple[MaterialFamily, ...] = get_args(MaterialFamily)
"""All material families, in a fixed order."""

HELD_OUT_MATERIAL: MaterialFamily = "stone"
"""The family only held-out scenes use (``pick_family(..., held_out=True)``)."""

PHOTO_PROB = 0.35
"""Probability that a surface carries a photograph's detail (``photo_textures``)."""

BIG_SCALE = 0.4
"""Factor applied to every frequency of a big surface (floor, wall)."""

SCALES: tuple[tuple[float, float], ...] = ((0.3, 1.2), (1.2, 4.0), (4.0, 10.0))
"""Low, middle and high noise frequency ranges on small objects (cycles/m)."""

TILE_COLORS: tuple[Vec3, ...] = (
    (0.85, 0.84, 0.8),
    (0.6, 0.62, 0.64),
    (0.7, 0.42, 0.3),
    (0.45, 0.55, 0.62),
    (0.3, 0.3, 0.32),
)
"""Ceramic tile albedos."""
STONE_COLORS: tuple[Vec3, ...] = (
    (0.82, 0.8, 0.76),
    (0.55, 0.55, 0.56),
    (0.72, 0.64, 0.52),
    (0.3, 0.32, 0.35),
    (0.6, 0.5, 0.45),
)
"""Stone albedos: marble, granite, sandstone, slate."""

_PALETTES: dict[MaterialFamily, tuple[Vec3, ...]] = {
    "wood": WOODS,
    "fabric": FABRICS,
    "weave": FABRICS,
    "tiles": TILE_COLORS,
    "plaster": WALL_PAINTS,
    "carpet": FABRICS,
    "stone": STONE_COLORS,
    "noise": FABRICS,
}


class Surface(NamedTuple):
    """A part's appearance: the two albedos and the texture that mixes them."""

    color: Vec3
    color2: Vec3
    texture: Texture


def _tint(b: SceneBuilder, color: Vec3, amount: float = 0.08) -> Vec3:
    """``color`` with a random per-channel tint and an overall brightness change."""
    rng = b.rng
    c = np.asarray(color) * (1.0 + rng.uniform(-amount, amount, 3)) * rng.uniform(0.82, 1.12)
    r, g, bl = (float(x) for x in np.clip(c, 0.03, 0.97))
    return r, g, bl


def _direction(rng: np.random.Generator) -> np.ndarray:
    d = rng.normal(size=3)
    return d / (np.linalg.norm(d) + 1e-9)


def _noise(b: SceneBuilder, scales: Sequence[int], amp: float, k: float) -> dict:
    """Texture keywords of a three-wave noise, wave i in frequency range ``SCALES[scales[i]]``
    times ``k``, amplitude ``amp``."""
    rng = b.rng
    freqs = []
    for s in scales:
        lo, hi = SCALES[s]
        freqs.append(tuple(float(x) for x in _direction(rng) * rng.uniform(lo, hi) * k))
    return {
        "noise_freqs": tuple(freqs),
        "noise_phase": tuple(float(x) for x in rng.uniform(0, 2 * math.pi, 3)),
        "noise_amp": float(amp),
    }


def _axis_vec(axis: int, value: float) -> Vec3:
    v = [0.0, 0.0, 0.0]
    v[axis] = float(value)
    return v[0], v[1], v[2]


def _wood(b: SceneBuilder, col: Vec3, k: float, big: bool) -> Surface:
    rng = b.rng
    grain = int(rng.integers(2 if big else 3))  # big surfaces: planks run along x or y
    across = [a for a in range(3) if a != grain and not (big and a == 2)]
    stripe_axis = across[int(rng.integers(len(across)))]
    tex = Texture(
        **_noise(b, (0, 1, 1), rng.uniform(0.15, 0.35), k),
        stripe_freq=_axis_vec(stripe_axis, rng.uniform(3.0, 9.0) * k),
        warp_freq=_axis_vec(grain, rng.uniform(0.5, 2.0) * k),
        warp_amp=float(rng.uniform(0.8, 2.5)),
        stripe_amp=float(rng.uniform(0.5, 0.8)),
    )
    return Surface(col, shade(col, rng.uniform(0.55, 0.75)), tex)


def _weave(b: SceneBuilder, col: Vec3, k: float) -> Surface:
    rng = b.rng
    axis = int(rng.integers(2))
    tex = Texture(
        **_noise(b, (0, 1, 2), rng.uniform(0.15, 0.3), k),
        stripe_freq=_axis_vec(axis, rng.uniform(5.0, 10.0) * k),
        stripe_amp=float(rng.uniform(0.3, 0.5)),
        checker_size=float(rng.uniform(0.08, 0.15) / k),
        checker_amp=float(rng.uniform(0.3, 0.5)),
    )
    other = b.pick(FABRICS, 0.05) if rng.random() < 0.4 else shade(col, rng.uniform(0.55, 0.75))
    return Surface(col, other, tex)


def _tiles(b: SceneBuilder, col: Vec3, k: float) -> Surface:
    rng = b.rng
    tex = Texture(
        **_noise(b, (0, 0, 1), rng.uniform(0.1, 0.2), k),
        checker_size=float(rng.uniform(0.2, 0.6)),
        checker_amp=float(rng.uniform(0.6, 0.9)),
    )
    two_tone = rng.random() < 0.3
    other = _tint(b, TILE_COLORS[int(rng.integers(len(TILE_COLORS)))]) if two_tone else None
    return Surface(col, other or shade(col, rng.uniform(0.6, 0.8)), tex)


def _stone(b: SceneBuilder, col: Vec3, k: float) -> Surface:
    """Marble / granite: strongly warped veins in a random direction over three-scale noise."""
    rng = b.rng
    stripe = _direction(rng) * rng.uniform(0.8, 3.0) * k
    warp = _direction(rng) * rng.uniform(0.5, 2.0) * k
    tex = Texture(
        **_noise(b, (0, 1, 2), rng.uniform(0.25, 0.45), k),
        stripe_freq=tuple(float(x) for x in stripe),
        warp_freq=tuple(float(x) for x in warp),
        warp_amp=float(rng.uniform(2.0, 4.0)),
        stripe_amp=float(rng.uniform(0.5, 0.8)),
    )
    veins = shade(col, 1.35) if float(np.mean(col)) < 0.6 else shade(col, 0.6)
    return Surface(col, veins, tex)


def material(
    b: SceneBuilder, family: MaterialFamily, base: Vec3 | None = None, *, big: bool = False
) -> Surface:
    """A random surface of ``family``: colours around ``base`` (default: a colour of the
    family's palette) with a random tint and brightness, frequencies from ``b.rng``, and with
    probability ``PHOTO_PROB`` a photograph's detail.

    ``big`` scales every frequency by ``BIG_SCALE`` (floors, walls) and doubles the photo's
    tile size. Raises ValueError for an unknown family.
    """
    out = _procedural(b, family, base, big)
    if b.rng.random() >= PHOTO_PROB:
        return out
    photo = photo_texture(b.rng, amp=float(b.rng.uniform(0.4, 1.0)))
    texture = replace(
        out.texture,
        photo_id=photo.photo_id,
        photo_scale=photo.photo_scale * (2.0 if big else 1.0),
        photo_amp=photo.photo_amp,
        photo_gain=photo.photo_gain,
    )
    return out._replace(texture=texture)


def _procedural(b: SceneBuilder, family: MaterialFamily, base: Vec3 | None, big: bool) -> Surface:
    if family not in _PALETTES:
        raise ValueError(
            f"unknown material family {family!r}; families: {', '.join(MATERIAL_FAMILIES)}"
        )
    rng = b.rng
    palette = _PALETTES[family]
    col = _tint(b, palette[int(rng.integers(len(palette)))] if base is None else base)
    k = BIG_SCALE if big else 1.0
    if family == "wood":
        return _wood(b, col, k, big)
    if family == "weave":
        return _weave(b, col, k)
    if family == "tiles":
        return _tiles(b, col, k)
    if family == "stone":
        return _stone(b, col, k)
    if family == "fabric":
        tex = Texture(**_noise(b, (1, 1, 2), rng.uniform(0.45, 0.7), k))
        return Surface(col, shade(col, rng.uniform(0.6, 0.75)), tex)
    if family == "plaster":
        tex = Texture(**_noise(b, (0, 0, 1), rng.uniform(0.3, 0.6), k))
        return Surface(col, shade(col, rng.uniform(0.8, 0.9)), tex)
    if family == "carpet":
        col = shade(col, 0.85)
        tex = Texture(**_noise(b, (1, 2, 2), rng.uniform(0.6, 0.9), k))
        return Surface(col, shade(col, rng.uniform(0.55, 0.7)), tex)
    # "noise": two unrelated colours mixed by noise at all three scales.
    other = _tint(b, tuple(float(x) for x in rng.uniform(0.15, 0.9, 3)))
    tex = Texture(**_noise(b, (0, 1, 2), rng.uniform(0.8, 1.0), k))
    return Surface(col, other, tex)


def pick_family(
    b: SceneBuilder,
    options: Sequence[MaterialFamily],
    *,
    held_out: bool,
    held_out_chance: float = 0.5,
) -> MaterialFamily:
    """One of ``options`` at random, never ``HELD_OUT_MATERIAL`` unless ``held_out``; with
    ``held_out`` and the held-out family among the options, it with ``held_out_chance``."""
    if not options:
        raise ValueError("pick_family needs at least one material family")
    rng = b.rng
    allowed = [f for f in options if f != HELD_OUT_MATERIAL]
    if (
        held_out
        and HELD_OUT_MATERIAL in options
        and (rng.random() < held_out_chance or not allowed)
    ):
        return HELD_OUT_MATERIAL
    if not allowed:
        raise ValueError(f"only the held-out material {HELD_OUT_MATERIAL!r} among {options}")
    return allowed[int(rng.integers(len(allowed)))]


def surface(
    b: SceneBuilder,
    options: Sequence[MaterialFamily],
    *,
    held_out: bool,
    base: Vec3 | None = None,
    big: bool = False,
) -> Surface:
    """``material`` of a family ``pick_family`` draws from ``options``."""
    return material(b, pick_family(b, options, held_out=held_out), base, big=big)
