"""Furniture of the varied synthetic world: several shape families per class, random proportions.

Each builder takes ``(b, at, family, ...)``, adds one new instance of its class in the
placement's group (local frame: x forward, y left, floor at z = 0; objects that stand against a
wall have their back at local -x) and names it ``<class>_<family>_<instance id>`` so that the
family can be read back from ``Scene.instance_names``. Every named part ("chair/seat",
"chair/legs", ...) gets its own part id; surfaces come from ``materials`` (``held_out`` lets
the held-out material family be drawn). Parts may be turned about z (any yaw).

Families (the held-out ones are chosen by ``world_varied.HELD_OUT_FAMILIES``):

* chairs: four_leg, armchair, stool, office (a seat on a pole on a 5-arm star base, castors);
* tables: rectangular, round, pedestal, desk (with a block of drawers);
* beds: headboard, platform (no headboard), bunk (two mattresses on four posts);
* sofas: straight, l_shaped, loose_cushions.

Objects of class "others" are in ``furniture_varied_others``.
"""

from __future__ import annotations

import math

from semanticsplat_ros.data import materials as mat
from semanticsplat_ros.data.builder import ObjectFrame, Placement, SceneBuilder, shade
from semanticsplat_ros.data.materials import Surface
from semanticsplat_ros.data.scene import PrimitiveKind, Texture, Vec3

CHAIR_FAMILIES = ("four_leg", "armchair", "stool", "office")
"""Shape families of chairs (``add_chair``)."""
TABLE_FAMILIES = ("rectangular", "round", "pedestal", "desk")
"""Shape families of tables (``add_table``)."""
BED_FAMILIES = ("headboard", "platform", "bunk")
"""Shape families of beds (``add_bed``)."""
SOFA_FAMILIES = ("straight", "l_shaped", "loose_cushions")
"""Shape families of sofas (``add_sofa``)."""
FAMILIES: dict[str, tuple[str, ...]] = {
    "chair": CHAIR_FAMILIES,
    "table": TABLE_FAMILIES,
    "bed": BED_FAMILIES,
    "sofa": SOFA_FAMILIES,
}
"""Class name -> its shape families."""

WOODISH: tuple[mat.MaterialFamily, ...] = ("wood", "wood", "plaster", "noise", "stone")
"""Material families of hard furniture surfaces (frames, tops, legs)."""
SOFT: tuple[mat.MaterialFamily, ...] = ("fabric", "weave", "carpet", "fabric")
"""Material families of upholstery, sheets and cushions."""
METAL: Vec3 = (0.28, 0.28, 0.3)
"""Base albedo of metal parts (poles, star bases)."""


def new_object(b: SceneBuilder, cls: str, family: str, at: Placement) -> ObjectFrame:
    """A new instance of ``cls`` named ``<cls>_<family>_<id>``; ValueError for a bad family."""
    known = FAMILIES.get(cls)
    if known is not None and family not in known:
        raise ValueError(f"unknown {cls} family {family!r}; families: {', '.join(known)}")
    return b.new_object(cls, at, label=f"{cls}_{family}")


def put(
    b: SceneBuilder,
    obj: ObjectFrame,
    kind: PrimitiveKind,
    part: int,
    name: str,
    center: Vec3,
    half: Vec3,
    surf: Surface,
    yaw: float | None = None,
) -> None:
    """Add one primitive of ``obj`` (``center`` in the object's frame) with surface ``surf``;
    ``yaw`` (radians, world) turns the primitive itself, not its position."""
    if yaw is not None:  # SceneBuilder.add turns the centre by the part's yaw: undo that
        c, s = math.cos(obj.yaw - yaw), math.sin(obj.yaw - yaw)
        center = (c * center[0] - s * center[1], s * center[0] + c * center[1], center[2])
    b.add(
        obj,
        kind,
        center=center,
        half=half,
        part=part,
        color=surf.color,
        color2=surf.color2,
        texture=surf.texture,
        name=name,
        yaw=yaw,
    )


def darker(s: Surface, factor: float) -> Surface:
    """``s`` with both albedos scaled by ``factor``."""
    return Surface(shade(s.color, factor), shade(s.color2, factor), s.texture)


def _legs(
    b: SceneBuilder,
    obj: ObjectFrame,
    part: int,
    name: str,
    xy: tuple[float, float],
    height: float,
    radius: float,
    surf: Surface,
    round_legs: bool,
) -> None:
    """Four legs at (±x, ±y) from the floor to ``height``."""
    kind: PrimitiveKind = "cylinder" if round_legs else "box"
    for sx in (-1, 1):
        for sy in (-1, 1):
            center = (sx * xy[0], sy * xy[1], height / 2)
            put(b, obj, kind, part, name, center, (radius, radius, height / 2), surf)


# -- chairs -------------------------------------------------------------------------------


def add_chair(b: SceneBuilder, at: Placement, family: str, *, held_out: bool = False) -> None:
    """A chair facing local +x (back at -x) of shape ``family`` (``CHAIR_FAMILIES``)."""
    obj = new_object(b, "chair", family, at)
    rng = b.rng
    frame = mat.surface(b, WOODISH, held_out=held_out)
    cushion = mat.surface(b, SOFT, held_out=held_out)
    if family == "armchair":
        _armchair(b, obj, frame, cushion)
        return
    if family == "office":
        _office_chair(b, obj, cushion)
        return
    seat, legs = b.new_part(), b.new_part()
    seat_h = rng.uniform(0.42, 0.5) if family == "four_leg" else rng.uniform(0.5, 0.72)
    if family == "stool":
        r = rng.uniform(0.16, 0.21)
        put(b, obj, "cylinder", seat, "chair/seat", (0, 0, seat_h - 0.03), (r, r, 0.03), cushion)
        n = 3 if rng.random() < 0.5 else 4
        leg_r, spread = rng.uniform(0.015, 0.025), r * rng.uniform(0.75, 0.95)
        a0 = rng.uniform(0, 2 * math.pi)
        for k in range(n):
            a = a0 + 2 * math.pi * k / n
            center = (spread * math.cos(a), spread * math.sin(a), (seat_h - 0.06) / 2)
            half = (leg_r, leg_r, (seat_h - 0.06) / 2)
            put(b, obj, "cylinder", legs, "chair/legs", center, half, frame)
        return
    back = b.new_part()
    w, d = rng.uniform(0.4, 0.52), rng.uniform(0.38, 0.5)
    put(b, obj, "box", seat, "chair/seat", (0, 0, seat_h), (d / 2, w / 2, 0.03), cushion)
    leg = rng.uniform(0.018, 0.032)
    round_legs = rng.random() < 0.4
    _legs(
        b,
        obj,
        legs,
        "chair/legs",
        (d / 2 - leg, w / 2 - leg),
        seat_h - 0.03,
        leg,
        frame,
        round_legs,
    )
    back_h = rng.uniform(0.3, 0.55)
    z0 = seat_h + 0.03
    if rng.random() < 0.5:  # a solid panel
        center = (-d / 2 + 0.02, 0.0, z0 + back_h / 2)
        put(b, obj, "box", back, "chair/back", center, (0.02, w / 2, back_h / 2), frame)
    else:  # two posts and a top rail
        for sy in (-1, 1):
            center = (-d / 2 + leg, sy * (w / 2 - leg), z0 + back_h / 2)
            put(b, obj, "box", back, "chair/back", center, (leg, leg, back_h / 2), frame)
        rail = rng.uniform(0.05, 0.12)
        center = (-d / 2 + leg, 0.0, z0 + back_h - rail / 2)
        put(b, obj, "box", back, "chair/back", center, (leg, w / 2, rail / 2), frame)


def _armchair(b: SceneBuilder, obj: ObjectFrame, frame: Surface, cushion: Surface) -> None:
    """An upholstered chair: a base on short legs, a thick back and two arms."""
    rng = b.rng
    base, back, arms, legs = b.new_part(), b.new_part(), b.new_part(), b.new_part()
    w, d = rng.uniform(0.7, 0.9), rng.uniform(0.7, 0.85)
    leg_h = rng.uniform(0.05, 0.15)
    seat_h = rng.uniform(0.4, 0.46)
    _legs(b, obj, legs, "chair/legs", (d / 2 - 0.06, w / 2 - 0.06), leg_h, 0.025, frame, True)
    base_h = seat_h - leg_h
    put(
        b,
        obj,
        "box",
        base,
        "chair/seat",
        (0.0, 0, leg_h + base_h / 2),
        (d / 2, w / 2 - 0.1, base_h / 2),
        cushion,
    )
    back_h = rng.uniform(0.45, 0.65)
    center = (-d / 2 + 0.08, 0.0, seat_h + back_h / 2)
    put(
        b,
        obj,
        "box",
        back,
        "chair/back",
        center,
        (0.08, w / 2 - 0.1, back_h / 2),
        darker(cushion, 0.9),
    )
    arm_h = seat_h + rng.uniform(0.15, 0.25) - leg_h
    for sy in (-1, 1):
        center = (0.0, sy * (w / 2 - 0.05), leg_h + arm_h / 2)
        put(
            b,
            obj,
            "box",
            arms,
            "chair/arms",
            center,
            (d / 2, 0.05, arm_h / 2),
            darker(cushion, 0.8),
        )


def _office_chair(b: SceneBuilder, obj: ObjectFrame, cushion: Surface) -> None:
    """A seat and back on a gas pole on a five-arm star base with castors."""
    rng = b.rng
    seat, back, base, castors = b.new_part(), b.new_part(), b.new_part(), b.new_part()
    metal = mat.material(b, "plaster", METAL)
    seat_h = rng.uniform(0.44, 0.54)
    w, d = rng.uniform(0.44, 0.54), rng.uniform(0.42, 0.5)
    put(b, obj, "box", seat, "chair/seat", (0.02, 0, seat_h), (d / 2, w / 2, 0.04), cushion)
    back_h = rng.uniform(0.4, 0.65)
    z = seat_h + 0.08 + back_h / 2
    put(
        b,
        obj,
        "box",
        back,
        "chair/back",
        (-d / 2 + 0.02, 0, z),
        (0.03, w / 2 - 0.02, back_h / 2),
        cushion,
    )
    put(
        b,
        obj,
        "box",
        back,
        "chair/back",
        (-d / 2 - 0.02, 0, seat_h + 0.1),
        (0.015, 0.03, 0.12),
        metal,
    )
    pole_h = seat_h - 0.1
    put(
        b,
        obj,
        "cylinder",
        base,
        "chair/base",
        (0, 0, 0.08 + pole_h / 2),
        (0.025, 0.025, pole_h / 2),
        metal,
    )
    arm = rng.uniform(0.26, 0.32)
    a0 = rng.uniform(0, 2 * math.pi)
    for k in range(5):
        a = a0 + 2 * math.pi * k / 5
        ca, sa = math.cos(a), math.sin(a)
        yaw = obj.yaw + a
        put(
            b,
            obj,
            "box",
            base,
            "chair/base",
            (ca * arm / 2, sa * arm / 2, 0.075),
            (arm / 2, 0.02, 0.018),
            metal,
            yaw,
        )
        put(
            b,
            obj,
            "sphere",
            castors,
            "chair/castors",
            (ca * arm, sa * arm, 0.03),
            (0.03, 0.03, 0.03),
            metal,
            0.0,
        )


# -- tables -------------------------------------------------------------------------------


def add_table(
    b: SceneBuilder,
    at: Placement,
    family: str,
    *,
    size: tuple[float, float],
    height: float,
    round_top: bool = False,
    held_out: bool = False,
) -> float:
    """A table of ``family`` (``TABLE_FAMILIES``): ``size`` = (length along local x, width)
    (round tops: the diameter is the smaller), top at ``height``; returns the top's height.
    ``round_top`` gives a "pedestal" table a round top ("round" tables always have one)."""
    obj = new_object(b, "table", family, at)
    rng = b.rng
    length, width = size
    if min(length, width) <= 0.1 or not 0.2 <= height <= 1.2:
        raise ValueError(f"bad table size {size} / height {height} (metres)")
    top_s = mat.surface(b, WOODISH, held_out=held_out)
    legs_s = darker(top_s, 0.8) if rng.random() < 0.6 else mat.material(b, "plaster", METAL)
    top, legs = b.new_part(), b.new_part()
    thick = rng.uniform(0.02, 0.05)
    z_top = (0.0, 0.0, height - thick / 2)
    round_top = family == "round" or (family == "pedestal" and round_top)
    if round_top:
        r = min(length, width) / 2
        put(b, obj, "cylinder", top, "table/top", z_top, (r, r, thick / 2), top_s)
    else:
        put(b, obj, "box", top, "table/top", z_top, (length / 2, width / 2, thick / 2), top_s)
    leg_h = height - thick
    if family == "pedestal":
        col_r = rng.uniform(0.05, 0.1)
        put(
            b,
            obj,
            "cylinder",
            legs,
            "table/base",
            (0, 0, leg_h / 2),
            (col_r, col_r, leg_h / 2),
            legs_s,
        )
        foot = min(length, width) * rng.uniform(0.25, 0.38)
        if rng.random() < 0.5:
            put(b, obj, "cylinder", legs, "table/base", (0, 0, 0.02), (foot, foot, 0.02), legs_s)
        else:
            for a in (0.0, math.pi / 2):
                put(
                    b,
                    obj,
                    "box",
                    legs,
                    "table/base",
                    (0, 0, 0.03),
                    (foot, 0.03, 0.03),
                    legs_s,
                    obj.yaw + a,
                )
        return height
    if family == "round":
        r = min(length, width) / 2
        n = 3 if rng.random() < 0.4 else 4
        a0 = rng.uniform(0, 2 * math.pi)
        for k in range(n):
            a = a0 + 2 * math.pi * k / n
            c = (0.7 * r * math.cos(a), 0.7 * r * math.sin(a), leg_h / 2)
            put(b, obj, "cylinder", legs, "table/legs", c, (0.025, 0.025, leg_h / 2), legs_s)
        return height
    leg = rng.uniform(0.02, 0.045)
    inset = rng.uniform(0.03, 0.1)
    if family == "desk":
        drawers = b.new_part()
        bw = min(rng.uniform(0.35, 0.45), width * 0.45)
        side = 1 if rng.random() < 0.5 else -1
        drawer_tex = Texture(stripe_freq=(0.0, 0.0, 1.0 / rng.uniform(0.14, 0.22)), stripe_amp=0.6)
        dcol = darker(top_s, 0.9)
        center = (0.0, side * (width / 2 - bw / 2 - 0.01), leg_h / 2)
        put(
            b,
            obj,
            "box",
            drawers,
            "table/drawers",
            center,
            (length / 2 - 0.02, bw / 2, leg_h / 2),
            Surface(dcol.color, dcol.color2, drawer_tex),
        )
        for sx in (-1, 1):
            c = (sx * (length / 2 - inset), -side * (width / 2 - inset), leg_h / 2)
            put(b, obj, "box", legs, "table/legs", c, (leg, leg, leg_h / 2), legs_s)
        return height
    _legs(
        b,
        obj,
        legs,
        "table/legs",
        (length / 2 - inset, width / 2 - inset),
        leg_h,
        leg,
        legs_s,
        rng.random() < 0.4,
    )
    return height


# -- beds ---------------------------------------------------------------------------------


def add_bed(
    b: SceneBuilder,
    at: Placement,
    family: str,
    *,
    width: float,
    length: float = 2.0,
    held_out: bool = False,
) -> None:
    """A bed of ``family`` (``BED_FAMILIES``), ``width`` x ``length`` metres, head at local -x."""
    obj = new_object(b, "bed", family, at)
    rng = b.rng
    frame_s = mat.surface(b, WOODISH, held_out=held_out)
    sheet = mat.surface(b, SOFT, held_out=held_out)
    pillow_s = mat.material(b, "fabric", (0.9, 0.88, 0.85))
    frame, mattress, pillows = b.new_part(), b.new_part(), b.new_part()
    if family == "bunk":
        _bunk(b, obj, (frame, mattress, pillows), (frame_s, sheet, pillow_s), width, length)
        return
    frame_h = rng.uniform(0.2, 0.35) if family == "headboard" else rng.uniform(0.12, 0.25)
    over = 0.0 if family == "headboard" else rng.uniform(0.0, 0.08)
    put(
        b,
        obj,
        "box",
        frame,
        "bed/frame",
        (0, 0, frame_h / 2),
        (length / 2 + over, width / 2 + over, frame_h / 2),
        frame_s,
    )
    mat_h = rng.uniform(0.15, 0.25)
    put(
        b,
        obj,
        "box",
        mattress,
        "bed/mattress",
        (0.02, 0, frame_h + mat_h / 2),
        (length / 2 - 0.04, width / 2 - 0.03, mat_h / 2),
        sheet,
    )
    if rng.random() < 0.6:  # a blanket over the foot half
        blanket = b.new_part()
        blank_s = mat.surface(b, SOFT, held_out=held_out)
        bl = length * rng.uniform(0.3, 0.6)
        c = (length / 2 - bl / 2, 0, frame_h + mat_h / 2 + 0.01)
        put(
            b,
            obj,
            "box",
            blanket,
            "bed/blanket",
            c,
            (bl / 2, width / 2 - 0.01, mat_h / 2 + 0.02),
            blank_s,
        )
    if family == "headboard":
        head_h = rng.uniform(0.8, 1.3)
        c = (-length / 2 - 0.03, 0.0, head_h / 2)
        put(
            b,
            obj,
            "box",
            frame,
            "bed/frame",
            c,
            (0.03, width / 2 + 0.03, head_h / 2),
            darker(frame_s, 0.9),
        )
    n = 1 if width < 1.2 else 2
    for k in range(n):
        y = 0.0 if n == 1 else (k - 0.5) * width / 2
        c = (-length / 2 + 0.28, y, frame_h + mat_h + 0.05)
        put(
            b,
            obj,
            "box",
            pillows,
            "bed/pillow",
            c,
            (0.16, min(0.32, width / 2 / n - 0.05), 0.06),
            pillow_s,
        )


def _bunk(
    b: SceneBuilder,
    obj: ObjectFrame,
    parts: tuple[int, int, int],
    surfs: tuple[Surface, Surface, Surface],
    width: float,
    length: float,
) -> None:
    """Two frames with mattresses and pillows on four posts, and a ladder on the +y side."""
    rng = b.rng
    frame, mattress, pillows = parts
    frame_s, sheet, pillow_s = surfs
    post = 0.04
    top = rng.uniform(1.55, 1.8)
    _legs(
        b,
        obj,
        frame,
        "bed/frame",
        (length / 2 - post, width / 2 - post),
        top,
        post,
        frame_s,
        False,
    )
    for z in (rng.uniform(0.2, 0.3), rng.uniform(1.15, 1.3)):
        put(
            b,
            obj,
            "box",
            frame,
            "bed/frame",
            (0, 0, z - 0.04),
            (length / 2 - 0.02, width / 2 - 0.02, 0.04),
            frame_s,
        )
        put(
            b,
            obj,
            "box",
            mattress,
            "bed/mattress",
            (0, 0, z + 0.08),
            (length / 2 - 0.06, width / 2 - 0.06, 0.08),
            sheet,
        )
        c = (-length / 2 + 0.28, 0.0, z + 0.2)
        put(b, obj, "box", pillows, "bed/pillow", c, (0.16, width / 2 - 0.15, 0.05), pillow_s)
    ladder = b.new_part()
    for dx in (-0.18, 0.18):
        c = (length / 2 - 0.5 + dx, width / 2 + 0.02, top / 2)
        put(b, obj, "box", ladder, "bed/ladder", c, (0.02, 0.02, top / 2), frame_s)


# -- sofas --------------------------------------------------------------------------------


def add_sofa(
    b: SceneBuilder,
    at: Placement,
    family: str,
    *,
    length: float,
    depth: float = 0.9,
    chaise: float = 1.5,
    held_out: bool = False,
) -> None:
    """A sofa of ``family`` (``SOFA_FAMILIES``) ``length`` along local y, ``depth`` along x, back
    at -x. An "l_shaped" sofa's chaise reaches ``chaise`` metres forward on its +y end."""
    obj = new_object(b, "sofa", family, at)
    rng = b.rng
    cover = mat.surface(b, SOFT, held_out=held_out)
    base, back, arms = b.new_part(), b.new_part(), b.new_part()
    seat_h = rng.uniform(0.38, 0.46)
    back_h = rng.uniform(0.7, 0.95)
    arm_w = rng.uniform(0.1, 0.2)
    put(
        b,
        obj,
        "box",
        back,
        "sofa/back",
        (-depth / 2 + 0.1, 0, back_h / 2),
        (0.1, length / 2, back_h / 2),
        darker(cover, 0.9),
    )
    base_len = length / 2 - arm_w
    if family == "l_shaped":  # a chaise on the +y end, no arm there
        cw = min(rng.uniform(0.7, 0.9), length * 0.45)
        c = (-depth / 2 + chaise / 2, length / 2 - cw / 2, seat_h / 2)
        put(b, obj, "box", base, "sofa/base", c, (chaise / 2, cw / 2, seat_h / 2), cover)
        main = length - cw - arm_w
        c = (0.05, -length / 2 + arm_w + main / 2, seat_h / 2)
        put(b, obj, "box", base, "sofa/base", c, (depth / 2 - 0.05, main / 2, seat_h / 2), cover)
        arm_sides: tuple[int, ...] = (-1,)
    else:
        put(
            b,
            obj,
            "box",
            base,
            "sofa/base",
            (0.05, 0, seat_h / 2),
            (depth / 2 - 0.05, base_len, seat_h / 2),
            cover,
        )
        arm_sides = (-1, 1)
    arm_h = seat_h + rng.uniform(0.12, 0.25)
    for sy in arm_sides:
        c = (0.0, sy * (length / 2 - arm_w / 2), arm_h / 2)
        put(
            b,
            obj,
            "box",
            arms,
            "sofa/arms",
            c,
            (depth / 2, arm_w / 2, arm_h / 2),
            darker(cover, 0.8),
        )
    if family == "loose_cushions":
        cushions = b.new_part()
        cush_s = mat.surface(b, SOFT, held_out=held_out)
        n = int(rng.integers(2, 4))
        cl = 2 * base_len / n
        for k in range(n):
            y = -base_len + cl * (k + 0.5)
            c = (0.08, y, seat_h + 0.05)
            put(
                b,
                obj,
                "box",
                cushions,
                "sofa/cushions",
                c,
                (depth / 2 - 0.12, cl / 2 - 0.02, 0.05),
                cush_s,
            )
            c = (-depth / 2 + 0.28, y, seat_h + 0.25)
            put(b, obj, "box", cushions, "sofa/cushions", c, (0.07, cl / 2 - 0.04, 0.2), cush_s)
