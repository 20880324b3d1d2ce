"""Room layouts of the varied synthetic world (``data/world_varied.py``): shapes, wall blocks,
wall pieces, the camera loop, and the room's faces.

A room is the box from the origin to ``size`` (floor at z = 0). Its shape adds wall-class
blocks inside the box: an L fills one corner, an alcove is two fins sticking out of a wall,
pillars are small blocks against the walls. The camera loop (``scene.CameraPath``) keeps 1.1-1.7
m from the walls (more on the side of an L's corner or a bed) and every block keeps at least
``BLOCK_CLEARANCE`` from the loop's rectangle. ``Segment`` lists the straight wall pieces
furniture may stand against: the room's walls less the blocks, and the blocks' faces towards
the room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semanticsplat_ros.data import materials as mat
from semanticsplat_ros.data.builder import WALL_PAINTS, Footprint, Placement, SceneBuilder
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.furniture_varied import put
from semanticsplat_ros.data.scene import CameraPath, Primitive

ROOM_SHAPES = ("box", "l_shape", "alcove", "pillar")
"""Room shapes; the wall blocks of a shape are named ``wall_<shape>_<id>``."""
MIN_LOOP = 1.7
"""Smallest side of the camera loop's rectangle (metres)."""
BLOCK_CLEARANCE = 0.6
"""Metres every wall block keeps from the camera loop's rectangle (doors, windows and pictures
on a block's face stick out at most 0.12 m)."""


def rot(yaw: float, x: float, y: float) -> tuple[float, float]:
    """(x, y) turned by ``yaw`` radians."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * x - s * y, s * x + c * y


def rotated_half(yaw: float, hx: float, hy: float) -> tuple[float, float]:
    """Half sizes of the axis-aligned box around an hx x hy rectangle turned by ``yaw``."""
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * hx + s * hy, s * hx + c * hy


@dataclass(frozen=True)
class Segment:
    """A straight piece of wall, axis-aligned, with the direction into the room."""

    axis: int
    """0: the wall is the plane x = coord; 1: y = coord."""
    coord: float
    """The wall plane's coordinate (metres)."""
    lo: float
    """Start along the other axis (metres)."""
    hi: float
    """End along the other axis (metres)."""
    inward: int
    """+1 or -1: the room lies towards increasing or decreasing ``axis``."""

    @property
    def length(self) -> float:
        return self.hi - self.lo

    @property
    def yaw(self) -> float:
        """Heading of an object standing against this wall, facing the room."""
        if self.axis == 0:
            return 0.0 if self.inward > 0 else math.pi
        return math.pi / 2 if self.inward > 0 else -math.pi / 2

    def point(self, along: float, off: float) -> tuple[float, float]:
        """World (x, y) at ``along`` on the wall, ``off`` metres into the room."""
        perp = self.coord + self.inward * off
        return (perp, along) if self.axis == 0 else (along, perp)


@dataclass
class Layout:
    """A room's shape: size, wall blocks, wall segments, camera loop and the bed's wall."""

    size: np.ndarray
    shape: str
    blocks: list[Footprint]
    segments: list[Segment]
    path: CameraPath
    bed_wall: int | None


def _cut(lo: float, hi: float, cuts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of [lo, hi] outside every interval of ``cuts`` (pieces under 0.3 m dropped)."""
    pieces = [(lo, hi)]
    for a, b in cuts:
        pieces = [p for s, e in pieces for p in ((s, min(e, a)), (max(s, b), e))]
    return [(s, e) for s, e in pieces if e - s >= 0.3]


def _segments(size: np.ndarray, blocks: list[Footprint]) -> list[Segment]:
    """Room walls less the blocks touching them, then the blocks' faces towards the room."""
    out = []
    for wall in range(4):
        axis, at_max = wall // 2, wall % 2
        coord = float(size[axis]) if at_max else 0.0
        other = 1 - axis
        cuts = [
            (float(f.lo[other]), float(f.hi[other]))
            for f in blocks
            if (f.hi[axis] >= size[axis] - 1e-6 if at_max else f.lo[axis] <= 1e-6)
        ]
        inward = -1 if at_max else 1
        for s, e in _cut(0.0, float(size[other]), cuts):
            out.append(Segment(axis, coord, s, e, inward))
    for f in blocks:
        for axis in (0, 1):
            other = 1 - axis
            if f.lo[axis] > 1e-6:
                out.append(
                    Segment(axis, float(f.lo[axis]), float(f.lo[other]), float(f.hi[other]), -1)
                )
            if f.hi[axis] < size[axis] - 1e-6:
                out.append(
                    Segment(axis, float(f.hi[axis]), float(f.lo[other]), float(f.hi[other]), 1)
                )
    return [s for s in out if s.length >= 0.3]


def _block(size: np.ndarray, wall: int, depth: float, start: float, extent: float) -> Footprint:
    """A floor rectangle ``depth`` into the room from ``wall``, ``start .. start + extent`` along
    it."""
    axis, other = wall // 2, 1 - wall // 2
    lo, hi = np.zeros(2), np.asarray(size[:2], dtype=np.float64).copy()
    if wall % 2:
        lo[axis] = size[axis] - depth
    else:
        hi[axis] = depth
    lo[other], hi[other] = start, start + extent
    return Footprint(lo, hi)


def make_layout(rng: np.random.Generator, size: np.ndarray, want_bed: bool) -> Layout:
    """Gaps from the walls to the camera loop, the room's wall blocks, the bed's wall."""
    gaps = rng.uniform(1.1, 1.7, 4)  # to walls x-, x+, y-, y+
    for axis in (0, 1):
        g = gaps[2 * axis : 2 * axis + 2]
        room = size[axis] - MIN_LOOP
        if g.sum() > room:
            gaps[2 * axis : 2 * axis + 2] = g * room / g.sum()

    def widen(wall: int, want: float) -> float:
        partner = wall ^ 1
        gaps[wall] = max(gaps[wall], min(want, size[wall // 2] - gaps[partner] - MIN_LOOP))
        return float(gaps[wall])

    shape = ROOM_SHAPES[int(rng.choice(4, p=[0.3, 0.3, 0.2, 0.2]))]
    blocks: list[Footprint] = []
    if shape == "l_shape":
        wall = int(rng.integers(4))
        axis, other = wall // 2, 1 - wall // 2
        want = rng.uniform(1.0, 0.45 * size[axis])
        depth = min(want, widen(wall, want + rng.uniform(0.65, 1.0)) - BLOCK_CLEARANCE)
        extent = rng.uniform(1.2, 0.6 * size[other])
        start = 0.0 if rng.random() < 0.5 else size[other] - extent
        if depth >= 0.8:
            blocks.append(_block(size, wall, depth, start, extent))
        else:
            shape = "pillar"
    if shape == "alcove":
        wall = int(rng.integers(4))
        other = 1 - wall // 2
        depth = min(rng.uniform(0.4, 0.9), gaps[wall] - BLOCK_CLEARANCE)
        opening, fin = rng.uniform(1.0, 2.0), rng.uniform(0.15, 0.45)
        if depth >= 0.3 and opening + 2 * fin < size[other] - 0.4:
            start = rng.uniform(0.0, size[other] - opening - 2 * fin)
            for s in (start, start + fin + opening):
                blocks.append(_block(size, wall, depth, s, fin))
        else:
            shape = "pillar"
    if shape == "pillar":
        for _ in range(int(rng.integers(1, 3))):
            wall = int(rng.integers(4))
            other = 1 - wall // 2
            depth = min(rng.uniform(0.25, 0.6), gaps[wall] - BLOCK_CLEARANCE)
            width = rng.uniform(0.25, 0.6)
            blocks.append(
                _block(size, wall, depth, rng.uniform(0.3, size[other] - 0.3 - width), width)
            )
    bed_wall = None
    if want_bed:
        free = [w for w in range(4) if not any(touches(size, f, w) for f in blocks)]
        free = free or list(range(4))
        bed_wall = free[int(rng.integers(len(free)))]
        widen(bed_wall, 2.7)
    path_lo = np.array([gaps[0], gaps[2]])
    path_hi = size[:2] - np.array([gaps[1], gaps[3]])
    half = (path_hi - path_lo) / 2
    centre = (path_lo + path_hi) / 2
    path = CameraPath(
        center=(float(centre[0]), float(centre[1])),
        half_size=(float(half[0]), float(half[1])),
        corner_radius=float(rng.uniform(0.3, 0.6) * min(half)),
        look_at=(float(centre[0]), float(centre[1]), float(rng.uniform(0.4, 0.8))),
    )
    return Layout(size, shape, blocks, _segments(size, blocks), path, bed_wall)


def touches(size: np.ndarray, f: Footprint, wall: int) -> bool:
    """Whether block ``f`` touches room wall ``wall`` (0..3: x-, x+, y-, y+)."""
    axis = wall // 2
    return bool(f.hi[axis] >= size[axis] - 1e-6 if wall % 2 else f.lo[axis] <= 1e-6)


def room_faces(b: SceneBuilder, layout: Layout, held_out: bool) -> mat.Surface:
    """The six inside faces (floor, ceiling, walls x-, x+, y-, y+) and the wall blocks; returns
    the walls' surface."""
    rng = b.rng
    size = layout.size
    stone = rng.random() if held_out else -1.0
    floor_opts: tuple[mat.MaterialFamily, ...] = ("wood", "wood", "tiles", "carpet", "weave")
    floor_s = mat.material(
        b, "stone" if 0 <= stone < 0.65 else floor_opts[int(rng.integers(5))], big=True
    )
    wall_opts: tuple[mat.MaterialFamily, ...] = ("plaster", "plaster", "weave", "wood", "fabric")
    paint = b.pick(WALL_PAINTS, 0.05)
    wall_fam = "stone" if stone > 0.35 else wall_opts[int(rng.integers(5))]
    wall_s = mat.material(b, wall_fam, None if wall_fam in ("wood", "stone") else paint, big=True)
    ceil_s = mat.material(b, "plaster", (0.93, 0.93, 0.9), big=True)
    faces = [("floor", (0, 0, 1), floor_s), ("ceiling", (0, 0, -1), ceil_s)]
    faces += [("wall", n, wall_s) for n in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))]
    centre = tuple(float(v) for v in size / 2)
    for name, normal, s in faces:
        inst, part, group = b.new_instance(name), b.new_part(), b.new_group()
        b.prims.append(
            Primitive(
                kind="room",
                center=centre,
                half_extents=tuple(float(v) for v in size / 2),
                yaw=0.0,
                class_id=CLASS_ID[name],
                instance_id=inst,
                part_id=part,
                group_id=group,
                color=s.color,
                color2=s.color2,
                texture=s.texture,
                normal=tuple(float(v) for v in normal),
                name=name,
            )
        )
    for f in layout.blocks:
        c, h = (f.lo + f.hi) / 2, (f.hi - f.lo) / 2
        at = Placement((float(c[0]), float(c[1]), 0.0), 0.0, b.new_group())
        obj = b.new_object("wall", at, label=f"wall_{layout.shape}")
        half = (float(h[0]), float(h[1]), float(size[2] / 2))
        put(b, obj, "box", b.new_part(), "wall/block", (0.0, 0.0, float(size[2] / 2)), half, wall_s)
    return wall_s


def is_room_wall(seg: Segment, wall: int, size: np.ndarray) -> bool:
    """Whether ``seg`` is a piece of room wall ``wall`` (0..3: x-, x+, y-, y+)."""
    axis = wall // 2
    return seg.axis == axis and abs(seg.coord - (size[axis] if wall % 2 else 0.0)) < 1e-6


def aabb(p: Primitive) -> np.ndarray:
    """World bounding box (6,) = lo xyz, hi xyz of a solid."""
    hx, hy = rotated_half(p.yaw, p.half_extents[0], p.half_extents[1])
    c = np.asarray(p.center)
    half = np.array([hx, hy, p.half_extents[2]])
    return np.concatenate([c - half, c + half])


__all__ = [
    "BLOCK_CLEARANCE",
    "MIN_LOOP",
    "ROOM_SHAPES",
    "Layout",
    "Segment",
    "aabb",
    "is_room_wall",
    "make_layout",
    "room_faces",
    "rot",
    "rotated_half",
    "touches",
]
