"""geometry/: round trips, known projections, batch shapes and errors on bad input."""

from __future__ import annotations

import math

import pytest
import torch

from semanticsplat_ros.geometry import (
    check_intrinsics,
    check_pose,
    inverse_depth_candidates,
    invert_pose,
    normalize_quat,
    pixel_centers,
    plane_sweep_grid,
    project,
    quat_multiply,
    quat_to_rotmat,
    relative_pose,
    rotmat_to_quat,
    scale_intrinsics,
    transform_points,
    unproject,
    unproject_depth,
    warp_to_reference,
)


def random_pose(*batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    q = normalize_quat(torch.randn(*batch, 4, generator=generator, dtype=torch.float64))
    T = torch.eye(4, dtype=torch.float64).expand(*batch, 4, 4).clone()
    T[..., :3, :3] = quat_to_rotmat(q)
    T[..., :3, 3] = torch.randn(*batch, 3, generator=generator, dtype=torch.float64)
    return T


def make_K(fx: float, fy: float, cx: float, cy: float, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


@pytest.mark.parametrize("batch", [(), (3,), (2, 5)])
def test_invert_pose_round_trip(batch):
    g = torch.Generator().manual_seed(0)
    T = random_pose(*batch, generator=g)
    eye = torch.eye(4, dtype=torch.float64).expand_as(T)
    assert torch.allclose(T @ invert_pose(T), eye, atol=1e-12)
    assert torch.allclose(invert_pose(invert_pose(T)), T, atol=1e-12)
    check_pose(T)


def test_relative_pose_maps_ref_points_into_src():
    g = torch.Generator().manual_seed(1)
    c2w_ref, c2w_src = random_pose(generator=g), random_pose(generator=g)
    p_ref = torch.randn(7, 3, dtype=torch.float64, generator=g)
    world = transform_points(c2w_ref, p_ref)
    expected = transform_points(invert_pose(c2w_src), world)
    got = transform_points(relative_pose(c2w_ref, c2w_src), p_ref)
    assert torch.allclose(got, expected, atol=1e-12)


def test_known_projection_and_pixel_centre_convention():
    # A 4x4 image with the principal point at the image centre: a point on the optical axis lands
    # at (2, 2), the corner between the four central pixels (centres are at +0.5).
    K = make_K(10.0, 10.0, 2.0, 2.0)
    uv, z = project(torch.tensor([[0.0, 0.0, 5.0], [1.0, -0.5, 2.0]], dtype=torch.float64), K)
    assert torch.allclose(uv[0], torch.tensor([2.0, 2.0], dtype=torch.float64))
    assert torch.allclose(
        uv[1], torch.tensor([2.0 + 10 * 0.5, 2.0 - 10 * 0.25], dtype=torch.float64)
    )
    assert torch.allclose(z, torch.tensor([5.0, 2.0], dtype=torch.float64))
    centres = pixel_centers(2, 3)
    assert centres.shape == (2, 3, 2)
    assert centres[0, 0].tolist() == [0.5, 0.5]
    assert centres[1, 2].tolist() == [2.5, 1.5]


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_project_unproject_round_trip(batch):
    g = torch.Generator().manual_seed(2)
    K = make_K(50.0, 55.0, 31.5, 24.0).expand(*batch, 3, 3)
    uv = torch.rand(*batch, 11, 2, generator=g, dtype=torch.float64) * 64
    depth = torch.rand(*batch, 11, generator=g, dtype=torch.float64) * 5 + 0.1
    pts = unproject(uv, depth, K)
    uv2, z2 = project(pts, K)
    assert pts.shape == (*batch, 11, 3)
    assert torch.allclose(uv2, uv, atol=1e-9)
    assert torch.allclose(z2, depth, atol=1e-12)


def test_unproject_depth_world_frame():
    K = make_K(8.0, 8.0, 4.0, 4.0)
    c2w = random_pose(generator=torch.Generator().manual_seed(3))
    depth = torch.full((8, 8), 2.0, dtype=torch.float64)
    pts_w = unproject_depth(depth, K, c2w)
    pts_c = transform_points(invert_pose(c2w), pts_w.reshape(-1, 3))
    assert pts_w.shape == (8, 8, 3)
    assert torch.allclose(pts_c[:, 2], torch.full((64,), 2.0, dtype=torch.float64), atol=1e-9)


def test_scale_intrinsics_is_exact_under_resizing():
    K = make_K(100.0, 100.0, 64.0, 48.0)
    K_half = scale_intrinsics(K, 0.5)
    p = torch.tensor([[0.3, -0.2, 2.0]], dtype=torch.float64)
    uv_full, _ = project(p, K)
    uv_half, _ = project(p, K_half)
    assert torch.allclose(uv_half, uv_full * 0.5)


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_quaternion_round_trip_and_composition(batch):
    g = torch.Generator().manual_seed(4)
    q = normalize_quat(torch.randn(*batch, 4, generator=g, dtype=torch.float64))
    R = quat_to_rotmat(q)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    assert torch.allclose(R @ R.transpose(-1, -2), eye, atol=1e-12)
    q2 = rotmat_to_quat(R)
    # q and -q are the same rotation; rotmat_to_quat returns w >= 0.
    same = torch.minimum((q2 - q).abs().amax(-1), (q2 + q).abs().amax(-1))
    assert same.max() < 1e-9
    p = normalize_quat(torch.randn(*batch, 4, generator=g, dtype=torch.float64))
    assert torch.allclose(quat_to_rotmat(quat_multiply(p, q)), quat_to_rotmat(p) @ R, atol=1e-12)


def test_known_quaternion_is_wxyz():
    # 90 degrees about z: x axis goes to y axis.
    q = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)], dtype=torch.float64)
    R = quat_to_rotmat(q)
    assert torch.allclose(
        R @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
        atol=1e-12,
    )


def test_rotmat_to_quat_near_180_degrees():
    for axis in torch.eye(3, dtype=torch.float64):
        q = torch.cat([torch.tensor([1e-9], dtype=torch.float64), axis])
        R = quat_to_rotmat(q)
        assert torch.allclose(quat_to_rotmat(rotmat_to_quat(R)), R, atol=1e-9)


def test_inverse_depth_candidates():
    d = inverse_depth_candidates(0.5, 10.0, 5)
    assert d.shape == (5,)
    assert d[0].item() == pytest.approx(0.5)
    assert d[-1].item() == pytest.approx(10.0)
    inv = 1.0 / d
    assert torch.allclose(inv[1:] - inv[:-1], (inv[1] - inv[0]).expand(4), atol=1e-6)
    batched = inverse_depth_candidates(torch.tensor([0.5, 1.0]), torch.tensor([5.0, 8.0]), 4)
    assert batched.shape == (2, 4)
    assert batched[1, 0].item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("near", "far", "num"), [(0.0, 1.0, 4), (2.0, 1.0, 4), (1.0, 2.0, 1), (float("nan"), 1.0, 4)]
)
def test_inverse_depth_candidates_rejects_bad_ranges(near, far, num):
    with pytest.raises(ValueError):
        inverse_depth_candidates(near, far, num)


def test_plane_sweep_identity_and_true_depth():
    """Warping a source view into the reference at the true plane depth reproduces the reference."""
    h, w = 12, 16
    K = make_K(14.0, 14.0, w / 2, h / 2, dtype=torch.float32)
    # Source camera 0.3 m to the right of the reference; fronto-parallel plane at 2 m.
    ref_to_src = torch.eye(4)
    ref_to_src[0, 3] = -0.3
    true_depth = 2.0
    depths = torch.tensor([[1.0, true_depth, 4.0]])
    grid, valid = plane_sweep_grid(K[None], K[None], ref_to_src[None], depths, h, w)
    assert grid.shape == (1, 3, h, w, 2)
    assert valid.all()
    # Disparity in pixels at depth z is f * b / z: horizontal shift of -14*0.3/2 = -2.1 px.
    u_ref = pixel_centers(h, w)[..., 0]
    u_src = (grid[0, 1, ..., 0] + 1) * w / 2
    assert torch.allclose(u_src - u_ref, torch.full((h, w), -2.1), atol=1e-4)
    # A source image that is a function of world x on the plane: sampled at the true depth it
    # equals the reference image (interior pixels, away from zero padding).
    xs = torch.linspace(0, 1, w)
    src = torch.sin(6 * xs)[None, None, None].expand(1, 1, h, w).contiguous()
    warped = warp_to_reference(src, grid)
    assert warped.shape == (1, 1, 3, h, w)
    ref_expected = torch.sin(6 * ((u_ref - 2.1 - 0.5) / (w - 1)))
    inner = slice(4, w - 1)
    err = (warped[0, 0, 1][:, inner] - ref_expected[:, inner]).abs().max()
    assert err < 0.05


def test_check_pose_and_intrinsics_errors():
    good = torch.eye(4)
    check_pose(good)
    bad = good.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        check_pose(bad, "c2w")
    with pytest.raises(ValueError, match="c2w"):
        check_pose(torch.eye(3), "c2w")
    scaled = good.clone()
    scaled[:3, :3] *= 2
    with pytest.raises(ValueError, match="orthonormal"):
        check_pose(scaled)
    reflect = good.clone()
    reflect[0, 0] = -1
    with pytest.raises(ValueError, match="determinant"):
        check_pose(reflect)
    with pytest.raises(TypeError):
        check_pose([[1, 0], [0, 1]])  # type: ignore[arg-type]
    check_intrinsics(make_K(10, 10, 5, 5))
    with pytest.raises(ValueError, match="K"):
        check_intrinsics(torch.eye(4))
    with pytest.raises(ValueError, match="focal"):
        check_intrinsics(make_K(-1, 10, 5, 5))
    with pytest.raises(ValueError):
        pixel_centers(0, 4)
