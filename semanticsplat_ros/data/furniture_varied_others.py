"""Objects of class "others" of the varied synthetic world, and small clutter.

``add_other(b, at, kind)`` builds one object of ``OTHER_KINDS`` (local frame as in
``furniture_varied``: x forward, back against a wall at -x, floor at z = 0) named
``<kind>_<instance id>``. Wall-mounted kinds ("door", "window", "picture") are thin boxes whose
back touches the wall plane at the placement's origin; a "rug" is a very thin box on the floor
(class others, never floor). ``add_clutter`` builds one small item (a cup, a bowl, a book, a
vase, a ball, a small box) standing at the placement's origin, e.g. on a table top.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from semanticsplat_ros.data import materials as mat
from semanticsplat_ros.data.builder import ObjectFrame, Placement, SceneBuilder, shade
from semanticsplat_ros.data.furniture_varied import METAL, WOODISH, darker, put
from semanticsplat_ros.data.materials import Surface
from semanticsplat_ros.data.scene import Texture

OTHER_KINDS = (
    "shelves",
    "cabinet",
    "floor_lamp",
    "table_lamp",
    "plant",
    "boxes",
    "door",
    "window",
    "rug",
    "picture",
)
"""Kinds of ``add_other``."""
CLUTTER_KINDS = ("cup", "bowl", "book", "vase", "ball", "box", "bin")
"""Kinds of ``add_clutter``."""


def _shelves(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """Open shelving: two side panels, 3-6 boards, books on most boards."""
    rng = b.rng
    d, w, h = size
    frame, boards, books = b.new_part(), b.new_part(), b.new_part()
    wood = mat.surface(b, WOODISH, held_out=ho)
    for sy in (-1, 1):
        put(
            b,
            obj,
            "box",
            frame,
            "shelves/frame",
            (0, sy * (w / 2 - 0.015), h / 2),
            (d / 2, 0.015, h / 2),
            wood,
        )
    put(
        b,
        obj,
        "box",
        frame,
        "shelves/frame",
        (-d / 2 + 0.01, 0, h / 2),
        (0.01, w / 2 - 0.03, h / 2),
        darker(wood, 0.8),
    )
    n = max(3, min(6, int(h / rng.uniform(0.3, 0.42))))
    book_s = mat.material(b, "fabric")
    spines = Texture(
        stripe_freq=(0.0, rng.uniform(6.0, 11.0), 0.0),
        stripe_amp=0.9,
        warp_freq=(0.0, 0.0, 1.5),
        warp_amp=1.2,
    )
    for k in range(n):
        z = 0.04 + k * (h - 0.06) / (n - 1)
        put(
            b,
            obj,
            "box",
            boards,
            "shelves/boards",
            (0, 0, z),
            (d / 2 - 0.01, w / 2 - 0.03, 0.012),
            wood,
        )
        if k < n - 1 and rng.random() < 0.75:
            bh = min(rng.uniform(0.14, 0.26), (h - 0.06) / (n - 1) - 0.04)
            bw = (w / 2 - 0.05) * rng.uniform(0.4, 1.0)
            y = rng.uniform(-(w / 2 - 0.05 - bw), w / 2 - 0.05 - bw)
            c = (0.0, y, z + 0.012 + bh / 2)
            put(
                b,
                obj,
                "box",
                books,
                "shelves/books",
                c,
                (d / 2 - 0.04, bw, bh / 2),
                Surface(book_s.color, (0.9, 0.88, 0.8), spines),
            )


def _cabinet(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A cabinet: drawers (horizontal stripes) or two doors (a vertical split), a top, maybe feet."""
    rng = b.rng
    d, w, h = size
    body, top = b.new_part(), b.new_part()
    s = mat.surface(b, WOODISH, held_out=ho)
    feet = rng.uniform(0.0, 0.12)
    if rng.random() < 0.5:
        tex = Texture(stripe_freq=(0.0, 0.0, 1.0 / rng.uniform(0.15, 0.3)), stripe_amp=0.6)
    else:
        tex = Texture(
            stripe_freq=(0.0, 1.0 / w, 0.0), stripe_amp=0.5, checker_size=h, checker_amp=0.2
        )
    body_h = h - feet - 0.03
    put(
        b,
        obj,
        "box",
        body,
        "cabinet/body",
        (0, 0, feet + body_h / 2),
        (d / 2, w / 2, body_h / 2),
        Surface(s.color, shade(s.color, 0.6), tex),
    )
    put(
        b,
        obj,
        "box",
        top,
        "cabinet/top",
        (0, 0, h - 0.015),
        (d / 2 + 0.01, w / 2 + 0.01, 0.015),
        darker(s, 0.85),
    )
    if feet > 0.02:
        legs = b.new_part()
        for sx in (-1, 1):
            for sy in (-1, 1):
                c = (sx * (d / 2 - 0.04), sy * (w / 2 - 0.04), feet / 2)
                put(
                    b,
                    obj,
                    "cylinder",
                    legs,
                    "cabinet/legs",
                    c,
                    (0.02, 0.02, feet / 2),
                    darker(s, 0.7),
                )


def _floor_lamp(
    b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool
) -> None:
    rng = b.rng
    stand, shade_part = b.new_part(), b.new_part()
    metal = mat.material(b, "plaster", METAL)
    h = size[2]
    r = rng.uniform(0.12, 0.18)
    put(b, obj, "cylinder", stand, "floor_lamp/stand", (0, 0, 0.015), (r, r, 0.015), metal, 0.0)
    put(
        b,
        obj,
        "cylinder",
        stand,
        "floor_lamp/stand",
        (0, 0, h / 2),
        (0.02, 0.02, h / 2),
        metal,
        0.0,
    )
    lamp = mat.material(b, "fabric", (0.93, 0.88, 0.72))
    if rng.random() < 0.7:
        sr = rng.uniform(0.15, 0.24)
        put(
            b,
            obj,
            "cylinder",
            shade_part,
            "floor_lamp/shade",
            (0, 0, h + 0.08),
            (sr, sr, rng.uniform(0.1, 0.16)),
            lamp,
            0.0,
        )
    else:
        sr = rng.uniform(0.12, 0.18)
        put(
            b,
            obj,
            "sphere",
            shade_part,
            "floor_lamp/shade",
            (0, 0, h + sr * 0.8),
            (sr, sr, sr),
            lamp,
            0.0,
        )


def _table_lamp(
    b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool
) -> None:
    rng = b.rng
    stand, shade_part = b.new_part(), b.new_part()
    base = mat.surface(b, ("plaster", "stone", "noise"), held_out=ho)
    h = rng.uniform(0.18, 0.3)
    r = rng.uniform(0.04, 0.08)
    put(b, obj, "cylinder", stand, "table_lamp/stand", (0, 0, h / 2), (r, r, h / 2), base, 0.0)
    lamp = mat.material(b, "fabric", (0.95, 0.92, 0.8))
    sr = rng.uniform(0.1, 0.16)
    put(
        b,
        obj,
        "cylinder",
        shade_part,
        "table_lamp/shade",
        (0, 0, h + 0.08),
        (sr, sr, 0.09),
        lamp,
        0.0,
    )


def _plant(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A pot and foliage: a bush (one sphere), a cluster (three spheres) or a column (cactus)."""
    rng = b.rng
    pot, leaves = b.new_part(), b.new_part()
    pot_s = mat.surface(b, ("plaster", "stone", "noise"), base=(0.62, 0.33, 0.22), held_out=ho)
    r = size[1] / 4
    pot_h = rng.uniform(0.25, 0.45)
    put(b, obj, "cylinder", pot, "plant/pot", (0, 0, pot_h / 2), (r, r, pot_h / 2), pot_s, 0.0)
    green = mat.material(b, "fabric", (0.2, 0.45, 0.18))
    style = int(rng.integers(3))
    if style == 0:
        fr = size[1] / 2 * rng.uniform(0.75, 1.0)
        put(
            b,
            obj,
            "sphere",
            leaves,
            "plant/foliage",
            (0, 0, pot_h + fr * 0.8),
            (fr, fr, fr),
            green,
            0.0,
        )
    elif style == 1:
        for k in range(3):
            a = rng.uniform(0, 2 * math.pi)
            fr = size[1] / 4 * rng.uniform(0.8, 1.0)
            c = (0.6 * fr * math.cos(a), 0.6 * fr * math.sin(a), pot_h + fr * (1.0 + 0.9 * k))
            put(b, obj, "sphere", leaves, "plant/foliage", c, (fr, fr, fr), green, 0.0)
    else:
        ch = rng.uniform(0.5, 1.1)
        cr = r * rng.uniform(0.5, 0.8)
        put(
            b,
            obj,
            "cylinder",
            leaves,
            "plant/foliage",
            (0, 0, pot_h + ch / 2),
            (cr, cr, ch / 2),
            green,
            0.0,
        )


def _boxes(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """One to three boxes stacked, each smaller and turned a little."""
    rng = b.rng
    z = 0.0
    s = mat.surface(b, ("plaster", "weave", "noise"), base=(0.66, 0.5, 0.32), held_out=ho)
    for k in range(int(rng.integers(1, 4))):
        part = b.new_part()
        hx, hy = (
            size[0] / 2 * 0.85**k * rng.uniform(0.7, 1.0),
            size[1] / 2 * 0.85**k * rng.uniform(0.7, 1.0),
        )
        hz = rng.uniform(0.08, 0.2)
        yaw = obj.yaw + rng.uniform(-0.3, 0.3)
        put(b, obj, "box", part, "boxes/box", (0, 0, z + hz), (hx, hy, hz), s, yaw)
        z += 2 * hz


def _door(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A door leaf in a frame, back on the wall plane, with a handle."""
    rng = b.rng
    d, w, h = size
    leaf, frame, handle = b.new_part(), b.new_part(), b.new_part()
    leaf_s = mat.surface(b, ("wood", "plaster", "noise"), held_out=ho)
    frame_s = (
        darker(leaf_s, 0.75) if rng.random() < 0.5 else mat.material(b, "plaster", (0.9, 0.9, 0.88))
    )
    put(
        b,
        obj,
        "box",
        frame,
        "door/frame",
        (d / 2, 0, h / 2 + 0.02),
        (d / 2, w / 2 + 0.06, h / 2 + 0.04),
        frame_s,
    )
    put(
        b,
        obj,
        "box",
        leaf,
        "door/leaf",
        (d / 2 + 0.01, 0, h / 2),
        (d / 2 + 0.01, w / 2, h / 2),
        leaf_s,
    )
    hy = w / 2 - 0.08
    put(
        b,
        obj,
        "sphere",
        handle,
        "door/handle",
        (d + 0.04, hy, 1.0),
        (0.03, 0.03, 0.03),
        mat.material(b, "plaster", METAL),
        0.0,
    )


def _window(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A window: a frame on the wall and a pale glass pane (the sky) inside it; the origin is at
    the window's centre on the wall."""
    rng = b.rng
    d, w, h = size
    frame, glass = b.new_part(), b.new_part()
    frame_s = mat.surface(
        b, ("wood", "plaster"), base=None if rng.random() < 0.5 else (0.92, 0.92, 0.9), held_out=ho
    )
    put(b, obj, "box", frame, "window/frame", (d / 2, 0, 0), (d / 2, w / 2, h / 2), frame_s)
    sky = mat.material(b, "plaster", (0.75, 0.85, 0.95))
    put(
        b,
        obj,
        "box",
        glass,
        "window/glass",
        (d / 2 + 0.01, 0, 0),
        (d / 2, w / 2 - 0.06, h / 2 - 0.06),
        sky,
    )
    if rng.random() < 0.5:  # a mullion
        put(
            b,
            obj,
            "box",
            frame,
            "window/frame",
            (d + 0.015, 0, 0),
            (0.01, 0.025, h / 2 - 0.06),
            frame_s,
        )


def _rug(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A very thin box on the floor (round rugs: a thin cylinder)."""
    rng = b.rng
    part = b.new_part()
    s = mat.surface(b, ("carpet", "weave", "tiles", "noise"), held_out=ho)
    if rng.random() < 0.25:
        r = min(size[0], size[1]) / 2
        put(b, obj, "cylinder", part, "rug", (0, 0, 0.005), (r, r, 0.005), s)
    else:
        put(b, obj, "box", part, "rug", (0, 0, 0.005), (size[0] / 2, size[1] / 2, 0.005), s)


def _picture(b: SceneBuilder, obj: ObjectFrame, size: tuple[float, float, float], ho: bool) -> None:
    """A framed canvas whose back is on the wall plane at the origin (its centre)."""
    rng = b.rng
    d, w, h = size
    frame, canvas = b.new_part(), b.new_part()
    frame_s = mat.surface(b, ("wood", "plaster"), held_out=ho)
    put(b, obj, "box", frame, "picture/frame", (d / 2, 0, 0), (d / 2, w / 2, h / 2), frame_s)
    art = mat.material(b, "noise", tuple(float(x) for x in rng.uniform(0.15, 0.9, 3)))
    border = rng.uniform(0.03, 0.07)
    put(
        b,
        obj,
        "box",
        canvas,
        "picture/canvas",
        (d / 2 + 0.005, 0, 0),
        (d / 2, w / 2 - border, h / 2 - border),
        art,
    )


_BUILDERS: dict[
    str, Callable[[SceneBuilder, ObjectFrame, tuple[float, float, float], bool], None]
] = {
    "shelves": _shelves,
    "cabinet": _cabinet,
    "floor_lamp": _floor_lamp,
    "table_lamp": _table_lamp,
    "plant": _plant,
    "boxes": _boxes,
    "door": _door,
    "window": _window,
    "rug": _rug,
    "picture": _picture,
}


def add_other(
    b: SceneBuilder,
    at: Placement,
    kind: str,
    *,
    size: tuple[float, float, float],
    held_out: bool = False,
) -> None:
    """One object of ``kind`` (``OTHER_KINDS``), ``size`` = (depth along local x, width, height)
    in metres; ValueError for an unknown kind or a non-positive size."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown object kind {kind!r}; kinds: {', '.join(OTHER_KINDS)}")
    if min(size) <= 0:
        raise ValueError(f"object size must be positive, got {size}")
    _BUILDERS[kind](b, b.new_object("others", at, label=kind), size, held_out)


def add_clutter(b: SceneBuilder, at: Placement, kind: str, *, held_out: bool = False) -> float:
    """One small item of ``kind`` (``CLUTTER_KINDS``) standing at ``at``; returns its radius in
    the floor plane (metres)."""
    if kind not in CLUTTER_KINDS:
        raise ValueError(f"unknown clutter kind {kind!r}; kinds: {', '.join(CLUTTER_KINDS)}")
    rng = b.rng
    obj = b.new_object("others", at, label=kind)
    part = b.new_part()
    s = mat.surface(b, ("plaster", "noise", "stone", "fabric"), held_out=held_out)
    name = f"{kind}/body"
    if kind in ("cup", "vase", "bin"):
        r = {"cup": (0.035, 0.05), "vase": (0.05, 0.09), "bin": (0.12, 0.18)}[kind]
        radius = rng.uniform(*r)
        hh = radius * rng.uniform(1.0, 1.8) if kind != "vase" else radius * rng.uniform(2.0, 3.5)
        put(b, obj, "cylinder", part, name, (0, 0, hh), (radius, radius, hh), s, 0.0)
        return radius
    if kind in ("bowl", "ball"):
        radius = rng.uniform(0.06, 0.1) if kind == "bowl" else rng.uniform(0.08, 0.15)
        z = radius * (0.45 if kind == "bowl" else 1.0)
        put(b, obj, "sphere", part, name, (0, 0, z), (radius, radius, radius), s, 0.0)
        return radius
    if kind == "book":
        hx, hy, hz = rng.uniform(0.07, 0.12), rng.uniform(0.1, 0.15), rng.uniform(0.01, 0.03)
        s = mat.material(b, "fabric")
    else:
        hx, hy, hz = rng.uniform(0.06, 0.15), rng.uniform(0.06, 0.15), rng.uniform(0.04, 0.12)
    put(b, obj, "box", part, name, (0, 0, hz), (hx, hy, hz), s)
    return math.hypot(hx, hy)


__all__ = ["CLUTTER_KINDS", "OTHER_KINDS", "add_clutter", "add_other"]
