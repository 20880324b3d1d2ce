"""Synthetic world: determinism, id hierarchy, class coverage, cameras outside furniture."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch

from semanticsplat_ros.data.builder import Placement, SceneBuilder
from semanticsplat_ros.data.classes import CLASS_ID, NUM_CLASSES
from semanticsplat_ros.data.furniture import OtherKind, add_chair, add_other
from semanticsplat_ros.data.rigs import RIGS, get_rig, head_state, rig_cameras
from semanticsplat_ros.data.scene import KIND_ROOM_FACE, Primitive
from semanticsplat_ros.data.splits import SPLITS, parse_seeds, split_of
from semanticsplat_ros.data.world import make_scene


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = make_scene(5), make_scene(5), make_scene(6)
    assert a.primitives == b.primitives
    assert a.room_max == b.room_max
    assert a.primitives != c.primitives


def test_room_faces_first_and_ids_contiguous():
    for seed in range(10):
        scene = make_scene(seed)
        prims = scene.primitives
        assert [p.kind for p in prims[:6]] == ["room"] * 6
        assert [p.class_id for p in prims[:6]] == [CLASS_ID[n] for n in
                                                   ("floor", "ceiling", *["wall"] * 4)]  # fmt: skip
        assert all(p.kind != "room" for p in prims[6:])
        for attr in ("instance_id", "part_id", "group_id"):
            ids = sorted({getattr(p, attr) for p in prims})
            assert ids == list(range(len(ids))), attr
        # room faces: their own part, instance and group
        for i, p in enumerate(prims[:6]):
            assert (p.instance_id, p.part_id, p.group_id) == (i, i, i)
        assert 10 <= scene.num_primitives <= 90


def test_hierarchy_nests_part_in_instance_in_group():
    for seed in range(20):
        prims = make_scene(seed).primitives
        part_to_inst, inst_to_group, inst_to_class = {}, {}, {}
        for p in prims:
            assert part_to_inst.setdefault(p.part_id, p.instance_id) == p.instance_id
            assert inst_to_group.setdefault(p.instance_id, p.group_id) == p.group_id
            assert inst_to_class.setdefault(p.instance_id, p.class_id) == p.class_id
        # meaningful parts: a chair has seat, back and legs
        for inst, cls in inst_to_class.items():
            if cls == CLASS_ID["chair"]:
                names = {p.name for p in prims if p.instance_id == inst}
                assert names == {"chair/seat", "chair/back", "chair/legs"}


def test_every_class_appears_and_primitive_count_is_moderate():
    seen = np.zeros(NUM_CLASSES, dtype=int)
    counts = []
    for seed in range(40):
        scene = make_scene(seed)
        counts.append(scene.num_primitives)
        for c in {p.class_id for p in scene.primitives}:
            seen[c] += 1
    assert (seen >= 10).all(), seen
    assert max(counts) <= 90 and np.mean(counts) >= 20


def _inside_any_solid(scene, points: np.ndarray, margin: float = 0.05) -> np.ndarray:
    inside = np.zeros(len(points), dtype=bool)
    for p in scene.primitives:
        if p.kind == "room":
            continue
        rel = points - np.asarray(p.center)
        c, s = np.cos(p.yaw), np.sin(p.yaw)
        local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1],
                          rel[:, 2]], axis=1)  # fmt: skip
        inside |= np.all(np.abs(local) <= np.asarray(p.half_extents) + margin, axis=1)
    return inside


@pytest.mark.parametrize("rig", list(RIGS))
def test_rig_cameras_stay_in_room_and_out_of_furniture(rig):
    for seed in range(12):
        scene = make_scene(seed)
        centres = []
        for t in np.linspace(0.0, 120.0, 40):
            c2w, K = rig_cameras(scene, rig, float(t), 48, 64, seed=seed % 3)
            assert c2w.shape == (len(get_rig(rig).cameras), 4, 4) and K.shape[-2:] == (3, 3)
            centres.append(c2w[:, :3, 3].numpy())
        pts = np.concatenate(centres)
        assert (pts > np.asarray(scene.room_min) + 0.2).all()
        assert (pts < np.asarray(scene.room_max) - 0.2).all()
        assert not _inside_any_solid(scene, pts).any(), (seed, rig)
        assert (pts[:, 2] >= 0.4).all() and (pts[:, 2] <= 1.6).all()


def test_stereo_baseline_and_rig_errors():
    scene = make_scene(1)
    c2w, K = rig_cameras(scene, "stereo", 3.0, 64, 64)
    baseline = float((c2w[0, :3, 3] - c2w[1, :3, 3]).norm())
    assert 0.10 <= baseline <= 0.12
    # pixel centres at +0.5: principal point at the image centre
    assert K[0, 0, 2] == 32.0 and K[0, 1, 2] == 32.0
    with pytest.raises(ValueError, match="unknown rig 'nope'"):
        rig_cameras(scene, "nope", 0.0, 64, 64)
    with pytest.raises(TypeError):
        make_scene("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        make_scene(-1)


def test_head_moves_smoothly():
    scene = make_scene(2)
    a, b = head_state(scene, 10.0), head_state(scene, 10.4)
    step = float(np.linalg.norm(a.position - b.position))
    assert 0.04 < step < 0.2  # 0.2-0.35 m/s
    assert abs(a.yaw - b.yaw) < 0.3


def test_parse_seeds_and_splits():
    assert parse_seeds("3:7") == range(3, 7)
    assert parse_seeds("12") == range(12, 13)
    assert parse_seeds("val") == SPLITS["val"]
    for bad in ("7:3", "5:5", "a:b", "1:2:3", "-1:4", ""):
        with pytest.raises(ValueError, match="bad seeds"):
            parse_seeds(bad)
    with pytest.raises(TypeError):
        parse_seeds(3)  # type: ignore[arg-type]
    ranges = list(SPLITS.values())
    for i, r in enumerate(ranges):
        for other in ranges[i + 1 :]:
            assert r.stop <= other.start or other.stop <= r.start
    assert split_of(100_500) == "val" and split_of(150_000) is None


def test_kind_codes_distinct():
    table = make_scene(0).table()
    assert (table.kind[:6] == KIND_ROOM_FACE).all() and (table.kind[6:] != KIND_ROOM_FACE).all()
    assert table.texture.dtype == torch.float32


@pytest.mark.parametrize("kind", get_args(OtherKind))
def test_every_other_kind_builds_named_parts_of_one_instance(kind):
    b = SceneBuilder(np.random.default_rng(0))
    add_other(b, kind, Placement((1.0, 2.0, 0.0), 0.5, b.new_group()))
    assert b.prims and {p.class_id for p in b.prims} == {CLASS_ID["others"]}
    assert {p.instance_id for p in b.prims} == {0} and {p.group_id for p in b.prims} == {0}
    assert all(p.name.split("/")[0] == kind for p in b.prims)
    assert b.instance_names == {0: f"{kind}_0"}


def test_rollback_drops_the_parts_and_reuses_the_ids():
    b = SceneBuilder(np.random.default_rng(0))
    state = b.checkpoint()
    add_chair(b, Placement((1.0, 1.0, 0.0), 0.0, b.new_group()))
    assert len(b.prims) == 6 and b.next_part == 3 and b.instance_names == {0: "chair_0"}
    b.rollback(state)
    assert b.prims == [] and (b.next_instance, b.next_part, b.next_group) == (0, 0, 0)
    assert b.instance_names == {}


def test_unknown_kinds_are_refused():
    b = SceneBuilder(np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown object kind 'sofa_bed'"):
        add_other(b, "sofa_bed", Placement((1.0, 1.0, 0.0), 0.0, 0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown primitive kind 'cone'"):
        Primitive(
            kind="cone",  # type: ignore[arg-type]
            center=(0.0, 0.0, 0.0),
            half_extents=(1.0, 1.0, 1.0),
            yaw=0.0,
            class_id=0,
            instance_id=0,
            part_id=0,
            group_id=0,
            color=(0.5, 0.5, 0.5),
            color2=(0.5, 0.5, 0.5),
        )
