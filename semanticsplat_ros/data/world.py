"""Procedural indoor scenes built from analytic primitives, deterministic by seed.

World frame: metres, z up (REP-103). A room spans ``room_min .. room_max`` with the floor at
``z = room_min[2]``. Cameras (``data/rigs.py``) move along ``Scene.path``, a closed loop kept
clear of furniture, so that no camera ever starts inside an object.

Every primitive carries four ids that give the segmentation hierarchy:

* ``class_id``    index into ``CLASS_NAMES`` (wall, floor, ceiling, chair, table, bed, sofa, others);
* ``part_id``     small masks: chair seat / back / legs, table top / legs, bed frame / mattress /
                  pillow, sofa base / back / arms, lamp stand / shade, plant pot / foliage, ...;
* ``instance_id`` medium masks: one object;
* ``group_id``    large masks: objects arranged together (a table with its chairs, a bed with
                  its night stand and lamp, a sofa with its coffee table).

Ids are unique within a scene and start at 0; the six room faces come first (floor 0, ceiling 1,
walls 2..5), each its own part, instance and group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from semanticsplat_ros.data.classes import CLASS_ID

KIND_BOX = 0
KIND_CYLINDER = 1
KIND_SPHERE = 2
KIND_ROOM_FACE = 3
KIND_IDS = {
    "box": KIND_BOX,
    "cylinder": KIND_CYLINDER,
    "sphere": KIND_SPHERE,
    "room": KIND_ROOM_FACE,
}

NUM_ROOM_FACES = 6
TEXTURE_DIM = 23
"""Length of a packed ``Texture`` (see ``Texture.pack``)."""


@dataclass(frozen=True)
class Texture:
    """Smooth procedural texture: a weight w in [0, 1] mixes ``color`` (w=0) and ``color2`` (w=1).

    w = 0.5 + 0.5 * clip(v, -1, 1), with v the sum of three terms evaluated at the hit point in the
    primitive's local frame (metres): smooth noise, warped stripes (wood grain, wallpaper, book
    spines) and a soft checker (floor tiles). Frequencies are cycles per metre and kept low (a few
    cycles per object) so that multi-view matching has signal without pixel-level noise.
    """

    noise_freqs: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),) * 3
    """Three wave vectors (cycles/m) of the smooth noise, a sum of sinusoids."""
    noise_phase: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Phases (radians) of the three noise waves."""
    noise_amp: float = 0.0
    """Amplitude of the noise term (the mean of the three waves)."""
    stripe_freq: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Wave vector (cycles/m) of the stripes."""
    warp_freq: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Wave vector (cycles/m) of the stripes' phase warp (wood grain wobble)."""
    warp_amp: float = 0.0
    """Phase warp amplitude in radians."""
    stripe_amp: float = 0.0
    """Amplitude of the stripe term."""
    checker_size: float = 1.0
    """Checker cell size in metres (local x, y)."""
    checker_amp: float = 0.0
    """Amplitude of the soft checker term."""

    def pack(self) -> list[float]:
        """The texture as TEXTURE_DIM floats (the layout ``raycast.shade`` reads)."""
        out = [c for f in self.noise_freqs for c in f]
        out += [*self.noise_phase, self.noise_amp, *self.stripe_freq, *self.warp_freq]
        out += [self.warp_amp, self.stripe_amp, self.checker_size, self.checker_amp]
        return out


@dataclass(frozen=True)
class Primitive:
    """One analytic solid (or one inside face of the room) with its appearance and ids."""

    kind: str
    """"box" | "cylinder" (axis along local z) | "sphere" | "room" (an inside face of the room)."""
    center: tuple[float, float, float]
    """Centre in world coordinates (metres)."""
    half_extents: tuple[float, float, float]
    """Box: half sizes along local x, y, z; cylinder: (radius, radius, half height); sphere:
    (radius, radius, radius); room face: unused (the room bounds define it)."""
    yaw: float
    """Rotation about world z (radians) from local to world axes."""
    class_id: int
    """Index into CLASS_NAMES."""
    instance_id: int
    """Object id (medium masks)."""
    part_id: int
    """Part id (small masks)."""
    group_id: int
    """Group id (large masks)."""
    color: tuple[float, float, float]
    """Albedo (RGB in [0, 1]) where the texture weight is 0."""
    color2: tuple[float, float, float]
    """Albedo where the texture weight is 1."""
    texture: Texture = field(default_factory=Texture)
    """Procedural texture mixing ``color`` and ``color2``."""
    normal: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Room faces only: the inward unit normal."""
    name: str = ""
    """Human-readable "object/part" name, e.g. "chair_3/seat"."""


@dataclass(frozen=True)
class CameraPath:
    """A closed loop (rounded rectangle) at which cameras may stand: clear of all furniture."""

    center: tuple[float, float]
    """Loop centre (x, y) in metres."""
    half_size: tuple[float, float]
    """Half sizes (x, y) of the rounded rectangle, metres."""
    corner_radius: float
    """Corner radius, metres."""
    look_at: tuple[float, float, float]
    """A point cameras mostly look towards (the centre furniture), metres."""

    def perimeter(self) -> float:
        ax, ay = self.half_size
        r = self.corner_radius
        return 4.0 * (ax - r) + 4.0 * (ay - r) + 2.0 * math.pi * r

    def point(self, s: float | np.ndarray) -> np.ndarray:
        """Point(s) (..., 2) at arc-length fraction ``s`` (wraps modulo 1), counter-clockwise."""
        s = np.mod(np.asarray(s, dtype=np.float64), 1.0)
        ax, ay = self.half_size
        r = self.corner_radius
        lx, ly = 2.0 * (ax - r), 2.0 * (ay - r)
        arc = 0.5 * math.pi * r
        # Segments: right edge (up), top-right arc, top edge (left), ..., starting at (ax, -ly/2).
        seg_len = np.array([ly, arc, lx, arc, ly, arc, lx, arc])
        bounds = np.concatenate([[0.0], np.cumsum(seg_len)])
        d = s * bounds[-1]
        k = np.clip(np.searchsorted(bounds, d, side="right") - 1, 0, 7)
        u = d - bounds[k]
        out = np.zeros((*np.shape(s), 2))
        cx, cy = ax - r, ay - r  # corner-circle centres at (±cx, ±cy)
        edges = {
            0: lambda u: (np.full_like(u, ax), -cy + u),
            2: lambda u: (cx - u, np.full_like(u, ay)),
            4: lambda u: (np.full_like(u, -ax), cy - u),
            6: lambda u: (-cx + u, np.full_like(u, -ay)),
        }
        arcs = {1: (cx, cy, 0.0), 3: (-cx, cy, 0.5), 5: (-cx, -cy, 1.0), 7: (cx, -cy, 1.5)}
        for seg, fn in edges.items():
            m = k == seg
            if np.any(m):
                x, y = fn(u[m])
                out[m, 0], out[m, 1] = x, y
        for seg, (ox, oy, a0) in arcs.items():
            m = k == seg
            if np.any(m):
                ang = a0 * math.pi + u[m] / max(r, 1e-9)
                out[m, 0], out[m, 1] = ox + r * np.cos(ang), oy + r * np.sin(ang)
        return out + np.asarray(self.center)


@dataclass
class PrimitiveTable:
    """The primitives of a scene packed as tensors (P = number of primitives) for ray casting."""

    kind: Tensor
    """(P,) int64 KIND_* codes."""
    center: Tensor
    """(P, 3) centres, world frame."""
    half: Tensor
    """(P, 3) half extents (see Primitive.half_extents)."""
    cos_yaw: Tensor
    """(P,) cos of the yaw."""
    sin_yaw: Tensor
    """(P,) sin of the yaw."""
    color: Tensor
    """(P, 3) albedo at texture weight 0."""
    color2: Tensor
    """(P, 3) albedo at texture weight 1."""
    texture: Tensor
    """(P, TEXTURE_DIM) packed textures."""
    normal: Tensor
    """(P, 3) inward normals of room faces (zeros for solids)."""
    ids: Tensor
    """(P, 4) int64 class, instance, part, group ids."""
    aabb_min: Tensor
    """(P, 3) world-frame bounding box of each solid (room faces: the room)."""
    aabb_max: Tensor
    """(P, 3) world-frame bounding box of each solid (room faces: the room)."""


@dataclass
class Scene:
    """A furnished room: primitives with ids and appearance, room bounds, lights, camera path."""

    seed: int
    """The seed that generated the scene (``make_scene(seed)``)."""
    room_min: tuple[float, float, float]
    """Room corner with the smallest coordinates (the floor is at z = room_min[2])."""
    room_max: tuple[float, float, float]
    """Room corner with the largest coordinates (the ceiling is at z = room_max[2])."""
    primitives: list[Primitive]
    """Room faces first (floor, ceiling, walls x-, x+, y-, y+), then the furniture."""
    light_dir: tuple[float, float, float]
    """Unit vector towards the key light (directional, fixed)."""
    fill_dir: tuple[float, float, float]
    """Unit vector towards the weaker fill light."""
    ambient: float
    """Ambient light term added to every surface."""
    path: CameraPath
    """Where cameras may go: a loop clear of furniture (see rigs.rig_cameras)."""
    instance_names: dict[int, str] = field(default_factory=dict)
    """Instance id -> object name, e.g. {6: "table_0"}."""
    _tables: dict[str, PrimitiveTable] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_primitives(self) -> int:
        return len(self.primitives)

    @property
    def diagonal(self) -> float:
        """Length of the room's diagonal in metres (an upper bound of any depth inside)."""
        return float(np.linalg.norm(np.subtract(self.room_max, self.room_min)))

    def table(self, device: torch.device | str = "cpu") -> PrimitiveTable:
        """The primitives packed as float32 / int64 tensors on ``device`` (cached)."""
        key = str(device)
        if key not in self._tables:
            self._tables[key] = _pack(self, torch.device(device))
        return self._tables[key]


def _pack(scene: Scene, device: torch.device) -> PrimitiveTable:
    prims = scene.primitives
    f32 = {"dtype": torch.float32, "device": device}
    center = torch.tensor([p.center for p in prims], **f32)
    half = torch.tensor([p.half_extents for p in prims], **f32)
    yaw = torch.tensor([p.yaw for p in prims], dtype=torch.float64)
    kind = torch.tensor([KIND_IDS[p.kind] for p in prims], dtype=torch.long, device=device)
    c, s = torch.cos(yaw).to(**f32), torch.sin(yaw).to(**f32)
    ext = torch.stack(
        [c.abs() * half[:, 0] + s.abs() * half[:, 1], s.abs() * half[:, 0] + c.abs() * half[:, 1]],
        dim=1,
    )
    ext = torch.cat([ext, half[:, 2:]], dim=1)
    room_lo = torch.tensor(scene.room_min, **f32)
    room_hi = torch.tensor(scene.room_max, **f32)
    is_room = (kind == KIND_ROOM_FACE).unsqueeze(1)
    aabb_min = torch.where(is_room, room_lo, center - ext)
    aabb_max = torch.where(is_room, room_hi, center + ext)
    return PrimitiveTable(
        kind=kind,
        center=center,
        half=half,
        cos_yaw=c,
        sin_yaw=s,
        color=torch.tensor([p.color for p in prims], **f32),
        color2=torch.tensor([p.color2 for p in prims], **f32),
        texture=torch.tensor([p.texture.pack() for p in prims], **f32),
        normal=torch.tensor([p.normal for p in prims], **f32),
        ids=torch.tensor(
            [(p.class_id, p.instance_id, p.part_id, p.group_id) for p in prims],
            dtype=torch.long,
            device=device,
        ),
        aabb_min=aabb_min,
        aabb_max=aabb_max,
    )


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

_WOODS = ((0.55, 0.38, 0.24), (0.42, 0.28, 0.17), (0.68, 0.52, 0.34), (0.30, 0.20, 0.13))
_FABRICS = (
    (0.25, 0.35, 0.55),
    (0.55, 0.22, 0.20),
    (0.30, 0.48, 0.35),
    (0.60, 0.55, 0.45),
    (0.35, 0.30, 0.40),
    (0.70, 0.60, 0.30),
    (0.20, 0.45, 0.50),
)
_WALL_PAINTS = (
    (0.85, 0.82, 0.75),
    (0.75, 0.80, 0.85),
    (0.80, 0.85, 0.76),
    (0.88, 0.78, 0.72),
    (0.70, 0.70, 0.72),
)


class _Builder:
    """Accumulates primitives while assigning ids; holds the scene's random generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.prims: list[Primitive] = []
        self.next_instance = 0
        self.next_part = 0
        self.next_group = 0
        self.instance_names: dict[int, str] = {}

    def checkpoint(self) -> tuple[int, int, int, int, dict[int, str]]:
        """State to ``rollback`` to when an object does not fit."""
        names = dict(self.instance_names)
        return len(self.prims), self.next_instance, self.next_part, self.next_group, names

    def rollback(self, state: tuple[int, int, int, int, dict[int, str]]) -> None:
        n, self.next_instance, self.next_part, self.next_group, names = state
        del self.prims[n:]
        self.instance_names = dict(names)

    def footprint(self, start: int) -> _Footprint:
        """Floor rectangle covering the primitives added since index ``start``."""
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        for p in self.prims[start:]:
            c, s = abs(math.cos(p.yaw)), abs(math.sin(p.yaw))
            hx, hy = p.half_extents[0], p.half_extents[1]
            ext = np.array([c * hx + s * hy, s * hx + c * hy])
            lo = np.minimum(lo, np.asarray(p.center[:2]) - ext)
            hi = np.maximum(hi, np.asarray(p.center[:2]) + ext)
        return _Footprint(lo, hi)

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

    # -- appearance -----------------------------------------------------------------------
    def jitter(self, color: tuple[float, float, float], amount: float = 0.06) -> tuple:
        c = np.clip(np.asarray(color) + self.rng.uniform(-amount, amount, 3), 0.02, 0.98)
        return tuple(float(x) for x in c)

    def shade_of(self, color: tuple, factor: float) -> tuple:
        return tuple(float(np.clip(c * factor, 0.0, 1.0)) for c in color)

    def noise(self, low: float, high: float, amp: float) -> dict:
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
        return Texture(**self.noise(1.0, 4.0, amp))

    def add(
        self,
        kind: str,
        center_local: tuple,
        half: tuple,
        origin: tuple,
        yaw: float,
        ids: tuple[int, int, int, int],
        color: tuple,
        color2: tuple,
        texture: Texture,
        name: str,
    ) -> None:
        """Add a primitive given in an object's frame (``origin``, ``yaw``) to the scene."""
        c, s = math.cos(yaw), math.sin(yaw)
        x, y, z = center_local
        center = (origin[0] + c * x - s * y, origin[1] + s * x + c * y, origin[2] + z)
        self.prims.append(
            Primitive(
                kind=kind,
                center=tuple(float(v) for v in center),
                half_extents=tuple(float(v) for v in half),
                yaw=float(yaw),
                class_id=ids[0],
                instance_id=ids[1],
                part_id=ids[2],
                group_id=ids[3],
                color=color,
                color2=color2,
                texture=texture,
                name=name,
            )
        )


@dataclass
class _Footprint:
    """Axis-aligned floor rectangle an object occupies (used to avoid overlaps and the path)."""

    lo: np.ndarray
    hi: np.ndarray

    def overlaps(self, other: _Footprint, margin: float) -> bool:
        return bool(np.all(self.lo - margin < other.hi) and np.all(other.lo - margin < self.hi))

    def distance_to(self, points: np.ndarray) -> float:
        d = np.maximum(np.maximum(self.lo - points, points - self.hi), 0.0)
        return float(np.min(np.linalg.norm(d, axis=-1)))


# Object builders: each adds primitives in a local frame (x forward, floor at z=0) and returns
# the local half footprint (x, y) centred on the origin.


def _chair(b: _Builder, origin: tuple, yaw: float, group: int) -> None:
    rng = b.rng
    inst = b.new_instance(f"chair_{b.next_instance}")
    cid = CLASS_ID["chair"]
    seat_w, seat_d = rng.uniform(0.42, 0.5), rng.uniform(0.4, 0.48)
    seat_h = rng.uniform(0.42, 0.48)
    frame = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))])
    cushion = b.jitter(_FABRICS[int(rng.integers(len(_FABRICS)))])
    painted = rng.random() < 0.3
    seat_part, back_part, legs_part = b.new_part(), b.new_part(), b.new_part()
    wood_tex = b.wood(axis=0, freq=rng.uniform(3.0, 6.0))
    seat_col = cushion if not painted else frame
    b.add(
        "box",
        (0.0, 0.0, seat_h),
        (seat_d / 2, seat_w / 2, 0.03),
        origin,
        yaw,
        (cid, inst, seat_part, group),
        seat_col,
        b.shade_of(seat_col, 0.7),
        b.fabric(0.5),
        "chair/seat",
    )
    back_h = rng.uniform(0.35, 0.5)
    b.add(
        "box",
        (-seat_d / 2 + 0.025, 0.0, seat_h + 0.03 + back_h / 2),
        (0.025, seat_w / 2, back_h / 2),
        origin,
        yaw,
        (cid, inst, back_part, group),
        frame,
        b.shade_of(frame, 0.65),
        b.wood(axis=2, freq=rng.uniform(3.0, 6.0)),
        "chair/back",
    )
    leg = 0.028
    leg_col = b.shade_of(frame, 0.85)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(
                "box",
                (sx * (seat_d / 2 - leg), sy * (seat_w / 2 - leg), (seat_h - 0.03) / 2),
                (leg, leg, (seat_h - 0.03) / 2),
                origin,
                yaw,
                (cid, inst, legs_part, group),
                leg_col,
                b.shade_of(leg_col, 0.7),
                wood_tex,
                "chair/legs",
            )


def _table(b: _Builder, origin: tuple, yaw: float, group: int, size: tuple, height: float) -> None:
    rng = b.rng
    inst = b.new_instance(f"table_{b.next_instance}")
    cid = CLASS_ID["table"]
    length, width = size
    col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))])
    top_part, legs_part = b.new_part(), b.new_part()
    b.add(
        "box",
        (0.0, 0.0, height - 0.025),
        (length / 2, width / 2, 0.025),
        origin,
        yaw,
        (cid, inst, top_part, group),
        col,
        b.shade_of(col, 0.65),
        b.wood(axis=0, freq=rng.uniform(2.5, 5.0)),
        "table/top",
    )
    leg = 0.035
    leg_col = b.shade_of(col, 0.8)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(
                "box",
                (sx * (length / 2 - 0.06), sy * (width / 2 - 0.06), (height - 0.05) / 2),
                (leg, leg, (height - 0.05) / 2),
                origin,
                yaw,
                (cid, inst, legs_part, group),
                leg_col,
                b.shade_of(leg_col, 0.7),
                b.wood(axis=2, freq=4.0),
                "table/legs",
            )


def _round_table(b: _Builder, origin: tuple, group: int, radius: float, height: float) -> None:
    rng = b.rng
    inst = b.new_instance(f"table_{b.next_instance}")
    cid = CLASS_ID["table"]
    col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))])
    top_part, legs_part = b.new_part(), b.new_part()
    b.add(
        "cylinder",
        (0.0, 0.0, height - 0.025),
        (radius, radius, 0.025),
        origin,
        0.0,
        (cid, inst, top_part, group),
        col,
        b.shade_of(col, 0.65),
        b.wood(axis=0, freq=rng.uniform(2.5, 5.0)),
        "table/top",
    )
    b.add(
        "cylinder",
        (0.0, 0.0, (height - 0.05) / 2),
        (0.05, 0.05, (height - 0.05) / 2),
        origin,
        0.0,
        (cid, inst, legs_part, group),
        b.shade_of(col, 0.7),
        b.shade_of(col, 0.5),
        b.wood(axis=2, freq=4.0),
        "table/legs",
    )
    b.add(
        "cylinder",
        (0.0, 0.0, 0.015),
        (radius * 0.5, radius * 0.5, 0.015),
        origin,
        0.0,
        (cid, inst, legs_part, group),
        b.shade_of(col, 0.7),
        b.shade_of(col, 0.5),
        b.fabric(0.2),
        "table/legs",
    )


def _bed(b: _Builder, origin: tuple, yaw: float, group: int, width: float) -> None:
    """Bed with its head at local -x (against a wall), foot towards +x."""
    rng = b.rng
    inst = b.new_instance(f"bed_{b.next_instance}")
    cid = CLASS_ID["bed"]
    length = 2.05
    frame_col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))])
    sheet = b.jitter(_FABRICS[int(rng.integers(len(_FABRICS)))], 0.1)
    frame_part, mattress_part, pillow_part = b.new_part(), b.new_part(), b.new_part()
    ids_f, ids_m, ids_p = (
        (cid, inst, frame_part, group),
        (cid, inst, mattress_part, group),
        (cid, inst, pillow_part, group),
    )
    b.add(
        "box",
        (0.0, 0.0, 0.17),
        (length / 2, width / 2, 0.17),
        origin,
        yaw,
        ids_f,
        frame_col,
        b.shade_of(frame_col, 0.65),
        b.wood(axis=0, freq=3.0),
        "bed/frame",
    )
    head_h = rng.uniform(0.9, 1.2)
    b.add(
        "box",
        (-length / 2 + 0.04, 0.0, head_h / 2),
        (0.04, width / 2 + 0.03, head_h / 2),
        origin,
        yaw,
        ids_f,
        frame_col,
        b.shade_of(frame_col, 0.65),
        b.wood(axis=2, freq=3.0),
        "bed/frame",
    )
    b.add(
        "box",
        (0.04, 0.0, 0.34 + 0.1),
        (length / 2 - 0.06, width / 2 - 0.03, 0.1),
        origin,
        yaw,
        ids_m,
        sheet,
        b.shade_of(sheet, 0.6),
        b.fabric(0.6),
        "bed/mattress",
    )
    n_pillows = 1 if width < 1.2 else 2
    pillow_col = b.jitter((0.92, 0.9, 0.86), 0.05)
    for k in range(n_pillows):
        y = 0.0 if n_pillows == 1 else (k - 0.5) * width / 2
        b.add(
            "box",
            (-length / 2 + 0.3, y, 0.54 + 0.06),
            (0.18, min(0.32, width / 2 / n_pillows - 0.04), 0.06),
            origin,
            yaw,
            ids_p,
            pillow_col,
            b.shade_of(pillow_col, 0.8),
            b.fabric(0.4),
            "bed/pillow",
        )


def _sofa(b: _Builder, origin: tuple, yaw: float, group: int, length: float) -> None:
    """Sofa with its back at local -x (against a wall), facing +x."""
    rng = b.rng
    inst = b.new_instance(f"sofa_{b.next_instance}")
    cid = CLASS_ID["sofa"]
    depth = rng.uniform(0.85, 0.95)
    col = b.jitter(_FABRICS[int(rng.integers(len(_FABRICS)))], 0.1)
    base_part, back_part, arms_part = b.new_part(), b.new_part(), b.new_part()
    seat_h = rng.uniform(0.4, 0.46)
    b.add(
        "box",
        (0.05, 0.0, seat_h / 2),
        (depth / 2 - 0.05, length / 2 - 0.18, seat_h / 2),
        origin,
        yaw,
        (cid, inst, base_part, group),
        col,
        b.shade_of(col, 0.65),
        b.fabric(0.6),
        "sofa/base",
    )
    back_h = rng.uniform(0.8, 0.95)
    b.add(
        "box",
        (-depth / 2 + 0.1, 0.0, back_h / 2),
        (0.1, length / 2, back_h / 2),
        origin,
        yaw,
        (cid, inst, back_part, group),
        b.shade_of(col, 0.9),
        b.shade_of(col, 0.6),
        b.fabric(0.6),
        "sofa/back",
    )
    arm_h = rng.uniform(0.58, 0.66)
    for sy in (-1, 1):
        b.add(
            "box",
            (0.0, sy * (length / 2 - 0.09), arm_h / 2),
            (depth / 2, 0.09, arm_h / 2),
            origin,
            yaw,
            (cid, inst, arms_part, group),
            b.shade_of(col, 0.8),
            b.shade_of(col, 0.55),
            b.fabric(0.5),
            "sofa/arms",
        )


def _others(b: _Builder, kind: str, origin: tuple, yaw: float, group: int) -> None:
    """Objects of class "others": lamp, plant, boxes, cabinet, bookshelf, table lamp."""
    rng = b.rng
    cid = CLASS_ID["others"]
    inst = b.new_instance(f"{kind}_{b.next_instance}")
    if kind == "floor_lamp":
        stand, shade = b.new_part(), b.new_part()
        metal = b.jitter((0.25, 0.25, 0.27), 0.05)
        height = rng.uniform(1.35, 1.6)
        b.add("cylinder", (0, 0, 0.015), (0.16, 0.16, 0.015), origin, 0.0, (cid, inst, stand, group),
              metal, b.shade_of(metal, 0.6), b.fabric(0.3), "floor_lamp/stand")  # fmt: skip
        b.add("cylinder", (0, 0, height / 2), (0.022, 0.022, height / 2), origin, 0.0,
              (cid, inst, stand, group), metal, b.shade_of(metal, 0.6), b.fabric(0.3),
              "floor_lamp/stand")  # fmt: skip
        shade_col = b.jitter((0.93, 0.88, 0.72), 0.06)
        b.add("cylinder", (0, 0, height + 0.1), (0.2, 0.2, 0.14), origin, 0.0,
              (cid, inst, shade, group), shade_col, b.shade_of(shade_col, 0.8), b.fabric(0.3),
              "floor_lamp/shade")  # fmt: skip
    elif kind == "plant":
        pot, leaves = b.new_part(), b.new_part()
        pot_col = b.jitter((0.62, 0.33, 0.22), 0.08)
        r = rng.uniform(0.14, 0.2)
        pot_h = rng.uniform(0.3, 0.45)
        b.add("cylinder", (0, 0, pot_h / 2), (r, r, pot_h / 2), origin, 0.0,
              (cid, inst, pot, group), pot_col, b.shade_of(pot_col, 0.7), b.fabric(0.3),
              "plant/pot")  # fmt: skip
        green = b.jitter((0.2, 0.45, 0.18), 0.06)
        fr = rng.uniform(0.3, 0.42)
        b.add("sphere", (0, 0, pot_h + fr * 0.85), (fr, fr, fr), origin, 0.0,
              (cid, inst, leaves, group), green, b.shade_of(green, 0.55), b.fabric(0.8),
              "plant/foliage")  # fmt: skip
    elif kind == "boxes":
        cardboard = (0.66, 0.5, 0.32)
        z = 0.0
        for k in range(int(rng.integers(1, 4))):
            part = b.new_part()
            hx, hy, hz = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3), rng.uniform(0.1, 0.2)
            hx, hy = hx * 0.85**k, hy * 0.85**k
            col = b.jitter(cardboard, 0.06)
            b.add("box", (rng.uniform(-0.03, 0.03), 0.0, z + hz), (hx, hy, hz), origin,
                  yaw + rng.uniform(-0.3, 0.3), (cid, inst, part, group), col,
                  b.shade_of(col, 0.7), b.fabric(0.4), "boxes/box")  # fmt: skip
            z += 2 * hz
    elif kind in ("cabinet", "night_stand"):
        body, top = b.new_part(), b.new_part()
        w = rng.uniform(0.4, 0.5) if kind == "night_stand" else rng.uniform(0.6, 1.0)
        h = rng.uniform(0.45, 0.6) if kind == "night_stand" else rng.uniform(0.7, 1.1)
        d = rng.uniform(0.35, 0.45)
        col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))] if rng.random() < 0.6 else
                       (0.85, 0.85, 0.82))  # fmt: skip
        drawers = Texture(stripe_freq=(0.0, 0.0, 1.0 / 0.2), stripe_amp=0.6, **b.noise(0.5, 2, 0.2))
        b.add("box", (0, 0, (h - 0.03) / 2), (d / 2, w / 2, (h - 0.03) / 2), origin, yaw,
              (cid, inst, body, group), col, b.shade_of(col, 0.6), drawers,
              f"{kind}/body")  # fmt: skip
        b.add("box", (0, 0, h - 0.015), (d / 2 + 0.01, w / 2 + 0.01, 0.015), origin, yaw,
              (cid, inst, top, group), b.shade_of(col, 0.85), b.shade_of(col, 0.6),
              b.wood(axis=1, freq=4.0), f"{kind}/top")  # fmt: skip
    elif kind == "bookshelf":
        frame_part, books = b.new_part(), b.new_part()
        w, h, d = rng.uniform(0.7, 1.0), rng.uniform(1.4, 1.9), 0.32
        col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))])
        b.add("box", (-0.02, 0, h / 2), (d / 2 - 0.02, w / 2, h / 2), origin, yaw,
              (cid, inst, frame_part, group), col, b.shade_of(col, 0.6), b.wood(axis=2, freq=3.0),
              "bookshelf/frame")  # fmt: skip
        book_col = b.jitter(_FABRICS[int(rng.integers(len(_FABRICS)))], 0.1)
        spines = Texture(stripe_freq=(0.0, rng.uniform(5.0, 8.0), 0.0), stripe_amp=0.9,
                         warp_freq=(0.0, 0.0, 1.2), warp_amp=1.5, **b.noise(0.5, 2.0, 0.3))  # fmt: skip
        n_shelves = int(h // 0.38)
        for k in range(n_shelves):
            z = 0.06 + k * (h - 0.1) / n_shelves
            b.add("box", (d / 2 - 0.02, 0, z + 0.13), (0.02, w / 2 - 0.04, 0.12), origin, yaw,
                  (cid, inst, books, group), book_col, (0.9, 0.88, 0.8), spines,
                  "bookshelf/books")  # fmt: skip
    elif kind == "table_lamp":
        stand, shade = b.new_part(), b.new_part()
        base_col = b.jitter((0.75, 0.7, 0.6), 0.1)
        b.add("cylinder", (0, 0, 0.12), (0.06, 0.06, 0.12), origin, 0.0,
              (cid, inst, stand, group), base_col, b.shade_of(base_col, 0.6), b.fabric(0.3),
              "table_lamp/stand")  # fmt: skip
        shade_col = b.jitter((0.95, 0.92, 0.8), 0.04)
        b.add("cylinder", (0, 0, 0.32), (0.14, 0.14, 0.09), origin, 0.0,
              (cid, inst, shade, group), shade_col, b.shade_of(shade_col, 0.8), b.fabric(0.2),
              "table_lamp/shade")  # fmt: skip
    elif kind == "painting":
        part = b.new_part()
        col = tuple(float(x) for x in rng.uniform(0.15, 0.9, 3))
        col2 = tuple(float(x) for x in rng.uniform(0.15, 0.9, 3))
        w, h = rng.uniform(0.5, 1.1), rng.uniform(0.4, 0.8)
        b.add("box", (0.0, 0.0, 0.0), (0.015, w / 2, h / 2), origin, yaw,
              (cid, inst, part, group), col, col2, Texture(**b.noise(1.0, 3.0, 1.0)),
              "painting")  # fmt: skip
    else:
        raise ValueError(f"unknown object kind {kind!r}")


def _rot(yaw: float, x: float, y: float) -> tuple[float, float]:
    c, s = math.cos(yaw), math.sin(yaw)
    return c * x - s * y, s * x + c * y


def _room_faces(b: _Builder, lo: np.ndarray, hi: np.ndarray) -> None:
    rng = b.rng
    centre = tuple(float(v) for v in (lo + hi) / 2)
    paint = b.jitter(_WALL_PAINTS[int(rng.integers(len(_WALL_PAINTS)))], 0.04)
    floor_style = int(rng.integers(3))
    floor_col = b.jitter(_WOODS[int(rng.integers(len(_WOODS)))], 0.08)
    if floor_style == 0:  # wooden planks
        floor_tex = Texture(
            stripe_freq=(0.0, rng.uniform(3.0, 5.0), 0.0),
            warp_freq=(rng.uniform(0.5, 1.5), 0.0, 0.0),
            warp_amp=1.2,
            stripe_amp=0.7,
            **b.noise(0.3, 1.5, 0.3),
        )
        floor_col2 = b.shade_of(floor_col, 0.7)
    elif floor_style == 1:  # tiles
        floor_col = b.jitter((0.75, 0.73, 0.7), 0.1)
        floor_col2 = b.shade_of(floor_col, 0.65)
        floor_tex = Texture(checker_size=float(rng.uniform(0.4, 0.6)), checker_amp=0.8,
                            **b.noise(0.3, 1.5, 0.2))  # fmt: skip
    else:  # carpet
        floor_col = b.jitter(_FABRICS[int(rng.integers(len(_FABRICS)))], 0.08)
        floor_col2 = b.shade_of(floor_col, 0.7)
        floor_tex = Texture(**b.noise(0.5, 2.0, 0.8))
    ceiling = b.jitter((0.93, 0.93, 0.9), 0.03)
    faces = [
        ("floor", (0, 0, 1), floor_col, floor_col2, floor_tex),
        ("ceiling", (0, 0, -1), ceiling, b.shade_of(ceiling, 0.9), Texture(**b.noise(0.3, 1, 0.3))),
    ]
    wallpaper = rng.random() < 0.4
    for name, n in (("wall", (1, 0, 0)), ("wall", (-1, 0, 0)), ("wall", (0, 1, 0)),
                    ("wall", (0, -1, 0))):  # fmt: skip
        if wallpaper:
            tex = Texture(stripe_freq=(n[1] * 3.0, n[0] * 3.0, 0.0), stripe_amp=0.35,
                          **b.noise(0.3, 1.5, 0.35))  # fmt: skip
        else:
            tex = Texture(**b.noise(0.3, 1.5, 0.6))
        faces.append((name, n, paint, b.shade_of(paint, 0.8), tex))
    for name, normal, col, col2, tex in faces:
        inst = b.new_instance(name)
        ids = (CLASS_ID[name], inst, b.new_part(), b.new_group())
        b.prims.append(
            Primitive(
                kind="room",
                center=centre,
                half_extents=tuple(float(v) for v in (hi - lo) / 2),
                yaw=0.0,
                class_id=ids[0],
                instance_id=ids[1],
                part_id=ids[2],
                group_id=ids[3],
                color=col,
                color2=col2,
                texture=tex,
                normal=tuple(float(v) for v in normal),
                name=name,
            )
        )


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


_WALL_YAW = (0.0, math.pi, math.pi / 2, -math.pi / 2)
"""Yaw of an object standing against wall k (x=min, x=max, y=min, y=max) facing the room."""


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
    b = _Builder(rng)
    size = np.array([rng.uniform(5.2, 8.0), rng.uniform(4.8, 7.0), rng.uniform(2.5, 3.0)])
    lo = np.zeros(3)
    hi = size
    _room_faces(b, lo, hi)

    # Camera loop: a rounded rectangle; gaps to walls x-, x+, y-, y+.
    gaps = rng.uniform(1.3, 1.6, 4)
    bed_wall = -1
    if rng.random() < 0.6:
        wall = int(rng.integers(4))
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
    path_pts = path.point(np.linspace(0.0, 1.0, 240, endpoint=False))
    clearance = 0.42
    footprints: list[_Footprint] = []

    def fits(fp: _Footprint, margin: float = 0.05) -> bool:
        if np.any(fp.lo < lo[:2] + 0.005) or np.any(fp.hi > hi[:2] - 0.005):
            return False
        if fp.distance_to(path_pts) < clearance:
            return False
        return not any(fp.overlaps(o, margin) for o in footprints)

    def try_build(build, margin: float = 0.05) -> bool:
        """Run ``build()``; keep what it added only if it fits (else roll it back)."""
        state = b.checkpoint()
        build()
        fp = b.footprint(state[0])
        if len(b.prims) > state[0] and fits(fp, margin):
            footprints.append(fp)
            return True
        b.rollback(state)
        return False

    # --- centre group (inside the loop) ------------------------------------------------
    cx, cy = float(centre[0]), float(centre[1])
    group = b.new_group()
    inner = half - clearance
    along_x = half[0] >= half[1]
    yaw = 0.0 if along_x else math.pi / 2
    long_in, short_in = (inner[0], inner[1]) if along_x else (inner[1], inner[0])
    if rng.random() < 0.8:
        height = float(rng.uniform(0.72, 0.78))
        if rng.random() < 0.3:
            radius = float(np.clip(min(inner) - 0.15, 0.35, 0.6))
            table_ok = try_build(lambda: _round_table(b, (cx, cy, 0.0), group, radius, height))
            n = int(rng.integers(2, 5))
            a0 = rng.uniform(0, 2 * math.pi)
            seats = [(radius + 0.25, a0 + k * 2 * math.pi / n) for k in range(n)]
            seats = [
                ((cx + r * math.cos(a), cy + r * math.sin(a), 0.0), a + math.pi) for r, a in seats
            ]
        else:
            length = float(np.clip(rng.uniform(1.0, 1.6), 0.8, 2 * long_in - 0.1))
            width = float(np.clip(rng.uniform(0.7, 0.95), 0.6, 2 * short_in - 0.1))
            table_ok = try_build(
                lambda: _table(b, (cx, cy, 0.0), yaw, group, (length, width), height)
            )
            seats = []
            for x, side in ((-length / 4, 1), (length / 4, 1), (-length / 4, -1), (length / 4, -1)):
                dx, dy = _rot(yaw, x, side * (width / 2 + 0.2))
                seats.append(((cx + dx, cy + dy, 0.0), yaw - side * math.pi / 2))
            for side in (1, -1):  # chairs at the ends
                dx, dy = _rot(yaw, side * (length / 2 + 0.2), 0.0)
                seats.append(((cx + dx, cy + dy, 0.0), yaw + (math.pi if side > 0 else 0.0)))
            seats = [seats[k] for k in rng.permutation(len(seats))]
        placed = 0
        for pos, chair_yaw in seats if table_ok else []:
            jitter = float(rng.uniform(-0.2, 0.2))
            if try_build(lambda p=pos, y=chair_yaw + jitter: _chair(b, p, y, group), margin=-0.12):
                placed += 1
            if placed >= 4:
                break
    else:
        length = float(np.clip(rng.uniform(0.8, 1.2), 0.6, 2 * long_in))
        width = float(rng.uniform(0.5, 0.7))
        height = float(rng.uniform(0.4, 0.46))
        try_build(lambda: _table(b, (cx, cy, 0.0), yaw, group, (length, width), height))

    # --- wall furniture (outside the loop) --------------------------------------------
    def wall_spot(depth: float, width: float, wall: int | None = None) -> tuple[tuple, float]:
        """Random spot flush against a wall; the object's local +x faces into the room."""
        wall = int(rng.integers(4)) if wall is None else wall
        if wall < 2:
            y = rng.uniform(width / 2 + 0.05, size[1] - width / 2 - 0.05)
            x = depth / 2 + 0.02 if wall == 0 else size[0] - depth / 2 - 0.02
        else:
            x = rng.uniform(width / 2 + 0.05, size[0] - width / 2 - 0.05)
            y = depth / 2 + 0.02 if wall == 2 else size[1] - depth / 2 - 0.02
        return (float(x), float(y), 0.0), _WALL_YAW[wall]

    if bed_wall >= 0:
        width = float(rng.uniform(0.9, 1.6))
        for _ in range(30):
            pos, wyaw = wall_spot(2.05, width, bed_wall)
            group = b.new_group()
            if try_build(lambda p=pos, y=wyaw, g=group: _bed(b, p, y, g, width)):
                # A night stand with a table lamp beside the head of the bed, if there is room.
                side = 1 if rng.random() < 0.5 else -1
                dx, dy = _rot(wyaw, -2.05 / 2 + 0.22, side * (width / 2 + 0.32))
                ns = (pos[0] + dx, pos[1] + dy, 0.0)

                def night_stand(ns=ns, y=wyaw, g=group) -> None:
                    _others(b, "night_stand", ns, y, g)
                    top = max(p.center[2] + p.half_extents[2] for p in b.prims[-2:])
                    _others(b, "table_lamp", (ns[0], ns[1], top), 0.0, g)

                try_build(night_stand, margin=0.0)
                break
    if rng.random() < 0.6:
        length = float(rng.uniform(1.6, 2.2))
        for _ in range(30):
            pos, wyaw = wall_spot(0.95, length)
            if try_build(lambda p=pos, y=wyaw: _sofa(b, p, y, b.new_group(), length)):
                break
    if rng.random() < 0.5:  # a lone chair against a wall (desk chair, reading chair)
        for _ in range(30):
            pos, wyaw = wall_spot(0.6, 0.6)
            if try_build(lambda p=pos, y=wyaw: _chair(b, p, y, b.new_group())):
                break
    kinds = ("floor_lamp", "plant", "boxes", "cabinet", "bookshelf")
    dims = {"floor_lamp": (0.42, 0.42), "plant": (0.85, 0.85), "boxes": (0.62, 0.62),
            "cabinet": (0.47, 1.02), "bookshelf": (0.34, 1.0)}  # fmt: skip
    for _ in range(int(rng.integers(2, 6))):
        kind = kinds[int(rng.integers(len(kinds)))]
        for _ in range(30):
            pos, wyaw = wall_spot(*dims[kind])
            if try_build(lambda k=kind, p=pos, y=wyaw: _others(b, k, p, y, b.new_group())):
                break
    for _ in range(int(rng.integers(1, 4))):  # paintings hang on walls, above most furniture
        wall = int(rng.integers(4))
        z = float(rng.uniform(1.45, min(1.9, size[2] - 0.5)))
        pos, wyaw = wall_spot(0.03, 1.6, wall)
        _others(b, "painting", (pos[0], pos[1], z), wyaw, b.new_group())

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
        room_max=tuple(float(v) for v in hi),
        primitives=prims,
        light_dir=tuple(float(v) for v in light),
        fill_dir=tuple(float(v) for v in fill),
        ambient=float(rng.uniform(0.35, 0.45)),
        path=path,
        instance_names=names,
    )
