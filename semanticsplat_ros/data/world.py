"""Procedural indoor scenes built from analytic primitives, deterministic by seed: ``make_scene``.

World frame: metres, z up (REP-103); the types and the segmentation id hierarchy are in
``data/scene.py``. A room is a box from the origin to its size, floor at z = 0. Cameras
(``data/rigs.py``) move along ``Scene.path``, a closed loop kept clear of furniture, so that no
camera ever starts inside an object. A table group stands inside the loop; the rest of the
furniture (``data/furniture.py``) stands along the walls, outside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from enum import IntEnum

import numpy as np

from semanticsplat_ros.data.builder import (
    FABRICS,
    WALL_PAINTS,
    WOODS,
    Footprint,
    Placement,
    SceneBuilder,
    shade,
)
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.furniture import (
    BED_LENGTH,
    OtherKind,
    add_bed,
    add_chair,
    add_night_stand_with_lamp,
    add_other,
    add_round_table,
    add_sofa,
    add_table,
)
from semanticsplat_ros.data.scene import CameraPath, Primitive, Scene, Texture, Vec3


class Wall(IntEnum):
    """The four walls, in the order of the room faces after floor and ceiling."""

    X_MIN = 0
    X_MAX = 1
    Y_MIN = 2
    Y_MAX = 3


_WALL_YAW = (0.0, math.pi, math.pi / 2, -math.pi / 2)
"""Yaw of an object standing against each ``Wall`` facing the room (its local +x inwards)."""

CLEARANCE = 0.42
"""Metres every object keeps from the camera loop."""

_WALL_OBJECTS: dict[OtherKind, tuple[float, float]] = {
    "floor_lamp": (0.42, 0.42),
    "plant": (0.85, 0.85),
    "boxes": (0.62, 0.62),
    "cabinet": (0.47, 1.02),
    "bookshelf": (0.34, 1.0),
}
"""Objects of class "others" standing along the walls -> (depth, width) reserved at the wall,
metres."""

_PLACEMENT_TRIES = 30
"""Random wall spots tried for each wall object before giving it up."""


def _rot(yaw: float, x: float, y: float) -> tuple[float, float]:
    c, s = math.cos(yaw), math.sin(yaw)
    return c * x - s * y, s * x + c * y


def _room_faces(b: SceneBuilder, lo: np.ndarray, hi: np.ndarray) -> None:
    """The six inside faces of the room box ``lo .. hi``: floor, ceiling, walls x-, x+, y-, y+."""
    rng = b.rng
    centre = tuple(float(v) for v in (lo + hi) / 2)
    paint = b.pick(WALL_PAINTS, 0.04)
    floor_style = int(rng.integers(3))
    floor_col = b.pick(WOODS, 0.08)
    if floor_style == 0:  # wooden planks
        floor_tex = Texture(
            stripe_freq=(0.0, rng.uniform(3.0, 5.0), 0.0),
            warp_freq=(rng.uniform(0.5, 1.5), 0.0, 0.0),
            warp_amp=1.2,
            stripe_amp=0.7,
            **b.noise(0.3, 1.5, 0.3),
        )
        floor_col2 = shade(floor_col, 0.7)
    elif floor_style == 1:  # tiles
        floor_col = b.jitter((0.75, 0.73, 0.7), 0.1)
        floor_col2 = shade(floor_col, 0.65)
        floor_tex = Texture(
            checker_size=float(rng.uniform(0.4, 0.6)), checker_amp=0.8, **b.noise(0.3, 1.5, 0.2)
        )
    else:  # carpet
        floor_col = b.pick(FABRICS, 0.08)
        floor_col2 = shade(floor_col, 0.7)
        floor_tex = Texture(**b.noise(0.5, 2.0, 0.8))
    ceiling = b.jitter((0.93, 0.93, 0.9), 0.03)
    faces = [
        ("floor", (0, 0, 1), floor_col, floor_col2, floor_tex),
        ("ceiling", (0, 0, -1), ceiling, shade(ceiling, 0.9), Texture(**b.noise(0.3, 1, 0.3))),
    ]
    wallpaper = rng.random() < 0.4
    for n in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)):  # inward normals of x-, x+, y-, y+
        if wallpaper:
            tex = Texture(
                stripe_freq=(n[1] * 3.0, n[0] * 3.0, 0.0),
                stripe_amp=0.35,
                **b.noise(0.3, 1.5, 0.35),
            )
        else:
            tex = Texture(**b.noise(0.3, 1.5, 0.6))
        faces.append(("wall", n, paint, shade(paint, 0.8), tex))
    for name, normal, col, col2, tex in faces:
        inst = b.new_instance(name)
        part, group = b.new_part(), b.new_group()
        b.prims.append(
            Primitive(
                kind="room",
                center=centre,
                half_extents=tuple(float(v) for v in (hi - lo) / 2),
                yaw=0.0,
                class_id=CLASS_ID[name],
                instance_id=inst,
                part_id=part,
                group_id=group,
                color=col,
                color2=col2,
                texture=tex,
                normal=tuple(float(v) for v in normal),
                name=name,
            )
        )


def _camera_loop(rng: np.random.Generator, size: np.ndarray) -> tuple[CameraPath, Wall | None]:
    """The camera loop (a rounded rectangle 1.3-1.6 m from the walls) and the wall a bed will
    stand against (the loop keeps 2.6 m from it), if any."""
    gaps = rng.uniform(1.3, 1.6, 4)  # to walls x-, x+, y-, y+
    bed_wall = None
    if rng.random() < 0.6:
        wall = Wall(int(rng.integers(4)))
        axis = wall // 2
        trial = gaps.copy()
        trial[wall] = 2.6
        if size[axis] - trial[2 * axis] - trial[2 * axis + 1] >= 1.9:
            gaps, bed_wall = trial, wall
    path_lo = np.array([gaps[0], gaps[2]])
    path_hi = size[:2] - np.array([gaps[1], gaps[3]])
    half = np.maximum((path_hi - path_lo) / 2, 0.8)
    centre = (path_lo + path_hi) / 2
    corner = float(rng.uniform(0.3, 0.6) * min(half))
    path = CameraPath(
        center=(float(centre[0]), float(centre[1])),
        half_size=(float(half[0]), float(half[1])),
        corner_radius=corner,
        look_at=(float(centre[0]), float(centre[1]), 0.6),
    )
    return path, bed_wall


class _Furnisher:
    """Places furniture in a room: keeps an object only if it stays inside the room, keeps
    ``CLEARANCE`` from the camera loop and does not overlap what is already there."""

    def __init__(self, b: SceneBuilder, size: np.ndarray, path: CameraPath):
        self.b = b
        self.rng = b.rng
        self.size = size
        self.path = path
        self.path_points = path.point(np.linspace(0.0, 1.0, 240, endpoint=False))
        self.footprints: list[Footprint] = []

    def fits(self, fp: Footprint, margin: float = 0.05) -> bool:
        """Whether ``fp`` lies in the room, off the loop, and ``margin`` metres from the rest."""
        if np.any(fp.lo < 0.005) or np.any(fp.hi > self.size[:2] - 0.005):
            return False
        if fp.distance_to(self.path_points) < CLEARANCE:
            return False
        return not any(fp.overlaps(o, margin) for o in self.footprints)

    def try_build(self, build: Callable[[], None], margin: float = 0.05) -> bool:
        """Run ``build()``; keep what it added only if it fits (else roll it back)."""
        b = self.b
        state = b.checkpoint()
        build()
        fp = b.footprint(state.num_primitives)
        if len(b.prims) > state.num_primitives and self.fits(fp, margin):
            self.footprints.append(fp)
            return True
        b.rollback(state)
        return False

    def wall_spot(self, depth: float, width: float, wall: Wall | None = None) -> tuple[Vec3, float]:
        """Random spot (origin, yaw) flush against ``wall`` (a random one if None) for an object
        ``depth`` x ``width`` metres; the object's local +x faces into the room."""
        rng, size = self.rng, self.size
        wall = Wall(int(rng.integers(4))) if wall is None else wall
        if wall in (Wall.X_MIN, Wall.X_MAX):
            y = rng.uniform(width / 2 + 0.05, size[1] - width / 2 - 0.05)
            x = depth / 2 + 0.02 if wall == Wall.X_MIN else size[0] - depth / 2 - 0.02
        else:
            x = rng.uniform(width / 2 + 0.05, size[0] - width / 2 - 0.05)
            y = depth / 2 + 0.02 if wall == Wall.Y_MIN else size[1] - depth / 2 - 0.02
        return (float(x), float(y), 0.0), _WALL_YAW[wall]

    def against_wall(
        self,
        depth: float,
        width: float,
        build: Callable[[Placement], None],
        wall: Wall | None = None,
    ) -> Placement | None:
        """Build an object at random spots along a wall (``wall_spot``), each in a new group,
        until one fits; where it went, or None when no try fitted."""
        for _ in range(_PLACEMENT_TRIES):
            origin, yaw = self.wall_spot(depth, width, wall)
            at = Placement(origin, yaw, self.b.new_group())
            if self.try_build(lambda at=at: build(at)):
                return at
        return None

    # -- the centre of the room (inside the loop) ---------------------------------------------
    def centre_group(self) -> None:
        """A dining group (a table and 2-4 chairs; 80%) or a coffee table inside the loop."""
        b, rng, path = self.b, self.rng, self.path
        centre = (path.center[0], path.center[1], 0.0)
        group = b.new_group()
        half = np.asarray(path.half_size)
        inner = half - CLEARANCE
        along_x = half[0] >= half[1]
        yaw = 0.0 if along_x else math.pi / 2
        long_in = inner[0] if along_x else inner[1]
        if rng.random() < 0.8:
            self._dining_group(centre, yaw, group, inner, along_x)
            return
        length = float(np.clip(rng.uniform(0.8, 1.2), 0.6, 2 * long_in))
        width = float(rng.uniform(0.5, 0.7))
        height = float(rng.uniform(0.4, 0.46))
        at = Placement(centre, yaw, group)
        self.try_build(lambda: add_table(b, at, size=(length, width), height=height))

    def _dining_group(
        self, centre: Vec3, yaw: float, group: int, inner: np.ndarray, along_x: bool
    ) -> None:
        """A round (30%) or long table at ``centre`` with up to four chairs around it; ``inner``
        (2,) is the loop's half size less the clearance (metres)."""
        b, rng = self.b, self.rng
        cx, cy = centre[0], centre[1]
        long_in, short_in = (inner[0], inner[1]) if along_x else (inner[1], inner[0])
        height = float(rng.uniform(0.72, 0.78))
        if rng.random() < 0.3:
            radius = float(np.clip(min(inner) - 0.15, 0.35, 0.6))
            at = Placement(centre, 0.0, group)
            table_ok = self.try_build(lambda: add_round_table(b, at, radius=radius, height=height))
            n = int(rng.integers(2, 5))
            a0 = rng.uniform(0, 2 * math.pi)
            polar = [(radius + 0.25, a0 + k * 2 * math.pi / n) for k in range(n)]
            seats = [
                ((cx + r * math.cos(a), cy + r * math.sin(a), 0.0), a + math.pi) for r, a in polar
            ]
        else:
            length = float(np.clip(rng.uniform(1.0, 1.6), 0.8, 2 * long_in - 0.1))
            width = float(np.clip(rng.uniform(0.7, 0.95), 0.6, 2 * short_in - 0.1))
            at = Placement(centre, yaw, group)
            table_ok = self.try_build(lambda: add_table(b, at, size=(length, width), height=height))
            seats = []
            for x, side in ((-length / 4, 1), (length / 4, 1), (-length / 4, -1), (length / 4, -1)):
                dx, dy = _rot(yaw, x, side * (width / 2 + 0.2))
                seats.append(((cx + dx, cy + dy, 0.0), yaw - side * math.pi / 2))
            for side in (1, -1):  # chairs at the ends
                dx, dy = _rot(yaw, side * (length / 2 + 0.2), 0.0)
                seats.append(((cx + dx, cy + dy, 0.0), yaw + (math.pi if side > 0 else 0.0)))
            seats = [seats[k] for k in rng.permutation(len(seats))]
        placed = 0
        for origin, chair_yaw in seats if table_ok else []:
            jitter = float(rng.uniform(-0.2, 0.2))
            at = Placement(origin, chair_yaw + jitter, group)
            # Chairs tuck under the table: their footprints may overlap it by 0.12 m.
            if self.try_build(lambda at=at: add_chair(b, at), margin=-0.12):
                placed += 1
            if placed >= 4:
                break

    # -- along the walls (outside the loop) ---------------------------------------------------
    def wall_furniture(self, bed_wall: Wall | None) -> None:
        """A bed (with a night stand and lamp) against ``bed_wall``, maybe a sofa and a lone
        chair, 2-5 other objects, and 1-3 paintings hanging above."""
        b, rng = self.b, self.rng
        if bed_wall is not None:
            width = float(rng.uniform(0.9, 1.6))
            bed = self.against_wall(
                BED_LENGTH, width, lambda at: add_bed(b, at, width=width), bed_wall
            )
            if bed is not None:
                # A night stand with a table lamp beside the head of the bed, if there is room.
                side = 1 if rng.random() < 0.5 else -1
                dx, dy = _rot(bed.yaw, -BED_LENGTH / 2 + 0.22, side * (width / 2 + 0.32))
                stand = Placement((bed.origin[0] + dx, bed.origin[1] + dy, 0.0), bed.yaw, bed.group)
                self.try_build(lambda: add_night_stand_with_lamp(b, stand), margin=0.0)
        if rng.random() < 0.6:
            length = float(rng.uniform(1.6, 2.2))
            self.against_wall(0.95, length, lambda at: add_sofa(b, at, length=length))
        if rng.random() < 0.5:  # a lone chair against a wall (desk chair, reading chair)
            self.against_wall(0.6, 0.6, lambda at: add_chair(b, at))
        kinds = tuple(_WALL_OBJECTS)
        for _ in range(int(rng.integers(2, 6))):
            kind = kinds[int(rng.integers(len(kinds)))]
            self.against_wall(*_WALL_OBJECTS[kind], lambda at, k=kind: add_other(b, k, at))
        for _ in range(int(rng.integers(1, 4))):  # paintings hang on walls, above most furniture
            wall = Wall(int(rng.integers(4)))
            z = float(rng.uniform(1.45, min(1.9, self.size[2] - 0.5)))
            (x, y, _), yaw = self.wall_spot(0.03, 1.6, wall)
            add_other(b, "painting", Placement((x, y, z), yaw, b.new_group()))


def _renumber(
    prims: list[Primitive], names: dict[int, str]
) -> tuple[list[Primitive], dict[int, str]]:
    """Make instance, part and group ids contiguous (0, 1, ...) in order of first use."""
    maps: tuple[dict[int, int], dict[int, int], dict[int, int]] = ({}, {}, {})
    out = []
    for p in prims:
        inst, part, group = (
            m.setdefault(i, len(m))
            for m, i in zip(maps, (p.instance_id, p.part_id, p.group_id), strict=True)
        )
        out.append(replace(p, instance_id=inst, part_id=part, group_id=group))
    return out, {new: names.get(old, "") for old, new in maps[0].items()}


def make_scene(seed: int) -> Scene:
    """Generate the furnished room for ``seed`` (deterministic: same seed, same scene).

    The room is 5.2-8 m × 4.8-7 m × 2.5-3.0 m. Cameras move on a loop 1.3-1.6 m from the walls
    (2.6 m on the side of a bed). A dining group (a table and 2-4 chairs) or a coffee table
    stands inside the loop; beds, sofas, cabinets, shelves, lamps, plants, boxes and paintings
    stand along the walls, outside it. Every object keeps 0.42 m from the loop.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([int(seed), 0x5E55])
    b = SceneBuilder(rng)
    size = np.array([rng.uniform(5.2, 8.0), rng.uniform(4.8, 7.0), rng.uniform(2.5, 3.0)])
    lo = np.zeros(3)
    _room_faces(b, lo, size)
    path, bed_wall = _camera_loop(rng, size)
    furnisher = _Furnisher(b, size, path)
    furnisher.centre_group()
    furnisher.wall_furniture(bed_wall)
    prims, names = _renumber(b.prims, b.instance_names)

    # Key light from above at a random azimuth, fill light from the other side.
    az = rng.uniform(0, 2 * math.pi)
    el = rng.uniform(math.radians(45), math.radians(70))
    light = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    fill = np.array([-math.cos(az), -math.sin(az), 0.35])
    fill /= np.linalg.norm(fill)
    return Scene(
        seed=int(seed),
        room_min=tuple(float(v) for v in lo),
        room_max=tuple(float(v) for v in size),
        primitives=prims,
        light_dir=tuple(float(v) for v in light),
        fill_dir=tuple(float(v) for v in fill),
        ambient=float(rng.uniform(0.35, 0.45)),
        path=path,
        instance_names=names,
    )
