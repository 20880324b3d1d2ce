"""The synthetic world's types: primitives, textures, the camera loop, the scene, its packing.

World frame: metres, z up (REP-103). A room spans ``room_min .. room_max`` with the floor at
``z = room_min[2]``. ``data/world.py`` composes scenes from these types (``make_scene``);
``data/raycast.py`` renders the packed ``PrimitiveTable``.

Every primitive carries four ids that give the segmentation hierarchy:

* ``class_id``    index into CLASS_NAMES (wall, floor, ceiling, chair, table, bed, sofa, others);
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
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

PrimitiveKind = Literal["box", "cylinder", "sphere", "room"]
"""A primitive's shape: "box", "cylinder" (axis along local z), "sphere", or "room" (an inside
face of the room box)."""

KIND_BOX = 0
KIND_CYLINDER = 1
KIND_SPHERE = 2
KIND_ROOM_FACE = 3
KIND_IDS: dict[PrimitiveKind, int] = {
    "box": KIND_BOX,
    "cylinder": KIND_CYLINDER,
    "sphere": KIND_SPHERE,
    "room": KIND_ROOM_FACE,
}
"""Primitive kind -> the integer code ``PrimitiveTable.kind`` holds."""

TEXTURE_DIM = 29
"""Length of a packed ``Texture`` (see ``Texture.pack``): 23 procedural floats, then the photo's
id, scale, amplitude and RGB gain."""

Vec3 = tuple[float, float, float]
"""A point, extent or RGB colour: three floats."""


@dataclass(frozen=True)
class Texture:
    """Smooth procedural texture: a weight w in [0, 1] mixes ``color`` (w=0) and ``color2`` (w=1).

    w = 0.5 + 0.5 * clip(v, -1, 1), with v the sum of three terms evaluated at the hit point in the
    primitive's local frame (metres): smooth noise, warped stripes (wood grain, wallpaper, book
    spines) and a soft checker (floor tiles). Frequencies are cycles per metre and kept low (a few
    cycles per object) so that multi-view matching has signal without pixel-level noise.

    Optionally a photograph of ``data/photo_textures.py`` (``photo_id >= 0``) adds real-world
    detail: the photo, tiled every ``photo_scale`` metres by planar projection on the two local
    axes most perpendicular to the surface normal, is normalised to a per-channel mean of 1
    (detail D, the photo's relative variations of brightness and hue) and multiplies the
    procedural albedo A = mix(color, color2, w)::

        albedo = clip(A * (1 - photo_amp + photo_amp * photo_gain * D), 0, 1)

    so the primitive's colours keep setting the mean colour while the photo supplies the
    structure; ``photo_amp`` 0 is the procedural texture alone (bit-identical to no photo), 1 the
    full photo contrast. ``photo_texture`` builds such textures with no procedural pattern (w =
    0.5): the photo then replaces it. ``photo_mean(name)`` gives colours that reproduce the
    photo's own look.
    """

    noise_freqs: tuple[Vec3, ...] = ((0.0, 0.0, 0.0),) * 3
    """Three wave vectors (cycles/m) of the smooth noise, a sum of sinusoids."""
    noise_phase: Vec3 = (0.0, 0.0, 0.0)
    """Phases (radians) of the three noise waves."""
    noise_amp: float = 0.0
    """Amplitude of the noise term (the mean of the three waves)."""
    stripe_freq: Vec3 = (0.0, 0.0, 0.0)
    """Wave vector (cycles/m) of the stripes."""
    warp_freq: Vec3 = (0.0, 0.0, 0.0)
    """Wave vector (cycles/m) of the stripes' phase warp (wood grain wobble)."""
    warp_amp: float = 0.0
    """Phase warp amplitude in radians."""
    stripe_amp: float = 0.0
    """Amplitude of the stripe term."""
    checker_size: float = 1.0
    """Checker cell size in metres (local x, y)."""
    checker_amp: float = 0.0
    """Amplitude of the soft checker term."""
    photo_id: int = -1
    """Index into ``photo_textures.PHOTO_NAMES`` (-1: no photo; the renderer refuses an index
    past the bank)."""
    photo_scale: float = 1.0
    """Metres per photo tile (> 0)."""
    photo_amp: float = 0.0
    """Strength of the photo detail in [0, 1] (0: procedural only)."""
    photo_gain: Vec3 = (1.0, 1.0, 1.0)
    """RGB multiplier of the photo detail (tint and brightness), each >= 0."""

    def __post_init__(self) -> None:
        ok = isinstance(self.photo_id, int | np.integer) and not isinstance(self.photo_id, bool)
        if not ok or self.photo_id < -1:
            raise ValueError(f"photo_id must be -1 or a photo's index, got {self.photo_id!r}")
        if not (math.isfinite(self.photo_scale) and self.photo_scale > 0):
            raise ValueError(f"photo_scale must be > 0 metres, got {self.photo_scale!r}")
        if not 0.0 <= self.photo_amp <= 1.0:
            raise ValueError(f"photo_amp must be in [0, 1], got {self.photo_amp!r}")
        if len(self.photo_gain) != 3 or not all(
            math.isfinite(g) and g >= 0 for g in self.photo_gain
        ):
            raise ValueError(
                f"photo_gain must be three finite values >= 0, got {self.photo_gain!r}"
            )

    def pack(self) -> list[float]:
        """The texture as TEXTURE_DIM floats (the layout ``raycast.shade`` reads).

        0-8 noise wave vectors, 9-11 noise phases, 12 noise amplitude, 13-15 stripe wave vector,
        16-18 warp wave vector, 19 warp amplitude, 20 stripe amplitude, 21 checker size,
        22 checker amplitude, 23 photo id, 24 photo scale, 25 photo amplitude, 26-28 photo gain.
        """
        out = [c for f in self.noise_freqs for c in f]
        out += [*self.noise_phase, self.noise_amp, *self.stripe_freq, *self.warp_freq]
        out += [self.warp_amp, self.stripe_amp, self.checker_size, self.checker_amp]
        out += [float(self.photo_id), self.photo_scale, self.photo_amp, *self.photo_gain]
        return out


@dataclass(frozen=True)
class Primitive:
    """One analytic solid (or one inside face of the room) with its appearance and ids."""

    kind: PrimitiveKind
    """"box" | "cylinder" (axis along local z) | "sphere" | "room" (an inside face of the room)."""
    center: Vec3
    """Centre in world coordinates (metres)."""
    half_extents: Vec3
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
    color: Vec3
    """Albedo (RGB in [0, 1]) where the texture weight is 0."""
    color2: Vec3
    """Albedo where the texture weight is 1."""
    texture: Texture = field(default_factory=Texture)
    """Procedural texture mixing ``color`` and ``color2``."""
    normal: Vec3 = (0.0, 0.0, 0.0)
    """Room faces only: the inward unit normal."""
    name: str = ""
    """Human-readable "object/part" name, e.g. "chair_3/seat"."""

    def __post_init__(self) -> None:
        if self.kind not in KIND_IDS:
            raise ValueError(f"unknown primitive kind {self.kind!r}; kinds: {', '.join(KIND_IDS)}")


POINT_LIGHT_GAIN = 0.015
"""Radiance of a point light per unit intensity at 1 m (inverse-square falloff): a 60 W-ish lamp
(intensity 60) lights a surface 1.5 m away facing it with 0.4, two thirds of the key light."""


@dataclass(frozen=True)
class PointLight:
    """An isotropic point light (a lamp bulb): adds ``POINT_LIGHT_GAIN * intensity * color *
    max(n . l, 0) / max(d, 0.1)^2`` to the radiance of a surface point at distance d (metres)."""

    position: Vec3
    """World position, metres."""
    color: Vec3 = (1.0, 0.9, 0.75)
    """RGB colour of the light (warm white by default), each >= 0."""
    intensity: float = 60.0
    """Strength (roughly watts of a household bulb), >= 0."""

    def __post_init__(self) -> None:
        if len(self.position) != 3 or not all(math.isfinite(v) for v in self.position):
            raise ValueError(f"position must be three finite floats, got {self.position!r}")
        if len(self.color) != 3 or not all(math.isfinite(v) and v >= 0 for v in self.color):
            raise ValueError(f"color must be three finite values >= 0, got {self.color!r}")
        if not (math.isfinite(self.intensity) and self.intensity >= 0):
            raise ValueError(f"intensity must be finite and >= 0, got {self.intensity!r}")


@dataclass(frozen=True)
class CameraPath:
    """A closed loop (rounded rectangle) at which cameras may stand: clear of all furniture."""

    center: tuple[float, float]
    """Loop centre (x, y) in metres."""
    half_size: tuple[float, float]
    """Half sizes (x, y) of the rounded rectangle, metres."""
    corner_radius: float
    """Corner radius, metres."""
    look_at: Vec3
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
    source: tuple[object, Vec3, Vec3] | None = None
    """What was packed: (the primitives list, room_min, room_max); ``Scene.table`` repacks when
    the scene's differ (``dataclasses.replace`` shares the cache between copies)."""


@dataclass
class Scene:
    """A furnished room: primitives with ids and appearance, room bounds, lights, camera path."""

    seed: int
    """The seed that generated the scene (``make_scene(seed)``)."""
    room_min: Vec3
    """Room corner with the smallest coordinates (the floor is at z = room_min[2])."""
    room_max: Vec3
    """Room corner with the largest coordinates (the ceiling is at z = room_max[2])."""
    primitives: list[Primitive]
    """Room faces first (floor, ceiling, walls x-, x+, y-, y+), then the furniture."""
    light_dir: Vec3
    """Unit vector towards the key light (directional, fixed)."""
    fill_dir: Vec3
    """Unit vector towards the weaker fill light."""
    ambient: float
    """Ambient light term added to every surface."""
    path: CameraPath
    """Where cameras may go: a loop clear of furniture (see rigs.rig_cameras)."""
    instance_names: dict[int, str] = field(default_factory=dict)
    """Instance id -> object name, e.g. {6: "table_0"}."""
    shadows: bool = False
    """Cast shadows: the key light (and point lights) light only points they see."""
    point_lights: tuple[PointLight, ...] = ()
    """Extra point lights (lamps), see ``PointLight``."""
    ao_strength: float = 0.0
    """Ambient occlusion in [0, 1]: how much the ambient, fill and bounce light drop in corners
    and next to other surfaces (``data/lighting.py``); 0 is off."""
    exposure: float = 1.0
    """Multiplies the radiance before the clamp to [0, 1] (> 0)."""
    _tables: dict[str, PrimitiveTable] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.shadows, bool | np.bool_):
            raise ValueError(f"shadows must be a bool, got {self.shadows!r}")
        self.point_lights = tuple(self.point_lights)
        if not all(isinstance(light, PointLight) for light in self.point_lights):
            raise ValueError("point_lights must all be PointLight")
        if not 0.0 <= self.ao_strength <= 1.0:
            raise ValueError(f"ao_strength must be in [0, 1], got {self.ao_strength!r}")
        if not (math.isfinite(self.exposure) and self.exposure > 0):
            raise ValueError(f"exposure must be finite and > 0, got {self.exposure!r}")

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
        table = self._tables.get(key)
        source = table.source if table is not None else None
        if (
            source is None
            or source[0] is not self.primitives
            or source[1:] != (self.room_min, self.room_max)
        ):
            table = self._tables[key] = _pack(self, torch.device(device))
        return table


def _pack(scene: Scene, device: torch.device) -> PrimitiveTable:
    """``scene.primitives`` as tensors on ``device`` (float32 / int64; see ``PrimitiveTable``)."""
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
        source=(prims, scene.room_min, scene.room_max),
    )
