"""Synthetic examples: shapes, determinism, target views between context views, moving rigs."""

from __future__ import annotations

import pytest
import torch

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import get_rig, rig_cameras
from semanticsplat_ros.data.synthetic import (
    SyntheticDataset,
    ViewSampling,
    cached_scene,
    make_example,
)
from semanticsplat_ros.data.types import DEFAULT_NEAR, collate


def test_example_shapes_and_determinism():
    ex = make_example(7, 32, 40, num_context=3, num_target=2, index=1)
    assert ex.context.images.shape == (3, 3, 32, 40) and ex.target.images.shape == (2, 3, 32, 40)
    assert ex.context.labels.shape == (3, 32, 40) and ex.target.groups.dtype == torch.int64
    again = make_example(7, 32, 40, num_context=3, num_target=2, index=1)
    assert torch.equal(ex.context.images, again.context.images)
    assert torch.equal(ex.target.c2w, again.target.c2w)
    other = make_example(7, 32, 40, num_context=3, num_target=2, index=2)
    assert not torch.equal(ex.context.c2w, other.context.c2w)


def test_targets_lie_between_context_cameras_with_small_baselines():
    for i in range(6):
        ex = make_example(100_000 + i, 16, 16)
        c = ex.context.c2w[:, :3, 3]
        baseline = float((c[0] - c[1]).norm())
        assert 0.08 <= baseline <= 0.6, baseline
        for t in ex.target.c2w[:, :3, 3]:
            # between the two context cameras: no farther from either than they are apart
            assert float((t - c[0]).norm()) <= baseline + 0.02
            assert float((t - c[1]).norm()) <= baseline + 0.02
        # viewing directions close to the context ones (overlapping frusta)
        fwd_c = ex.context.c2w[:, :3, 2]
        fwd_t = ex.target.c2w[:, :3, 2]
        assert float((fwd_t @ fwd_c.T).min()) > 0.85


def test_the_depth_range_holds_the_views_and_the_candidates_are_not_spent_nearer():
    depth = []
    for i in range(12):
        ex = make_example(300_000 + i, 24, 24)
        v = ex.context
        assert torch.all(v.near == DEFAULT_NEAR) and torch.all(v.far > v.near)
        valid = v.depth > 0
        assert torch.all(v.depth[valid] < v.far[:, None, None].expand_as(v.depth)[valid])
        depth.append(v.depth[valid])
    d = torch.cat(depth)
    # Almost nothing lies nearer than the near plane (it is clamped there) ...
    assert float((d < DEFAULT_NEAR).float().mean()) < 0.005
    # ... and the inverse-depth candidates nearer than 1 m (where few pixels are) are a minority.
    inv_near, inv_far = 1.0 / DEFAULT_NEAR, 1.0 / float(d.max())
    assert (inv_near - 1.0) / (inv_near - inv_far) < 0.55
    assert float((d < 1.0).float().mean()) < 0.15


def test_dataset_indexing_and_collate():
    ds = SyntheticDataset(range(10, 13), height=16, width=16, examples_per_scene=2)
    assert len(ds) == 6
    assert ds[3].scene_id == "synthetic_000011_1"
    assert torch.equal(ds[-1].context.images, ds[5].context.images)
    batch = collate([ds[0], ds[1]])
    assert batch.context.images.shape == (2, 2, 3, 16, 16)
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ValueError, match="non-empty range"):
        SyntheticDataset(range(0))
    with pytest.raises(ValueError, match="num_context"):
        make_example(0, 16, 16, num_context=0)


def test_the_stereo_rig_moves_between_successive_frames():
    scene = cached_scene(3)
    a, b = (
        render_views(scene, *rig_cameras(scene, "stereo", t, 24, 32), 24, 32) for t in (0.0, 0.1)
    )
    assert [c.name for c in get_rig("stereo").cameras] == ["left", "right"]
    assert a.images.shape == (2, 3, 24, 32)
    step = float((a.c2w[0, :3, 3] - b.c2w[0, :3, 3]).norm())
    assert 0.01 < step < 0.05  # 0.2-0.35 m/s over 0.1 s


def test_dataset_near_plane_override_changes_only_the_range():
    plain = SyntheticDataset(range(5, 6), height=16, width=16)[0]
    ex = SyntheticDataset(range(5, 6), height=16, width=16, near=0.25)[0]
    assert torch.all(ex.context.near == 0.25) and torch.all(ex.target.near == 0.25)
    assert torch.equal(ex.context.images, plain.context.images)
    assert torch.equal(ex.context.depth, plain.context.depth)
    with pytest.raises(ValueError, match="near"):
        SyntheticDataset(range(5, 6), near=0.0)


def test_rig_instant_context_is_the_rig_at_one_instant_and_targets_are_its_cameras_nearby():
    sampling = ViewSampling(rig="stereo", rig_instant=True)
    ex = make_example(100_001, 24, 32, num_context=2, num_target=3, index=4, sampling=sampling)
    assert ex.context.images.shape == (2, 3, 24, 32) and ex.target.images.shape == (3, 3, 24, 32)
    c = ex.context.c2w
    # the stereo head: 11 cm apart along the cameras' x axis, same orientation (one instant)
    assert float((c[0, :3, 3] - c[1, :3, 3]).norm()) == pytest.approx(0.11, abs=1e-4)
    assert torch.allclose(c[0, :3, :3], c[1, :3, :3], atol=1e-5)
    baseline_dir = (c[1, :3, 3] - c[0, :3, 3]) / 0.11
    assert float(baseline_dir @ c[0, :3, 0]) == pytest.approx(1.0, abs=1e-4)  # right along +x
    # targets: rig cameras near that instant (at most max_span_s / 2 = 0.7 s at <= 0.35 m/s)
    for t in ex.target.c2w:
        assert float((t[:3, 3] - c[:, :3, 3]).norm(dim=-1).min()) <= 0.35 * 0.7 + 0.12
        assert float(t[:3, 2] @ c[0, :3, 2]) > 0.8  # looking at what the context sees
    again = make_example(100_001, 24, 32, num_context=2, num_target=3, index=4, sampling=sampling)
    assert torch.equal(ex.target.c2w, again.target.c2w)
    with pytest.raises(ValueError, match="num_context must be 2"):
        make_example(100_001, 24, 32, num_context=3, sampling=sampling)
    with pytest.raises(ValueError, match="num_context must be 4"):
        SyntheticDataset(
            range(2), num_context=2, sampling=ViewSampling(rig="ring4", rig_instant=True)
        )


def test_view_sampling_validates_itself():
    with pytest.raises(ValueError, match="context span"):
        ViewSampling(min_span_s=2.0, max_span_s=1.0)
    with pytest.raises(ValueError, match="unknown rig 'nope'"):
        ViewSampling(rig="nope")
    with pytest.raises(ValueError, match="target_margin"):
        ViewSampling(target_margin=0.5)
