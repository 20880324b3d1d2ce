"""Building a scene's primitives: ids, object frames, materials, footprints, rollback.

``SceneBuilder`` holds the scene's random generator and accumulates primitives, handing out the
instance / part / group ids of the segmentation hierarchy (``data/scene.py``). Objects
(``data/furniture.py``) add their parts in a local frame (``ObjectFrame``: x forward, floor at
z = 0); ``data/world.py`` places them and rolls back the ones that do not fit.

Every random draw goes through ``SceneBuilder.rng`` in a fixed order: the same seed gives the
same scene, so the order of calls here and in the object builders is part of the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.scene import Primitive, PrimitiveKind, Texture, Vec3

WOODS: tuple[Vec3, ...] = (
    (0.55, 0.38, 0.24),
    (0.42, 0.28, 0.17),
    (0.68, 0.52, 0.34),
    (0.30, 0.20, 0.13),
)
"""Wood albedos (RGB in [0, 1]): frames, tables, floors."""
FABRICS: tuple[Vec3, ...] = (
    (0.25, 0.35, 0.55),
    (0.55, 0.22, 0.20),
    (0.30, 0.48, 0.35),
    (0.60, 0.55, 0.45),
    (0.35, 0.30, 0.40),
    (0.70, 0.60, 0.30),
    (0.20, 0.45, 0.50),
)
"""Fabric albedos: cushions, sheets, sofas, carpets, book spines."""
WALL_PAINTS: tuple[Vec3, ...] = (
    (0.85, 0.82, 0.75),
    (0.75, 0.80, 0.85),
    (0.80, 0.85, 0.76),
    (0.88, 0.78, 0.72),
    (0.70, 0.70, 0.72),
)
"""Wall paint albedos."""


def shade(color: Vec3, factor: float) -> Vec3:
    """``color`` scaled by ``factor`` (darker below 1), clipped to [0, 1]."""
    r, g, b = (float(np.clip(c * factor, 0.0, 1.0)) for c in color)
    return r, g, b


@dataclass(frozen=True)
class Placement:
    """Where an object goes: its local origin and heading in the world, and its group."""

    origin: Vec3
    """Local origin in world coordinates (metres); the object's floor is at origin z."""
    yaw: float
    """Rotation about world z (radians) from the object's local axes (x forward) to the world's."""
    group: int
    """Group id (large masks) the object joins."""


@dataclass(frozen=True)
class ObjectFrame:
    """One object being built: its placement and the ids all its parts share."""

    origin: Vec3
    """Local origin in world coordinates (metres)."""
    yaw: float
    """Heading of the local frame (radians about world z)."""
    class_id: int
    """Index into CLASS_NAMES."""
    instance_id: int
    """Object id (medium masks)."""
    group_id: int
    """Group id (large masks)."""


@dataclass
class Footprint:
    """Axis-aligned floor rectangle an object occupies (used to avoid overlaps and the path)."""

    lo: np.ndarray
    """(2,) smallest x, y (metres, world)."""
    hi: np.ndarray
    """(2,) largest x, y (metres, world)."""

    def overlaps(self, other: Footprint, margin: float) -> bool:
        """Whether the two rectangles, each grown by ``margin`` metres, intersect."""
        return bool(np.all(self.lo - margin < other.hi) and np.all(other.lo - margin < self.hi))

    def distance_to(self, points: np.ndarray) -> float:
        """Smallest distance (metres) from the rectangle to ``points`` (N, 2)."""
        d = np.maximum(np.maximum(self.lo - points, points - self.hi), 0.0)
        return float(np.min(np.linalg.norm(d, axis=-1)))


class BuilderState(NamedTuple):
    """What ``SceneBuilder.rollback`` restores."""

    num_primitives: int
    next_instance: int
    next_part: int
    next_group: int
    instance_names: dict[int, str]


class SceneBuilder:
    """Accumulates primitives while assigning ids; holds the scene's random generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.prims: list[Primitive] = []
        self.next_instance = 0
        self.next_part = 0
        self.next_group = 0
        self.instance_names: dict[int, str] = {}

    # -- ids and rollback -------------------------------------------------------------------
    def checkpoint(self) -> BuilderState:
        """State to ``rollback`` to when an object does not fit."""
        names = dict(self.instance_names)
        return BuilderState(
            len(self.prims), self.next_instance, self.next_part, self.next_group, names
        )

    def rollback(self, state: BuilderState) -> None:
        """Drop what was added since ``state`` and reuse its ids (random draws are not undone)."""
        del self.prims[state.num_primitives :]
        self.next_instance, self.next_part = state.next_instance, state.next_part
        self.next_group = state.next_group
        self.instance_names = dict(state.instance_names)

    def footprint(self, start: int) -> Footprint:
        """Floor rectangle covering the primitives added since index ``start``."""
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        for p in self.prims[start:]:
            c, s = abs(math.cos(p.yaw)), abs(math.sin(p.yaw))
            hx, hy = p.half_extents[0], p.half_extents[1]
            ext = np.array([c * hx + s * hy, s * hx + c * hy])
            lo = np.minimum(lo, np.asarray(p.center[:2]) - ext)
            hi = np.maximum(hi, np.asarray(p.center[:2]) + ext)
        return Footprint(lo, hi)

    def new_group(self) -> int:
        self.next_group += 1
        return self.next_group - 1

    def new_instance(self, name: str) -> int:
        self.instance_names[self.next_instance] = name
        self.next_instance += 1
        return self.next_instance - 1

    def new_part(self) -> int:
        self.next_part += 1
        return self.next_part - 1

    def new_object(self, class_name: str, at: Placement, label: str | None = None) -> ObjectFrame:
        """A new instance of class ``class_name`` at ``at``, named ``<label>_<instance id>``
        (``label`` defaults to the class name)."""
        inst = self.new_instance(f"{class_name if label is None else label}_{self.next_instance}")
        return ObjectFrame(at.origin, at.yaw, CLASS_ID[class_name], inst, at.group)

    # -- appearance -------------------------------------------------------------------------
    def jitter(self, color: Vec3, amount: float = 0.06) -> Vec3:
        """``color`` with each channel moved by up to ``amount`` at random, kept in (0, 1)."""
        c = np.clip(np.asarray(color) + self.rng.uniform(-amount, amount, 3), 0.02, 0.98)
        r, g, b = (float(x) for x in c)
        return r, g, b

    def pick(self, palette: tuple[Vec3, ...], amount: float = 0.06) -> Vec3:
        """A random colour of ``palette``, jittered by up to ``amount``."""
        return self.jitter(palette[int(self.rng.integers(len(palette)))], amount)

    def noise(self, low: float, high: float, amp: float) -> dict:
        """``Texture`` keyword arguments of a smooth noise: three random wave vectors of
        ``low .. high`` cycles per metre, amplitude ``amp``."""
        rng = self.rng
        freqs = []
        for _ in range(3):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d) + 1e-9
            freqs.append(tuple(float(x) for x in d * rng.uniform(low, high)))
        return {
            "noise_freqs": tuple(freqs),
            "noise_phase": tuple(float(x) for x in rng.uniform(0, 2 * math.pi, 3)),
            "noise_amp": amp,
        }

    def wood(self, axis: int, freq: float, amp: float = 0.7) -> Texture:
        """Grain: stripes across ``axis`` (local), warped along it, plus gentle noise."""
        rng = self.rng
        stripe = np.zeros(3)
        other = [a for a in range(3) if a != axis][int(rng.integers(2))]
        stripe[other] = freq
        warp = np.zeros(3)
        warp[axis] = rng.uniform(0.8, 2.0)
        return Texture(
            **self.noise(0.5, 2.0, 0.3),
            stripe_freq=tuple(stripe),
            warp_freq=tuple(warp),
            warp_amp=float(rng.uniform(0.8, 2.0)),
            stripe_amp=amp,
        )

    def fabric(self, amp: float = 0.6) -> Texture:
        """Fabric-like smooth noise of amplitude ``amp``."""
        return Texture(**self.noise(1.0, 4.0, amp))

    # -- primitives -------------------------------------------------------------------------
    def add(
        self,
        obj: ObjectFrame,
        kind: PrimitiveKind,
        *,
        center: Vec3,
        half: Vec3,
        part: int,
        color: Vec3,
        color2: Vec3,
        texture: Texture,
        name: str,
        yaw: float | None = None,
    ) -> None:
        """Add one part of ``obj``: ``center`` in the object's frame (metres), ``half`` its half
        extents (see ``Primitive.half_extents``). ``yaw`` replaces the object's heading for this
        part (radians, world), e.g. a box turned on a stack."""
        yaw = obj.yaw if yaw is None else yaw
        c, s = math.cos(yaw), math.sin(yaw)
        x, y, z = center
        origin = obj.origin
        world = (origin[0] + c * x - s * y, origin[1] + s * x + c * y, origin[2] + z)
        self.prims.append(
            Primitive(
                kind=kind,
                center=tuple(float(v) for v in world),
                half_extents=tuple(float(v) for v in half),
                yaw=float(yaw),
                class_id=obj.class_id,
                instance_id=obj.instance_id,
                part_id=part,
                group_id=obj.group_id,
                color=color,
                color2=color2,
                texture=texture,
                name=name,
            )
        )
