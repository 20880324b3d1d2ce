"""A second, much more varied procedural indoor world: ``make_varied_scene(seed, held_out=...)``.

Beside ``world.make_scene`` (unchanged), this generator draws, deterministically by seed:

* rooms 4.5-9 m x 4.5-9 m with a ceiling at 2.3-3.5 m, shaped as a plain box, an L (a wall-class
  block fills one corner), an alcove (two wall fins stick out of a wall) or with pillars (small
  wall blocks against the walls). Every wall block has class "wall" and its own part, instance
  and group; blocks stay inside the room box and clear of the camera loop;
* a room type (dining, living, bedroom, office) that decides what stands inside the camera loop
  (a table with chairs, or a sofa with a coffee table, at any yaw, on a rug or not) and along the
  walls (beds with night stands, desks with chairs, sofas, shelves, cabinets, lamps, plants,
  boxes), armchairs / plants / lamps turned towards the room in its corners, doors, windows and
  pictures on the walls, and clutter (cups, bowls, books, vases, balls, boxes, bins; class
  others) on tables and on the floor;
* shape families per class (``furniture_varied``) and material families (``materials``).

Cameras move on ``Scene.path`` (a rounded rectangle 1.1-1.7 m from the walls, more on the side
of a bed or an L-shaped corner); every primitive keeps ``CLEARANCE`` metres from it, so no camera
starts inside an object or a wall block.

Held-out style: ``HELD_OUT_FAMILIES`` names one shape family per class (chair "office", table
"pedestal", bed "bunk", sofa "l_shaped") and one material family ("stone"). With
``held_out=False`` none of them is ever built; with ``held_out=True`` every chair, table, bed and
sofa uses only its held-out family, the floor and/or the walls are stone, and some objects
(table tops, frames, pots, ...) are stone too. Objects of class "others" (doors, rugs, shelves,
...) are shared by both styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from semanticsplat_ros.data import materials as mat
from semanticsplat_ros.data.builder import Footprint, Placement, SceneBuilder
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.furniture_varied import (
    FAMILIES,
    add_bed,
    add_chair,
    add_sofa,
    add_table,
)
from semanticsplat_ros.data.furniture_varied_others import add_clutter, add_other
from semanticsplat_ros.data.scene import Primitive, Scene
from semanticsplat_ros.data.world_varied_layout import (
    ROOM_SHAPES,
    Layout,
    Segment,
    aabb,
    is_room_wall,
    make_layout,
    room_faces,
    rot,
    rotated_half,
)

HELD_OUT_FAMILIES: dict[str, str] = {
    "chair": "office",
    "table": "pedestal",
    "bed": "bunk",
    "sofa": "l_shaped",
    "material": mat.HELD_OUT_MATERIAL,
}
"""Class (or "material") -> the family only ``held_out=True`` scenes use."""

ROOM_TYPES = ("dining", "living", "bedroom", "office")
"""What the room is furnished as."""

CLEARANCE = 0.45
"""Metres every primitive's floor rectangle keeps from the camera loop."""

_SALT = 0x7A21
"""Second seed word (``world.make_scene`` uses another), so the two worlds never share draws."""
_TRIES = 12
"""Random spots tried per object before giving it up."""


class Room:
    """Places objects in a room: an object is kept only if its floor rectangle lies in the
    room, keeps ``CLEARANCE`` from the camera loop, and overlaps no wall block and nothing of
    another group."""

    def __init__(self, b: SceneBuilder, layout: Layout, held_out: bool):
        self.b, self.rng, self.layout, self.held_out = b, b.rng, layout, held_out
        self.size = layout.size
        self.path = layout.path
        self.points = layout.path.point(np.linspace(0.0, 1.0, 400, endpoint=False))
        self.taken: list[tuple[Footprint, int]] = []
        self.tables: list[tuple[Placement, float, tuple[float, float], bool]] = []

    # -- checks -------------------------------------------------------------------------
    def fits(self, fp: Footprint, margin: float = 0.05, group: int = -1, loop: bool = True) -> bool:
        """Whether ``fp`` is in the room, off the loop, off the blocks and off other groups."""
        if np.any(fp.lo < 0.005) or np.any(fp.hi > self.size[:2] - 0.005):
            return False
        if loop and fp.distance_to(self.points) < CLEARANCE:
            return False
        if any(fp.overlaps(blk, 0.0) for blk in self.layout.blocks):
            return False
        return not any(fp.overlaps(o, margin) for o, g in self.taken if g != group)

    def rect_fits(
        self, xy: tuple[float, float], yaw: float, half: tuple[float, float], group: int = -1
    ) -> bool:
        """Quick check of an hx x hy rectangle at ``xy`` turned by ``yaw`` before building."""
        hx, hy = rotated_half(yaw, *half)
        c = np.asarray(xy)
        ext = np.array([hx, hy])
        return self.fits(Footprint(c - ext, c + ext), group=group)

    def build(self, make: Callable[[], object], group: int, margin: float = 0.05) -> bool:
        """Run ``make()``; keep what it added only if it fits (else roll it back)."""
        b = self.b
        state = b.checkpoint()
        make()
        fp = b.footprint(state.num_primitives)
        if len(b.prims) > state.num_primitives and self.fits(fp, margin, group):
            self.taken.append((fp, group))
            return True
        b.rollback(state)
        return False

    def family(self, cls: str, options: tuple[str, ...] | None = None) -> str:
        """A shape family of ``cls``: the held-out one in held-out scenes, else one of
        ``options`` (default all) other than the held-out one."""
        held = HELD_OUT_FAMILIES[cls]
        if self.held_out:
            return held
        opts = [f for f in (options or FAMILIES[cls]) if f != held]
        return opts[int(self.rng.integers(len(opts)))]

    # -- spots ---------------------------------------------------------------------------
    def wall_spot(
        self, depth: float, width: float, segments: list[Segment] | None = None
    ) -> tuple[tuple[float, float], Segment] | None:
        """A random spot ``depth / 2 + 0.02`` m in front of a wall piece long enough for
        ``width``; None if there is none."""
        rng = self.rng
        segs = [s for s in (segments or self.layout.segments) if s.length >= width + 0.1]
        if not segs:
            return None
        lengths = np.array([s.length for s in segs])
        seg = segs[int(rng.choice(len(segs), p=lengths / lengths.sum()))]
        along = rng.uniform(seg.lo + width / 2 + 0.05, seg.hi - width / 2 - 0.05)
        return seg.point(along, depth / 2 + 0.02), seg

    def against_wall(
        self,
        depth: float,
        width: float,
        make: Callable[[Placement], object],
        segments: list[Segment] | None = None,
        yaw_offset: float = 0.0,
    ) -> Placement | None:
        """Build an object (``depth`` x ``width`` m) at random spots along the walls, each in a
        new group, until one fits; its placement, or None."""
        for _ in range(_TRIES):
            spot = self.wall_spot(depth, width, segments)
            if spot is None:
                return None
            xy, seg = spot
            if not self.rect_fits(xy, seg.yaw, (depth / 2, width / 2)):
                continue
            at = Placement((xy[0], xy[1], 0.0), seg.yaw + yaw_offset, self.b.new_group())
            if self.build(lambda at=at: make(at), at.group):
                return at
        return None

    def free_spot(
        self, half: tuple[float, float], make: Callable[[Placement], object], face: bool
    ) -> bool:
        """Build an object at random points of the room (any yaw; facing the loop's centre if
        ``face``) until one fits."""
        rng, size = self.rng, self.size
        for _ in range(_TRIES):
            xy = (rng.uniform(0.1, size[0] - 0.1), rng.uniform(0.1, size[1] - 0.1))
            yaw = rng.uniform(-math.pi, math.pi)
            if face:
                yaw = math.atan2(
                    self.path.center[1] - xy[1], self.path.center[0] - xy[0]
                ) + rng.uniform(-0.4, 0.4)
            if not self.rect_fits(xy, yaw, half):
                continue
            at = Placement((float(xy[0]), float(xy[1]), 0.0), float(yaw), self.b.new_group())
            if self.build(lambda at=at: make(at), at.group):
                return True
        return False

    # -- the middle of the room (inside the loop) --------------------------------------------
    def inner_half(self) -> np.ndarray:
        """Half sizes (x, y) of a rectangle inside the loop whose corners too keep
        ``CLEARANCE`` + 0.08 m from the loop's rounded corners (metres)."""
        c, r = CLEARANCE + 0.08, self.path.corner_radius
        return np.asarray(self.path.half_size) - max(c, r - (r - c) / math.sqrt(2.0))

    def fit_yaw(self, half: tuple[float, float], shrink: float) -> tuple[float, float] | None:
        """A random yaw (aligned with the loop's long side on the last tries) and the scale
        (>= ``shrink``) at which an hx x hy rectangle fits inside the loop; None if none."""
        rng = self.rng
        inner = self.inner_half()
        for attempt in range(4):
            if attempt < 3:
                yaw = float(rng.uniform(-math.pi, math.pi))
            else:
                yaw = 0.0 if inner[0] >= inner[1] else math.pi / 2
            hx, hy = rotated_half(yaw, *half)
            scale = min(1.0, inner[0] / hx, inner[1] / hy)
            if scale >= shrink:
                return yaw, scale
        return None

    def table_group(self, families: tuple[str, ...] = ("rectangular", "round")) -> bool:
        """A table with chairs around it in the middle of the loop, at any yaw."""
        b, rng = self.b, self.rng
        fam = self.family("table", families)
        round_top = fam == "round" or (fam == "pedestal" and rng.random() < 0.5)
        if round_top:
            length = width = float(rng.uniform(0.8, 1.3))
        else:
            length, width = float(rng.uniform(1.0, 2.0)), float(rng.uniform(0.7, 1.0))
        fit = self.fit_yaw((length / 2, width / 2), 0.55 / min(length, width))
        if fit is None:
            return False
        yaw, scale = fit
        length, width = length * scale, width * scale
        group = b.new_group()
        cx, cy = self.path.center
        at = Placement((cx, cy, 0.0), yaw, group)
        height = float(rng.uniform(0.7, 0.78))
        size = (length, width)
        ok = self.build(
            lambda: add_table(
                b, at, fam, size=size, height=height, round_top=round_top, held_out=self.held_out
            ),
            group,
        )
        if not ok:
            return False
        self.tables.append((at, height, (length / 2, width / 2), round_top))
        chair_fam = self.family("chair", ("four_leg", "four_leg", "stool", "armchair"))
        seats: list[tuple[float, float]] = []  # in the table's frame
        gap = float(rng.uniform(0.12, 0.25))
        if round_top:
            n = int(np.clip(int(math.pi * length / 0.62), 2, 6))
            a0 = rng.uniform(0, 2 * math.pi)
            r = length / 2 + gap
            seats = [
                (r * math.cos(a0 + 2 * math.pi * k / n), r * math.sin(a0 + 2 * math.pi * k / n))
                for k in range(n)
            ]
        else:
            per_side = max(1, int(length / 0.62))
            for k in range(per_side):
                x = -length / 2 + length * (k + 0.5) / per_side
                seats += [(x, width / 2 + gap), (x, -width / 2 - gap)]
            seats += [(length / 2 + gap, 0.0), (-length / 2 - gap, 0.0)]
        keep = rng.random(len(seats)) < 0.8
        for (x, y), k in zip(seats, keep, strict=True):
            if not k:
                continue
            dx, dy = rot(yaw, x, y)
            face = math.atan2(-dy, -dx) + float(rng.uniform(-0.15, 0.15))
            chair = Placement((cx + dx, cy + dy, 0.0), face, group)
            self.build(
                lambda chair=chair: add_chair(b, chair, chair_fam, held_out=self.held_out), group
            )
        return True

    def sofa_group(self) -> bool:
        """A sofa facing a coffee table (and maybe an armchair) in the middle of the loop."""
        b, rng = self.b, self.rng
        ho = self.held_out
        fam = self.family("sofa", ("straight", "loose_cushions"))
        length, depth = float(rng.uniform(1.6, 2.4)), float(rng.uniform(0.8, 0.95))
        chaise = float(rng.uniform(1.3, 1.7)) if fam == "l_shaped" else depth
        t_len, t_wid = float(rng.uniform(0.8, 1.3)), float(rng.uniform(0.5, 0.7))
        if fam == "l_shaped":
            t_len = min(t_len, 0.55 * length - 0.2)
        gap = float(rng.uniform(0.35, 0.5))
        total = depth + gap + t_wid
        fit = self.fit_yaw((total / 2, length / 2), 0.8)
        if fit is None:
            return False
        yaw, scale = fit
        length, t_len = length * scale, t_len * scale
        group = b.new_group()
        cx, cy = self.path.center
        dx, dy = rot(yaw, -total / 2 + depth / 2, 0.0)
        sofa_at = Placement((cx + dx, cy + dy, 0.0), yaw, group)

        def sofa() -> None:
            add_sofa(b, sofa_at, fam, length=length, depth=depth, chaise=chaise, held_out=ho)

        if not self.build(sofa, group):
            return False
        y_off = -length / 2 + t_len / 2 + 0.1 if fam == "l_shaped" else 0.0
        tx, ty = rot(yaw, total / 2 - t_wid / 2, y_off)
        t_at = Placement((cx + tx, cy + ty, 0.0), yaw, group)
        t_fam = self.family("table", ("rectangular", "round"))
        t_h = float(rng.uniform(0.38, 0.48))
        t_size = (t_wid, t_len)
        if self.build(
            lambda: add_table(b, t_at, t_fam, size=t_size, height=t_h, held_out=self.held_out),
            group,
        ):
            self.tables.append((t_at, t_h, (t_wid / 2, t_len / 2), t_fam == "round"))
            side = -1 if fam == "l_shaped" else (1 if rng.random() < 0.5 else -1)
            ax, ay = rot(yaw, total / 2 - t_wid / 2, side * (t_len / 2 + 0.6))
            chair = Placement(
                (cx + ax, cy + ay, 0.0),
                yaw - side * math.pi / 2 + float(rng.uniform(-0.3, 0.3)),
                group,
            )
            if rng.random() < 0.6:
                c_fam = self.family("chair", ("armchair",))
                self.build(lambda: add_chair(b, chair, c_fam, held_out=self.held_out), group)
        return True

    def rug(self) -> None:
        """A rug under the middle of the room (inside the loop)."""
        b, rng = self.b, self.rng
        inner = self.inner_half()
        yaw = float(rng.uniform(-math.pi, math.pi)) if rng.random() < 0.4 else 0.0
        hx, hy = rng.uniform(0.6, 1.6), rng.uniform(0.5, 1.2)
        rx, ry = rotated_half(yaw, hx, hy)
        scale = min(1.0, inner[0] / rx, inner[1] / ry)
        if scale * min(hx, hy) < 0.35:
            return
        at = Placement((*self.path.center, 0.0), yaw, b.new_group())
        state = b.checkpoint()
        add_other(b, at, "rug", size=(2 * hx * scale, 2 * hy * scale, 0.01), held_out=self.held_out)
        if b.footprint(state.num_primitives).distance_to(self.points) < CLEARANCE:
            b.rollback(state)

    # -- along the walls (outside the loop) -----------------------------------------------
    def bed(self) -> None:
        """A bed, head against the bed wall (or its long side against any wall), with night
        stands and lamps beside the head."""
        b, rng, ho = self.b, self.rng, self.held_out
        fam = self.family("bed", ("headboard", "platform"))
        width = float(rng.uniform(0.9, 1.0) if fam == "bunk" else rng.uniform(0.9, 1.7))
        length = float(rng.uniform(1.95, 2.1))
        wall = self.layout.bed_wall
        segs = [
            s for s in self.layout.segments if wall is not None and is_room_wall(s, wall, self.size)
        ]
        make = lambda at: add_bed(b, at, fam, width=width, length=length, held_out=ho)  # noqa: E731
        at = self.against_wall(length + 0.1, width + 0.2, make, segs or None) if segs else None
        if at is None and width < 1.3:  # long side against a wall
            side = math.pi / 2 if rng.random() < 0.5 else -math.pi / 2
            self.against_wall(width + 0.2, length + 0.1, make, None, side)
            return
        if at is None:
            return
        for side in (-1, 1):
            if rng.random() < 0.6:
                dx, dy = rot(at.yaw, -length / 2 + 0.2, side * (width / 2 + 0.35))
                stand = Placement((at.origin[0] + dx, at.origin[1] + dy, 0.0), at.yaw, at.group)
                h = float(rng.uniform(0.45, 0.6))
                if self.build(
                    lambda st=stand, h=h: add_other(
                        b, st, "cabinet", size=(0.38, 0.44, h), held_out=ho
                    ),
                    at.group,
                ):
                    lamp = Placement((stand.origin[0], stand.origin[1], h), 0.0, at.group)
                    if rng.random() < 0.7:
                        add_other(b, lamp, "table_lamp", size=(0.3, 0.3, 0.45), held_out=ho)

    def desk(self) -> None:
        """A desk against a wall with a chair tucked in front of it."""
        b, rng, ho = self.b, self.rng, self.held_out
        fam = self.family("table", ("desk", "desk", "rectangular"))
        d, w = float(rng.uniform(0.55, 0.75)), float(rng.uniform(1.0, 1.6))
        h = float(rng.uniform(0.72, 0.78))
        at = self.against_wall(
            d, w, lambda at: add_table(b, at, fam, size=(d, w), height=h, held_out=ho)
        )
        if at is None:
            return
        self.tables.append((at, h, (d / 2, w / 2), False))
        chair_fam = self.family("chair", ("four_leg", "stool"))
        dx, dy = rot(at.yaw, d / 2 + 0.12, float(rng.uniform(-0.15, 0.15)) * w)
        chair = Placement(
            (at.origin[0] + dx, at.origin[1] + dy, 0.0),
            at.yaw + math.pi + float(rng.uniform(-0.4, 0.4)),
            at.group,
        )
        self.build(lambda: add_chair(b, chair, chair_fam, held_out=ho), at.group)

    def wall_sofa(self) -> None:
        """A sofa with its back to a wall."""
        b, rng = self.b, self.rng
        ho = self.held_out
        fam = self.family("sofa", ("straight", "loose_cushions"))
        length, depth = float(rng.uniform(1.5, 2.2)), float(rng.uniform(0.8, 0.95))
        chaise = float(rng.uniform(1.2, 1.5))
        reach = chaise if fam == "l_shaped" else depth

        def make(at: Placement) -> None:
            add_sofa(b, at, fam, length=length, depth=depth, chaise=chaise, held_out=ho)

        # The sofa's origin is its centre; an l_shaped chaise reaches further out.
        extra = reach - depth
        self.against_wall(depth + 2 * extra, length, lambda at: make(_shift(at, -extra)))

    def wall_objects(self, n: int) -> None:
        """``n`` objects of class others (shelves, cabinets, lamps, plants, boxes) along walls."""
        b, rng, ho = self.b, self.rng, self.held_out
        top = float(self.size[2]) - 0.25
        for _ in range(n):
            kind = ("shelves", "cabinet", "floor_lamp", "plant", "boxes", "cabinet")[
                int(rng.integers(6))
            ]
            if kind == "shelves":
                size = (
                    rng.uniform(0.28, 0.4),
                    rng.uniform(0.6, 1.4),
                    min(top, rng.uniform(1.2, 2.1)),
                )
            elif kind == "cabinet":
                size = (rng.uniform(0.4, 0.55), rng.uniform(0.5, 1.3), rng.uniform(0.5, 1.2))
            elif kind == "floor_lamp":
                size = (0.4, 0.4, min(top - 0.3, rng.uniform(1.3, 1.65)))
            elif kind == "plant":
                w = rng.uniform(0.5, 0.85)
                size = (w, w, 1.0)
            else:
                size = (rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6), 0.5)
            size = tuple(float(v) for v in size)
            at = self.against_wall(
                size[0],
                size[1],
                lambda at, k=kind, s=size: add_other(b, at, k, size=s, held_out=ho),
            )
            if at is not None and kind == "cabinet" and rng.random() < 0.5:
                self.tables.append((at, size[2], (size[0] / 2, size[1] / 2), False))

    def corners(self) -> None:
        """Armchairs, plants, lamps or boxes near the room's corners, turned towards the room."""
        b, rng, ho = self.b, self.rng, self.held_out
        sx, sy = self.size[:2]
        for x0, y0 in ((0.0, 0.0), (sx, 0.0), (0.0, sy), (sx, sy)):
            if rng.random() > 0.45:
                continue
            kind = ("chair", "plant", "floor_lamp", "boxes")[int(rng.integers(4))]
            half = 0.45 if kind == "chair" else 0.32
            off = half + 0.08 + rng.uniform(0.0, 0.25, 2)
            xy = (x0 + (off[0] if x0 == 0 else -off[0]), y0 + (off[1] if y0 == 0 else -off[1]))
            yaw = math.atan2(
                self.path.center[1] - xy[1], self.path.center[0] - xy[0]
            ) + rng.uniform(-0.5, 0.5)
            if not self.rect_fits(xy, yaw, (half, half)):
                continue
            at = Placement((float(xy[0]), float(xy[1]), 0.0), float(yaw), b.new_group())
            if kind == "chair":
                fam = self.family("chair", ("armchair", "four_leg"))
                self.build(lambda at=at, f=fam: add_chair(b, at, f, held_out=ho), at.group)
            else:
                size = (0.6, 0.6, 1.5) if kind != "boxes" else (0.5, 0.5, 0.5)
                self.build(
                    lambda at=at, k=kind, s=size: add_other(b, at, k, size=s, held_out=ho), at.group
                )

    def doors(self) -> None:
        """Zero to two doors; the floor in front of each is kept free."""
        b, rng = self.b, self.rng
        for _ in range(int(rng.choice(3, p=[0.2, 0.6, 0.2]))):
            w, h = (
                float(rng.uniform(0.8, 0.95)),
                float(min(rng.uniform(2.0, 2.15), self.size[2] - 0.15)),
            )
            spot = self.wall_spot(0.9, w + 0.2)
            if spot is None:
                return
            xy, seg = spot
            swing = Footprint(
                np.asarray(xy) - rotated_half(seg.yaw, 0.45, w / 2 + 0.1),
                np.asarray(xy) + rotated_half(seg.yaw, 0.45, w / 2 + 0.1),
            )
            if any(swing.overlaps(blk, 0.0) for blk in self.layout.blocks) or any(
                swing.overlaps(o, 0.05) for o, _ in self.taken
            ):
                continue
            wx, wy = seg.point(xy[1] if seg.axis == 0 else xy[0], 0.001)
            at = Placement((wx, wy, 0.0), seg.yaw, b.new_group())
            add_other(b, at, "door", size=(0.03, w, h), held_out=self.held_out)
            self.taken.append((swing, at.group))

    def hang(self, kind: str, n: int) -> None:
        """``n`` windows or pictures on the walls, each clear of every object (in 3D)."""
        b, rng = self.b, self.rng
        boxes = np.array(
            [aabb(p) for p in b.prims if p.kind != "room" and p.class_id != CLASS_ID["wall"]]
            or np.zeros((0, 6))
        )
        for _ in range(n):
            if kind == "window":
                w, h = rng.uniform(0.7, 1.8), rng.uniform(0.9, 1.5)
                z = rng.uniform(0.75, 1.0) + h / 2
            else:
                w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
                z = rng.uniform(1.2, 1.8)
            if z + h / 2 > self.size[2] - 0.15:
                continue
            for _ in range(4):
                spot = self.wall_spot(0.0, w)
                if spot is None:
                    return
                _, seg = spot
                along = spot[0][1] if seg.axis == 0 else spot[0][0]
                lo, hi = (
                    np.array([*seg.point(along - w / 2, 0.0), z - h / 2]),
                    np.array([*seg.point(along + w / 2, 0.08), z + h / 2]),
                )
                lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
                if len(boxes) and np.any(
                    np.all((boxes[:, :3] < hi + 0.03) & (boxes[:, 3:] > lo - 0.03), axis=1)
                ):
                    continue
                wx, wy = seg.point(along, 0.001)
                at = Placement((wx, wy, float(z)), seg.yaw, b.new_group())
                add_other(
                    b,
                    at,
                    kind,
                    size=(0.04 if kind == "window" else 0.03, float(w), float(h)),
                    held_out=self.held_out,
                )
                boxes = np.concatenate([boxes, np.concatenate([lo, hi])[None]])
                break

    # -- clutter -------------------------------------------------------------------------
    def table_clutter(self) -> None:
        """One to four small items on each table top (and on some cabinets)."""
        b, rng = self.b, self.rng
        for at, top, (hx, hy), round_top in self.tables:
            placed: list[tuple[float, float, float]] = []
            for _ in range(int(rng.integers(0, 5))):
                kind = ("cup", "bowl", "book", "vase", "box", "cup")[int(rng.integers(6))]
                if round_top:
                    r, a = hx * 0.6 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
                    x, y = r * math.cos(a), r * math.sin(a)
                else:
                    mx, my = max(hx - 0.14, 0.0), max(hy - 0.14, 0.0)
                    x, y = rng.uniform(-mx, mx), rng.uniform(-my, my)
                if any(math.hypot(x - px, y - py) < pr + 0.2 for px, py, pr in placed):
                    continue
                dx, dy = rot(at.yaw, x, y)
                item = Placement(
                    (at.origin[0] + dx, at.origin[1] + dy, top),
                    float(rng.uniform(-math.pi, math.pi)),
                    at.group,
                )
                state = b.checkpoint()
                radius = add_clutter(b, item, kind, held_out=self.held_out)
                if self.fits(b.footprint(state.num_primitives), 0.0, at.group):
                    placed.append((x, y, radius))
                else:
                    b.rollback(state)

    def floor_clutter(self, n: int) -> None:
        """``n`` small items (boxes, balls, bins) on the floor, anywhere they fit."""
        b, rng = self.b, self.rng
        for _ in range(n):
            kind = ("ball", "bin", "box", "box")[int(rng.integers(4))]
            self.free_spot(
                (0.2, 0.2), lambda at, k=kind: add_clutter(b, at, k, held_out=self.held_out), False
            )


def _shift(at: Placement, forward: float) -> Placement:
    """``at`` moved ``forward`` metres along its heading."""
    dx, dy = rot(at.yaw, forward, 0.0)
    return Placement((at.origin[0] + dx, at.origin[1] + dy, at.origin[2]), at.yaw, at.group)


def _renumber(
    prims: list[Primitive], names: dict[int, str]
) -> tuple[list[Primitive], dict[int, str]]:
    """Instance, part and group ids made contiguous from 0 in order of first use."""
    inst_map: dict[int, int] = {}
    part_map: dict[int, int] = {}
    group_map: dict[int, int] = {}
    out = []
    for p in prims:
        inst = inst_map.setdefault(p.instance_id, len(inst_map))
        part = part_map.setdefault(p.part_id, len(part_map))
        group = group_map.setdefault(p.group_id, len(group_map))
        out.append(replace(p, instance_id=inst, part_id=part, group_id=group))
    return out, {new: names.get(old, "") for old, new in inst_map.items()}


def _furnish(room: Room, kind: str) -> None:
    """Everything after the room faces, in a fixed order of draws."""
    rng = room.rng
    room.doors()
    if kind == "bedroom":
        room.bed()
    if rng.random() < 0.45:
        room.rug()
    if kind == "living":
        if not room.sofa_group():
            room.table_group()
    elif kind in ("dining", "office") or rng.random() < 0.35:
        room.table_group(("rectangular", "round") if kind != "office" else ("rectangular",))
    if kind in ("office", "bedroom") and rng.random() < (0.9 if kind == "office" else 0.4):
        room.desk()
    if rng.random() < (0.3 if kind == "living" else 0.25):
        room.wall_sofa()
    room.wall_objects(int(rng.integers(2, 6)))
    room.corners()
    room.floor_clutter(int(rng.integers(0, 4)))
    room.table_clutter()
    room.hang("window", int(rng.integers(0, 3)))
    room.hang("picture", int(rng.integers(0, 4)))


def make_varied_scene(seed: int, *, held_out: bool = False) -> Scene:
    """Generate the varied furnished room for ``seed`` (deterministic: same seed and style,
    same scene). ``held_out`` selects the held-out style (see the module docstring).

    Raises ValueError for a seed that is not a non-negative int.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not isinstance(held_out, bool):
        raise ValueError(f"held_out must be a bool, got {held_out!r}")
    rng = np.random.default_rng([int(seed), _SALT, int(held_out)])
    b = SceneBuilder(rng)
    size = np.array([rng.uniform(4.5, 9.0), rng.uniform(4.5, 9.0), rng.uniform(2.3, 3.5)])
    kind = ROOM_TYPES[int(rng.integers(len(ROOM_TYPES)))]
    layout = make_layout(rng, size, want_bed=kind == "bedroom")
    room_faces(b, layout, held_out)
    _furnish(Room(b, layout, held_out), kind)
    prims, names = _renumber(b.prims, b.instance_names)

    # Key light from above at a random azimuth, a weaker fill light from the other side.
    az = rng.uniform(0, 2 * math.pi)
    el = rng.uniform(math.radians(35), math.radians(75))
    light = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    fill_az = az + math.pi + rng.uniform(-0.6, 0.6)
    fill = np.array([math.cos(fill_az), math.sin(fill_az), rng.uniform(0.2, 0.6)])
    fill /= np.linalg.norm(fill)
    return Scene(
        seed=int(seed),
        room_min=(0.0, 0.0, 0.0),
        room_max=tuple(float(v) for v in size),
        primitives=prims,
        light_dir=tuple(float(v) for v in light),
        fill_dir=tuple(float(v) for v in fill),
        ambient=float(rng.uniform(0.3, 0.48)),
        path=layout.path,
        instance_names=names,
    )


__all__ = [
    "CLEARANCE",
    "HELD_OUT_FAMILIES",
    "ROOM_SHAPES",
    "ROOM_TYPES",
    "Layout",
    "Room",
    "Segment",
    "make_varied_scene",
]
