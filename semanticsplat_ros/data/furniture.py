"""The synthetic world's furniture, each object a few primitives with named parts.

Each builder adds its parts in the object's local frame (``Placement``: x forward, y left, floor
at z = 0; objects against a wall have their back at local -x), one new instance in the
placement's group, one part id per named part ("chair/seat", "chair/back", ...). Sizes are in
metres; colours and textures are drawn from the builder's generator in a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from semanticsplat_ros.data.builder import (
    FABRICS,
    WOODS,
    ObjectFrame,
    Placement,
    SceneBuilder,
    shade,
)
from semanticsplat_ros.data.scene import Texture

OtherKind = Literal[
    "floor_lamp", "plant", "boxes", "cabinet", "night_stand", "bookshelf", "table_lamp", "painting"
]
"""Objects of class "others" (``add_other``)."""

BED_LENGTH = 2.05
"""Length of every bed (metres, local x)."""


def add_chair(b: SceneBuilder, at: Placement) -> None:
    """A chair facing local +x: seat, back (at -x) and four legs."""
    rng = b.rng
    obj = b.new_object("chair", at)
    seat_w, seat_d = rng.uniform(0.42, 0.5), rng.uniform(0.4, 0.48)
    seat_h = rng.uniform(0.42, 0.48)
    frame = b.pick(WOODS)
    cushion = b.pick(FABRICS)
    painted = rng.random() < 0.3
    seat_part, back_part, legs_part = b.new_part(), b.new_part(), b.new_part()
    wood_tex = b.wood(axis=0, freq=rng.uniform(3.0, 6.0))
    seat_col = cushion if not painted else frame
    b.add(
        obj,
        "box",
        center=(0.0, 0.0, seat_h),
        half=(seat_d / 2, seat_w / 2, 0.03),
        part=seat_part,
        color=seat_col,
        color2=shade(seat_col, 0.7),
        texture=b.fabric(0.5),
        name="chair/seat",
    )
    back_h = rng.uniform(0.35, 0.5)
    b.add(
        obj,
        "box",
        center=(-seat_d / 2 + 0.025, 0.0, seat_h + 0.03 + back_h / 2),
        half=(0.025, seat_w / 2, back_h / 2),
        part=back_part,
        color=frame,
        color2=shade(frame, 0.65),
        texture=b.wood(axis=2, freq=rng.uniform(3.0, 6.0)),
        name="chair/back",
    )
    leg = 0.028
    leg_col = shade(frame, 0.85)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(
                obj,
                "box",
                center=(sx * (seat_d / 2 - leg), sy * (seat_w / 2 - leg), (seat_h - 0.03) / 2),
                half=(leg, leg, (seat_h - 0.03) / 2),
                part=legs_part,
                color=leg_col,
                color2=shade(leg_col, 0.7),
                texture=wood_tex,
                name="chair/legs",
            )


def add_table(b: SceneBuilder, at: Placement, *, size: tuple[float, float], height: float) -> None:
    """A rectangular table: ``size`` = (length along local x, width), ``height`` of the top."""
    rng = b.rng
    obj = b.new_object("table", at)
    length, width = size
    col = b.pick(WOODS)
    top_part, legs_part = b.new_part(), b.new_part()
    b.add(
        obj,
        "box",
        center=(0.0, 0.0, height - 0.025),
        half=(length / 2, width / 2, 0.025),
        part=top_part,
        color=col,
        color2=shade(col, 0.65),
        texture=b.wood(axis=0, freq=rng.uniform(2.5, 5.0)),
        name="table/top",
    )
    leg = 0.035
    leg_col = shade(col, 0.8)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.add(
                obj,
                "box",
                center=(sx * (length / 2 - 0.06), sy * (width / 2 - 0.06), (height - 0.05) / 2),
                half=(leg, leg, (height - 0.05) / 2),
                part=legs_part,
                color=leg_col,
                color2=shade(leg_col, 0.7),
                texture=b.wood(axis=2, freq=4.0),
                name="table/legs",
            )


def add_round_table(b: SceneBuilder, at: Placement, *, radius: float, height: float) -> None:
    """A round table (top of ``radius``, at ``height``) on one leg and a foot."""
    rng = b.rng
    obj = b.new_object("table", at)
    col = b.pick(WOODS)
    top_part, legs_part = b.new_part(), b.new_part()
    b.add(
        obj,
        "cylinder",
        center=(0.0, 0.0, height - 0.025),
        half=(radius, radius, 0.025),
        part=top_part,
        color=col,
        color2=shade(col, 0.65),
        texture=b.wood(axis=0, freq=rng.uniform(2.5, 5.0)),
        name="table/top",
    )
    b.add(
        obj,
        "cylinder",
        center=(0.0, 0.0, (height - 0.05) / 2),
        half=(0.05, 0.05, (height - 0.05) / 2),
        part=legs_part,
        color=shade(col, 0.7),
        color2=shade(col, 0.5),
        texture=b.wood(axis=2, freq=4.0),
        name="table/legs",
    )
    b.add(
        obj,
        "cylinder",
        center=(0.0, 0.0, 0.015),
        half=(radius * 0.5, radius * 0.5, 0.015),
        part=legs_part,
        color=shade(col, 0.7),
        color2=shade(col, 0.5),
        texture=b.fabric(0.2),
        name="table/legs",
    )


def add_bed(b: SceneBuilder, at: Placement, *, width: float) -> None:
    """A bed ``width`` wide with its head at local -x (against a wall), foot towards +x."""
    rng = b.rng
    obj = b.new_object("bed", at)
    length = BED_LENGTH
    frame_col = b.pick(WOODS)
    sheet = b.pick(FABRICS, 0.1)
    frame_part, mattress_part, pillow_part = b.new_part(), b.new_part(), b.new_part()
    b.add(
        obj,
        "box",
        center=(0.0, 0.0, 0.17),
        half=(length / 2, width / 2, 0.17),
        part=frame_part,
        color=frame_col,
        color2=shade(frame_col, 0.65),
        texture=b.wood(axis=0, freq=3.0),
        name="bed/frame",
    )
    head_h = rng.uniform(0.9, 1.2)
    b.add(
        obj,
        "box",
        center=(-length / 2 + 0.04, 0.0, head_h / 2),
        half=(0.04, width / 2 + 0.03, head_h / 2),
        part=frame_part,
        color=frame_col,
        color2=shade(frame_col, 0.65),
        texture=b.wood(axis=2, freq=3.0),
        name="bed/frame",
    )
    b.add(
        obj,
        "box",
        center=(0.04, 0.0, 0.34 + 0.1),
        half=(length / 2 - 0.06, width / 2 - 0.03, 0.1),
        part=mattress_part,
        color=sheet,
        color2=shade(sheet, 0.6),
        texture=b.fabric(0.6),
        name="bed/mattress",
    )
    n_pillows = 1 if width < 1.2 else 2
    pillow_col = b.jitter((0.92, 0.9, 0.86), 0.05)
    for k in range(n_pillows):
        y = 0.0 if n_pillows == 1 else (k - 0.5) * width / 2
        b.add(
            obj,
            "box",
            center=(-length / 2 + 0.3, y, 0.54 + 0.06),
            half=(0.18, min(0.32, width / 2 / n_pillows - 0.04), 0.06),
            part=pillow_part,
            color=pillow_col,
            color2=shade(pillow_col, 0.8),
            texture=b.fabric(0.4),
            name="bed/pillow",
        )


def add_sofa(b: SceneBuilder, at: Placement, *, length: float) -> None:
    """A sofa ``length`` long with its back at local -x (against a wall), facing +x."""
    rng = b.rng
    obj = b.new_object("sofa", at)
    depth = rng.uniform(0.85, 0.95)
    col = b.pick(FABRICS, 0.1)
    base_part, back_part, arms_part = b.new_part(), b.new_part(), b.new_part()
    seat_h = rng.uniform(0.4, 0.46)
    b.add(
        obj,
        "box",
        center=(0.05, 0.0, seat_h / 2),
        half=(depth / 2 - 0.05, length / 2 - 0.18, seat_h / 2),
        part=base_part,
        color=col,
        color2=shade(col, 0.65),
        texture=b.fabric(0.6),
        name="sofa/base",
    )
    back_h = rng.uniform(0.8, 0.95)
    b.add(
        obj,
        "box",
        center=(-depth / 2 + 0.1, 0.0, back_h / 2),
        half=(0.1, length / 2, back_h / 2),
        part=back_part,
        color=shade(col, 0.9),
        color2=shade(col, 0.6),
        texture=b.fabric(0.6),
        name="sofa/back",
    )
    arm_h = rng.uniform(0.58, 0.66)
    for sy in (-1, 1):
        b.add(
            obj,
            "box",
            center=(0.0, sy * (length / 2 - 0.09), arm_h / 2),
            half=(depth / 2, 0.09, arm_h / 2),
            part=arms_part,
            color=shade(col, 0.8),
            color2=shade(col, 0.55),
            texture=b.fabric(0.5),
            name="sofa/arms",
        )


# -- objects of class "others" -------------------------------------------------------------
# Round objects (lamps, plants) are built unturned (yaw 0) whatever the placement's heading.


def _floor_lamp(b: SceneBuilder, obj: ObjectFrame) -> None:
    rng = b.rng
    stand, shade_part = b.new_part(), b.new_part()
    metal = b.jitter((0.25, 0.25, 0.27), 0.05)
    height = rng.uniform(1.35, 1.6)
    b.add(
        obj,
        "cylinder",
        center=(0, 0, 0.015),
        half=(0.16, 0.16, 0.015),
        yaw=0.0,
        part=stand,
        color=metal,
        color2=shade(metal, 0.6),
        texture=b.fabric(0.3),
        name="floor_lamp/stand",
    )
    b.add(
        obj,
        "cylinder",
        center=(0, 0, height / 2),
        half=(0.022, 0.022, height / 2),
        yaw=0.0,
        part=stand,
        color=metal,
        color2=shade(metal, 0.6),
        texture=b.fabric(0.3),
        name="floor_lamp/stand",
    )
    shade_col = b.jitter((0.93, 0.88, 0.72), 0.06)
    b.add(
        obj,
        "cylinder",
        center=(0, 0, height + 0.1),
        half=(0.2, 0.2, 0.14),
        yaw=0.0,
        part=shade_part,
        color=shade_col,
        color2=shade(shade_col, 0.8),
        texture=b.fabric(0.3),
        name="floor_lamp/shade",
    )


def _plant(b: SceneBuilder, obj: ObjectFrame) -> None:
    rng = b.rng
    pot, leaves = b.new_part(), b.new_part()
    pot_col = b.jitter((0.62, 0.33, 0.22), 0.08)
    r = rng.uniform(0.14, 0.2)
    pot_h = rng.uniform(0.3, 0.45)
    b.add(
        obj,
        "cylinder",
        center=(0, 0, pot_h / 2),
        half=(r, r, pot_h / 2),
        yaw=0.0,
        part=pot,
        color=pot_col,
        color2=shade(pot_col, 0.7),
        texture=b.fabric(0.3),
        name="plant/pot",
    )
    green = b.jitter((0.2, 0.45, 0.18), 0.06)
    fr = rng.uniform(0.3, 0.42)
    b.add(
        obj,
        "sphere",
        center=(0, 0, pot_h + fr * 0.85),
        half=(fr, fr, fr),
        yaw=0.0,
        part=leaves,
        color=green,
        color2=shade(green, 0.55),
        texture=b.fabric(0.8),
        name="plant/foliage",
    )


def _boxes(b: SceneBuilder, obj: ObjectFrame) -> None:
    """One to three cardboard boxes stacked, each smaller and turned a little."""
    rng = b.rng
    cardboard = (0.66, 0.5, 0.32)
    z = 0.0
    for k in range(int(rng.integers(1, 4))):
        part = b.new_part()
        hx, hy, hz = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3), rng.uniform(0.1, 0.2)
        hx, hy = hx * 0.85**k, hy * 0.85**k
        col = b.jitter(cardboard, 0.06)
        b.add(
            obj,
            "box",
            center=(rng.uniform(-0.03, 0.03), 0.0, z + hz),
            half=(hx, hy, hz),
            yaw=obj.yaw + rng.uniform(-0.3, 0.3),
            part=part,
            color=col,
            color2=shade(col, 0.7),
            texture=b.fabric(0.4),
            name="boxes/box",
        )
        z += 2 * hz


def _cabinet(b: SceneBuilder, obj: ObjectFrame, kind: Literal["cabinet", "night_stand"]) -> None:
    """A chest of drawers: tall and wide ("cabinet") or small ("night_stand")."""
    rng = b.rng
    body, top = b.new_part(), b.new_part()
    w = rng.uniform(0.4, 0.5) if kind == "night_stand" else rng.uniform(0.6, 1.0)
    h = rng.uniform(0.45, 0.6) if kind == "night_stand" else rng.uniform(0.7, 1.1)
    d = rng.uniform(0.35, 0.45)
    col = b.jitter(
        WOODS[int(rng.integers(len(WOODS)))] if rng.random() < 0.6 else (0.85, 0.85, 0.82)
    )
    drawers = Texture(stripe_freq=(0.0, 0.0, 1.0 / 0.2), stripe_amp=0.6, **b.noise(0.5, 2, 0.2))
    b.add(
        obj,
        "box",
        center=(0, 0, (h - 0.03) / 2),
        half=(d / 2, w / 2, (h - 0.03) / 2),
        part=body,
        color=col,
        color2=shade(col, 0.6),
        texture=drawers,
        name=f"{kind}/body",
    )
    b.add(
        obj,
        "box",
        center=(0, 0, h - 0.015),
        half=(d / 2 + 0.01, w / 2 + 0.01, 0.015),
        part=top,
        color=shade(col, 0.85),
        color2=shade(col, 0.6),
        texture=b.wood(axis=1, freq=4.0),
        name=f"{kind}/top",
    )


def _bookshelf(b: SceneBuilder, obj: ObjectFrame) -> None:
    rng = b.rng
    frame_part, books = b.new_part(), b.new_part()
    w, h, d = rng.uniform(0.7, 1.0), rng.uniform(1.4, 1.9), 0.32
    col = b.pick(WOODS)
    b.add(
        obj,
        "box",
        center=(-0.02, 0, h / 2),
        half=(d / 2 - 0.02, w / 2, h / 2),
        part=frame_part,
        color=col,
        color2=shade(col, 0.6),
        texture=b.wood(axis=2, freq=3.0),
        name="bookshelf/frame",
    )
    book_col = b.pick(FABRICS, 0.1)
    spines = Texture(
        stripe_freq=(0.0, rng.uniform(5.0, 8.0), 0.0),
        stripe_amp=0.9,
        warp_freq=(0.0, 0.0, 1.2),
        warp_amp=1.5,
        **b.noise(0.5, 2.0, 0.3),
    )
    n_shelves = int(h // 0.38)
    for k in range(n_shelves):
        z = 0.06 + k * (h - 0.1) / n_shelves
        b.add(
            obj,
            "box",
            center=(d / 2 - 0.02, 0, z + 0.13),
            half=(0.02, w / 2 - 0.04, 0.12),
            part=books,
            color=book_col,
            color2=(0.9, 0.88, 0.8),
            texture=spines,
            name="bookshelf/books",
        )


def _table_lamp(b: SceneBuilder, obj: ObjectFrame) -> None:
    stand, shade_part = b.new_part(), b.new_part()
    base_col = b.jitter((0.75, 0.7, 0.6), 0.1)
    b.add(
        obj,
        "cylinder",
        center=(0, 0, 0.12),
        half=(0.06, 0.06, 0.12),
        yaw=0.0,
        part=stand,
        color=base_col,
        color2=shade(base_col, 0.6),
        texture=b.fabric(0.3),
        name="table_lamp/stand",
    )
    shade_col = b.jitter((0.95, 0.92, 0.8), 0.04)
    b.add(
        obj,
        "cylinder",
        center=(0, 0, 0.32),
        half=(0.14, 0.14, 0.09),
        yaw=0.0,
        part=shade_part,
        color=shade_col,
        color2=shade(shade_col, 0.8),
        texture=b.fabric(0.2),
        name="table_lamp/shade",
    )


def _painting(b: SceneBuilder, obj: ObjectFrame) -> None:
    """A flat canvas hanging at the placement's origin (its centre), facing local +x."""
    rng = b.rng
    part = b.new_part()
    col = tuple(float(x) for x in rng.uniform(0.15, 0.9, 3))
    col2 = tuple(float(x) for x in rng.uniform(0.15, 0.9, 3))
    w, h = rng.uniform(0.5, 1.1), rng.uniform(0.4, 0.8)
    b.add(
        obj,
        "box",
        center=(0.0, 0.0, 0.0),
        half=(0.015, w / 2, h / 2),
        part=part,
        color=col,
        color2=col2,
        texture=Texture(**b.noise(1.0, 3.0, 1.0)),
        name="painting",
    )


_OTHERS: dict[OtherKind, Callable[[SceneBuilder, ObjectFrame], None]] = {
    "floor_lamp": _floor_lamp,
    "plant": _plant,
    "boxes": _boxes,
    "cabinet": lambda b, obj: _cabinet(b, obj, "cabinet"),
    "night_stand": lambda b, obj: _cabinet(b, obj, "night_stand"),
    "bookshelf": _bookshelf,
    "table_lamp": _table_lamp,
    "painting": _painting,
}


def add_other(b: SceneBuilder, kind: OtherKind, at: Placement) -> None:
    """An object of class "others" (a lamp, a plant, boxes, a cabinet, a bookshelf, ...)."""
    if kind not in _OTHERS:
        raise ValueError(f"unknown object kind {kind!r}; kinds: {', '.join(_OTHERS)}")
    _OTHERS[kind](b, b.new_object("others", at, label=kind))


def add_night_stand_with_lamp(b: SceneBuilder, at: Placement) -> None:
    """A night stand at ``at`` with a table lamp standing on its top."""
    add_other(b, "night_stand", at)
    top = max(p.center[2] + p.half_extents[2] for p in b.prims[-2:])
    add_other(b, "table_lamp", Placement((at.origin[0], at.origin[1], top), 0.0, at.group))
