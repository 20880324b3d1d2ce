"""Varied synthetic world: determinism, room sizes, class coverage, held-out families, camera
loop clearance, wall blocks, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from semanticsplat_ros.data import materials
from semanticsplat_ros.data.builder import Placement, SceneBuilder
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.furniture_varied import FAMILIES, add_chair, add_table
from semanticsplat_ros.data.furniture_varied_others import (
    CLUTTER_KINDS,
    OTHER_KINDS,
    add_clutter,
    add_other,
)
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import rig_cameras
from semanticsplat_ros.data.world_varied import HELD_OUT_FAMILIES, make_varied_scene

SEEDS = range(50)
FURNITURE = ("chair", "table", "bed", "sofa")


def _families(scene) -> dict[str, set[str]]:
    """Class -> shape families of its instances, read from the instance names."""
    cls_of = {p.instance_id: p.class_id for p in scene.primitives}
    out: dict[str, set[str]] = {c: set() for c in FURNITURE}
    for inst, name in scene.instance_names.items():
        for c in FURNITURE:
            if cls_of[inst] == CLASS_ID[c]:
                family = name[len(c) + 1 :].rsplit("_", 1)[0]
                assert family in FAMILIES[c], name
                out[c].add(family)
    return out


def _footprint_distance(p, points: np.ndarray) -> float:
    c, s = abs(np.cos(p.yaw)), abs(np.sin(p.yaw))
    hx, hy = p.half_extents[0], p.half_extents[1]
    ext = np.array([c * hx + s * hy, s * hx + c * hy])
    lo, hi = np.asarray(p.center[:2]) - ext, np.asarray(p.center[:2]) + ext
    d = np.maximum(np.maximum(lo - points, points - hi), 0.0)
    return float(np.min(np.linalg.norm(d, axis=-1)))


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = make_varied_scene(7), make_varied_scene(7), make_varied_scene(8)
    assert a.primitives == b.primitives and a.room_max == b.room_max and a.path == b.path
    assert a.instance_names == b.instance_names
    assert a.primitives != c.primitives
    assert make_varied_scene(7, held_out=True).primitives != a.primitives


def test_rooms_ids_and_classes_over_seeds():
    seen = dict.fromkeys(FURNITURE, 0)
    for seed in SEEDS:
        scene = make_varied_scene(seed)
        lo, hi = np.asarray(scene.room_min), np.asarray(scene.room_max)
        assert 2.3 <= hi[2] - lo[2] <= 3.5
        assert (hi[:2] - lo[:2] >= 4.5).all() and (hi[:2] - lo[:2] <= 9.0).all()
        prims = scene.primitives
        assert [p.kind for p in prims[:6]] == ["room"] * 6
        assert all(p.kind != "room" for p in prims[6:])
        for attr in ("instance_id", "part_id", "group_id"):
            ids = sorted({getattr(p, attr) for p in prims})
            assert ids == list(range(len(ids))), attr
        part_to_inst, inst_to_group = {}, {}
        for p in prims:
            assert part_to_inst.setdefault(p.part_id, p.instance_id) == p.instance_id
            assert inst_to_group.setdefault(p.instance_id, p.group_id) == p.group_id
            assert not p.name.startswith("rug") or p.class_id == CLASS_ID["others"]
        classes = {p.class_id for p in prims}
        for c in FURNITURE:
            seen[c] += CLASS_ID[c] in classes
    assert all(n >= 3 for n in seen.values()), seen


def test_held_out_families_are_never_built_in_ordinary_scenes_and_only_in_held_out_ones():
    built = {False: {c: set() for c in FURNITURE}, True: {c: set() for c in FURNITURE}}
    for held_out in (False, True):
        for seed in SEEDS:
            for c, fams in _families(make_varied_scene(seed, held_out=held_out)).items():
                built[held_out][c] |= fams
    for c in FURNITURE:
        assert HELD_OUT_FAMILIES[c] not in built[False][c], c
        assert built[True][c] == {HELD_OUT_FAMILIES[c]}, c
        assert len(built[False][c]) >= 2, (c, built[False][c])


def test_held_out_material_only_in_held_out_scenes(monkeypatch):
    used: list[str] = []
    original = materials.material

    def recording(b, family, base=None, *, big=False):
        used.append(family)
        return original(b, family, base, big=big)

    monkeypatch.setattr(materials, "material", recording)
    for seed in range(20):
        used.clear()
        make_varied_scene(seed)
        assert HELD_OUT_FAMILIES["material"] not in used
        assert len(set(used)) >= 4
        used.clear()
        make_varied_scene(seed, held_out=True)
        assert HELD_OUT_FAMILIES["material"] in used


def test_camera_loop_is_clear_of_every_primitive():
    for held_out in (False, True):
        for seed in SEEDS:
            scene = make_varied_scene(seed, held_out=held_out)
            points = scene.path.point(np.linspace(0.0, 1.0, 600, endpoint=False))
            assert (points > 0.9).all() and (points < np.asarray(scene.room_max[:2]) - 0.9).all()
            for p in scene.primitives[6:]:
                assert _footprint_distance(p, points) >= 0.4, (seed, held_out, p.name)


def test_wall_blocks_shape_some_rooms():
    shapes: set[str] = set()
    for seed in SEEDS:
        scene = make_varied_scene(seed)
        blocks = [p for p in scene.primitives[6:] if p.class_id == CLASS_ID["wall"]]
        for p in blocks:
            assert p.kind == "box" and p.name == "wall/block"
            assert abs(2 * p.half_extents[2] - scene.room_max[2]) < 1e-9
            shapes.add(scene.instance_names[p.instance_id].rsplit("_", 1)[0])
        assert len({p.instance_id for p in blocks}) == len({p.group_id for p in blocks})
    assert {"wall_l_shape", "wall_alcove", "wall_pillar"} <= shapes, shapes


@pytest.mark.parametrize("held_out", [False, True])
def test_renders_with_finite_depth_and_several_classes(held_out):
    for seed in range(6):
        scene = make_varied_scene(seed, held_out=held_out)
        for t in (0.0, 9.0):
            c2w, K = rig_cameras(scene, "stereo", t, 64, 64)
            views = render_views(scene, c2w, K, 64, 64)
            depth = views.depth.numpy()
            assert np.isfinite(depth).all()
            assert (depth > 0.05).mean() > 0.99, (seed, t)
            assert (views.labels >= 0).all()
            assert len(np.unique(views.labels.numpy())) >= 3, (seed, t)


def test_builders_and_bad_inputs():
    b = SceneBuilder(np.random.default_rng(0))
    for fam in FAMILIES["chair"]:
        add_chair(b, Placement((1.0, 1.0, 0.0), 0.3, b.new_group()), fam)
    for kind in OTHER_KINDS:
        add_other(b, Placement((2.0, 2.0, 0.0), 0.0, b.new_group()), kind, size=(0.4, 0.8, 1.2))
    for kind in CLUTTER_KINDS:
        assert add_clutter(b, Placement((2.0, 2.0, 0.7), 0.0, b.new_group()), kind) > 0
    for fam in materials.MATERIAL_FAMILIES:
        s = materials.material(b, fam)
        assert all(0.0 <= c <= 1.0 for c in (*s.color, *s.color2))
    names = set(b.instance_names.values())
    assert any(n.startswith("chair_office_") for n in names)
    with pytest.raises(ValueError, match="unknown chair family"):
        add_chair(b, Placement((0.0, 0.0, 0.0), 0.0, 0), "throne")
    with pytest.raises(ValueError, match="bad table size"):
        add_table(b, Placement((0.0, 0.0, 0.0), 0.0, 0), "round", size=(0.0, 1.0), height=0.7)
    with pytest.raises(ValueError, match="unknown object kind"):
        add_other(b, Placement((0.0, 0.0, 0.0), 0.0, 0), "tv", size=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="unknown material family"):
        materials.material(b, "glass")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        make_varied_scene(-1)
    with pytest.raises(ValueError, match="must be an int"):
        make_varied_scene("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be an int"):
        make_varied_scene(2.0)  # type: ignore[arg-type]
