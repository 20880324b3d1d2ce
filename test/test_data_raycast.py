"""Ray casting: shapes, reference vs culled kernel, multi-view consistency, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semanticsplat_ros.data.raycast import camera_rays, cast_rays, render_views
from semanticsplat_ros.data.rigs import rig_cameras
from semanticsplat_ros.data.world import make_scene
from semanticsplat_ros.geometry.cameras import invert_pose
from semanticsplat_ros.geometry.projection import project, transform_points, unproject_depth


def _views(seed: int, rig: str, t: float, h: int = 64, w: int = 80):
    scene = make_scene(seed)
    c2w, K = rig_cameras(scene, rig, t, h, w, seed=1)
    return scene, render_views(scene, c2w, K, h, w)


def test_shapes_dtypes_and_ranges():
    scene, v = _views(0, "head_wrist", 4.0)
    assert v.images.shape == (2, 3, 64, 80) and v.images.dtype == torch.float32
    assert float(v.images.min()) >= 0.0 and float(v.images.max()) <= 1.0
    for ids in (v.labels, v.instances, v.parts, v.groups):
        assert ids.shape == (2, 64, 80) and ids.dtype == torch.int64
        assert int(ids.min()) >= 0  # cameras inside the room: every pixel hits something
    assert v.depth.shape == (2, 64, 80) and float(v.depth.min()) > 0.2
    assert float(v.depth.max()) < scene.diagonal < float(v.far[0])
    assert v.near.shape == (2,) and (v.near < v.far).all()
    # images have texture, not flat colours
    assert float(v.images.std(dim=(2, 3)).mean()) > 0.05


def test_culled_renderer_matches_brute_force_reference():
    for seed, rig, t in ((3, "stereo", 0.0), (7, "ring4", 11.0), (11, "head_wrist", 30.0)):
        scene, v = _views(seed, rig, t, 40, 48)
        origins, dirs = camera_rays(v.c2w, v.K, 40, 48)
        n = v.num_views
        hits = cast_rays(scene, origins.repeat_interleave(40 * 48, 0), dirs.reshape(-1, 3))
        assert torch.allclose(hits.t.reshape(n, 40, 48), v.depth, atol=1e-5)
        ref_parts = scene.table().ids[hits.prim][:, 2].reshape(n, 40, 48)
        assert torch.equal(ref_parts, v.parts)


def test_same_seed_identical_arrays():
    _, a = _views(4, "stereo", 2.0)
    _, b = _views(4, "stereo", 2.0)
    for name in ("images", "depth", "labels", "instances", "parts", "groups", "c2w", "K"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    _, c = _views(5, "stereo", 2.0)
    assert not torch.equal(a.images, c.images)


def _reprojection_agreement(scene, v, a: int, b: int) -> tuple[float, float, int]:
    """Fraction of co-visible pixels of view a that land on the same surface in view b."""
    h, w = v.height, v.width
    pts = unproject_depth(v.depth[a], v.K[a], v.c2w[a]).reshape(-1, 3)
    cam_b = transform_points(invert_pose(v.c2w[b]), pts)
    uv, z = project(cam_b, v.K[b])
    inside = (z > 0.05) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    # co-visible: nothing in front of the point seen from camera b (independent ray cast)
    o_b = v.c2w[b, :3, 3].expand_as(pts)
    hits = cast_rays(scene, o_b, pts - o_b)
    covisible = inside & (hits.t > 0.995)
    # "Lands on the same surface within 1 px": z lies within the depths b sees within one pixel
    # of the projection (3×3 neighbourhood, 1% slack); ids are read at the best-matching pixel.
    j0 = uv[:, 0].floor().long()
    i0 = uv[:, 1].floor().long()
    best_err = torch.full_like(z, float("inf"))
    best_i, best_j = i0.clamp(0, h - 1), j0.clamp(0, w - 1)
    d_lo = torch.full_like(z, float("inf"))
    d_hi = torch.zeros_like(z)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i = (i0 + di).clamp(0, h - 1)
            j = (j0 + dj).clamp(0, w - 1)
            d = v.depth[b][i, j]
            d_lo, d_hi = torch.minimum(d_lo, d), torch.maximum(d_hi, d)
            err = (d - z).abs() / z.clamp_min(1e-3)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_i, best_j = torch.where(better, i, best_i), torch.where(better, j, best_j)
    close = (z >= 0.99 * d_lo) & (z <= 1.01 * d_hi)
    same = (v.labels[a].reshape(-1) == v.labels[b][best_i, best_j]) & (
        v.instances[a].reshape(-1) == v.instances[b][best_i, best_j]
    )
    m = covisible
    return float(close[m].float().mean()), float(same[m].float().mean()), int(m.sum())


@pytest.mark.parametrize(
    ("seed", "rig", "t"), [(1, "stereo", 3.0), (8, "head_wrist", 17.0), (13, "ring4", 5.0)]
)
def test_multiview_depth_consistency_and_label_agreement(seed, rig, t):
    scene, v = _views(seed, rig, t, 96, 96)
    for a, b in ((0, 1), (1, 0)):
        close, same, count = _reprojection_agreement(scene, v, a, b)
        assert count > 200, count  # the rigs' views overlap
        assert close >= 0.95, (close, count)
        assert same >= 0.95, (same, count)


def test_consistency_across_time_on_a_trajectory():
    scene = make_scene(21)
    c0, K0 = rig_cameras(scene, "mono", 10.0, 96, 96)
    c1, K1 = rig_cameras(scene, "mono", 11.0, 96, 96)
    v = render_views(scene, torch.cat([c0, c1]), torch.cat([K0, K1]), 96, 96)
    close, same, count = _reprojection_agreement(scene, v, 0, 1)
    assert count > 0.5 * 96 * 96  # a second apart: large overlap
    assert close >= 0.95 and same >= 0.95


def test_bad_camera_inputs():
    scene = make_scene(0)
    c2w, K = rig_cameras(scene, "stereo", 0.0, 32, 32)
    bad = c2w.clone()
    bad[0, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="orthonormal"):
        render_views(scene, bad, K, 32, 32)
    with pytest.raises(ValueError, match="same v"):
        render_views(scene, c2w, K[:1], 32, 32)
    with pytest.raises(ValueError, match="positive"):
        render_views(scene, c2w, K, 0, 32)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        cast_rays(scene, torch.zeros(4, 3), torch.zeros(5, 3))
    assert np.isfinite(render_views(scene, c2w, K, 32, 32).depth.numpy()).all()
