"""Torch tile backend vs the dense reference, analytic cases, tile overflow, gsplat on CUDA."""

from __future__ import annotations

import math

import pytest
import torch

from semanticsplat_ros.render import (
    Gaussians,
    TileRasterizerConfig,
    TorchTileRasterizer,
    render,
)
from semanticsplat_ros.render.gsplat_backend import gsplat_cuda_available
from semanticsplat_ros.render.scenes import pinhole_intrinsics, random_scene

FIELDS = ("means", "quats", "scales", "opacities", "colors", "features")
MAPS = ("color", "features", "depth", "alpha")


def _requires_grad(gs: Gaussians) -> Gaussians:
    return Gaussians(*(t.detach().clone().requires_grad_(True) for t in gs._fields()))


def _loss_weights(out, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(getattr(out, m).shape, generator=gen) for m in MAPS]


def _grads(gs: Gaussians, out, weights) -> dict[str, torch.Tensor]:
    loss = sum((getattr(out, m) * w).sum() for m, w in zip(MAPS, weights, strict=True))
    return dict(zip(FIELDS, torch.autograd.grad(loss, gs._fields()), strict=True))


def _single_camera(width: int, height: int, fov: float = 60.0):
    K = pinhole_intrinsics(width, height, fov)[None, None]
    return torch.eye(4)[None, None], K


def _gaussians(means, scales, opacities, colors, features=None, quats=None) -> Gaussians:
    means = torch.as_tensor(means, dtype=torch.float32)[None]
    n = means.shape[1]
    scales = torch.as_tensor(scales, dtype=torch.float32)[None]
    return Gaussians(
        means=means,
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(1, n, 4).clone()
        if quats is None
        else quats,
        scales=scales,
        opacities=torch.as_tensor(opacities, dtype=torch.float32)[None],
        colors=torch.as_tensor(colors, dtype=torch.float32)[None],
        features=torch.zeros(1, n, 0) if features is None else features,
    )


@pytest.mark.parametrize(
    ("batch", "views", "height", "width", "n", "f", "tile_size"),
    [
        (1, 2, 32, 32, 600, 5, 8),
        (2, 1, 24, 40, 400, 3, 16),  # width, height not multiples of the tile size
        (1, 3, 20, 28, 300, 0, 4),  # no feature channels
    ],
)
def test_torch_matches_dense_forward_and_gradients(batch, views, height, width, n, f, tile_size):
    gs, w2c, K = random_scene(batch, views, height, width, n, f, seed=batch * 7 + views)
    bg = torch.rand(batch, views, 3, generator=torch.Generator().manual_seed(3))
    rast = TorchTileRasterizer(TileRasterizerConfig(tile_size=tile_size, chunk_elements=4096))
    gt, gd = _requires_grad(gs), _requires_grad(gs)
    tile = rast(gt, w2c, K, width, height, background=bg, near=0.01, far=100.0)
    dense = render(gd, w2c, K, width, height, background=bg, backend="dense")
    assert int(tile.tile_overflow.sum()) == 0
    # The scene must actually exercise compositing (partly covered images, several layers).
    assert 0.3 < float(dense.alpha.detach().mean()) < 1.0
    for m in MAPS:
        a, d = getattr(tile, m), getattr(dense, m)
        assert a.shape == d.shape, m
        if a.numel() == 0:
            continue
        assert (a - d).abs().max().item() <= 1e-3, m
    weights = _loss_weights(dense)
    g_tile, g_dense = _grads(gt, tile, weights), _grads(gd, dense, weights)
    for name in FIELDS:
        if f == 0 and name == "features":
            continue
        ref = g_dense[name]
        assert ref.norm() > 0, name
        rel = ((g_tile[name] - ref).norm() / ref.norm()).item()
        assert rel <= 1e-2, (name, rel)


def test_default_config_matches_dense_on_model_like_scene():
    gs, w2c, K = random_scene(1, 2, 48, 48, 3000, 8, seed=11)
    out = render(gs, w2c, K, 48, 48, backend="torch")
    ref = render(gs, w2c, K, 48, 48, backend="dense")
    for m in MAPS:
        assert (getattr(out, m) - getattr(ref, m)).abs().max().item() <= 1e-3, m


def test_isotropic_gaussian_peak_and_footprint():
    # A Gaussian centred on pixel (20, 12)'s centre, σ = 2 px on screen (+0.3 px² low-pass).
    width, height = 40, 24
    w2c, K = _single_camera(width, height)
    f = float(K[0, 0, 0, 0])
    z = 3.0
    u, v = 20.5, 12.5
    x, y = (u - width / 2) * z / f, (v - height / 2) * z / f
    sigma_px = 2.0
    opacity = 0.8
    # Flat along the optical axis, so the perspective Jacobian adds no off-axis spread.
    s = sigma_px * z / f
    gs = _gaussians([[x, y, z]], [[s, s, 1e-6]], [opacity], [[1.0, 0.5, 0.25]])
    feats = torch.tensor([[[2.0, -1.0]]])
    gs = Gaussians(gs.means, gs.quats, gs.scales, gs.opacities, gs.colors, feats)
    out = render(gs, w2c, K, width, height, backend="torch")
    var = sigma_px**2 + 0.3
    ii, jj = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    d2 = (jj + 0.5 - u) ** 2 + (ii + 0.5 - v) ** 2
    expected = opacity * torch.exp(-0.5 * d2 / var)
    expected = torch.where(expected >= 1 / 255, expected, torch.zeros_like(expected))
    alpha = out.alpha[0, 0, 0]
    assert alpha[12, 20].item() == pytest.approx(opacity, abs=1e-5)  # the peak
    assert alpha.max().item() == pytest.approx(opacity, abs=1e-5)
    assert (alpha - expected).abs().max().item() < 1e-5  # the whole footprint
    # Footprint: nonzero exactly where opacity·exp(-d²/2var) >= 1/255.
    radius = math.sqrt(2 * var * math.log(opacity * 255))
    assert bool(((alpha > 0) == (d2 <= radius**2)).all())
    assert out.color[0, 0, :, 12, 20].tolist() == pytest.approx([0.8, 0.4, 0.2], abs=1e-5)
    assert out.features[0, 0, :, 12, 20].tolist() == pytest.approx([1.6, -0.8], abs=1e-5)
    assert out.depth[0, 0, 0, 12, 20].item() == pytest.approx(z, abs=1e-5)
    assert out.depth[0, 0, 0, 0, 0].item() == 0.0  # alpha is 0 there


def test_occlusion_order_of_two_gaussians():
    width, height = 16, 16
    w2c, K = _single_camera(width, height)
    # Red is nearer but listed second: sorting must put it in front regardless of order.
    # Both are centred on pixel (8, 8)'s centre, so their alpha there is their opacity.
    f = float(K[0, 0, 0, 0])
    gs = _gaussians(
        [[0.5 * 4.0 / f, 0.5 * 4.0 / f, 4.0], [0.5 * 2.0 / f, 0.5 * 2.0 / f, 2.0]],
        [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]],
        [0.9, 0.6],
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
    )
    for backend in ("torch", "dense"):
        out = render(gs, w2c, K, width, height, backend=backend)
        c = out.color[0, 0, :, 8, 8]
        # Red (alpha 0.6) in front; blue (alpha 0.9) gets the remaining 0.4 of the light.
        assert c.tolist() == pytest.approx([0.6, 0.0, 0.4 * 0.9], abs=1e-5), backend
        assert float(out.alpha[0, 0, 0, 8, 8]) == pytest.approx(1 - 0.4 * 0.1, abs=1e-5)
        expected_depth = (0.6 * 2.0 + 0.36 * 4.0) / 0.96
        assert out.depth[0, 0, 0, 8, 8].item() == pytest.approx(expected_depth, abs=1e-4)


def test_near_far_culling():
    width, height = 16, 16
    w2c, K = _single_camera(width, height)
    gs = _gaussians([[0.0, 0.0, 2.0]], [[0.3, 0.3, 0.3]], [0.9], [[1.0, 1.0, 1.0]])
    for backend in ("torch", "dense"):
        seen = render(gs, w2c, K, width, height, near=1.0, far=3.0, backend=backend)
        before_near = render(gs, w2c, K, width, height, near=2.5, far=10.0, backend=backend)
        beyond_far = render(gs, w2c, K, width, height, near=0.1, far=1.5, backend=backend)
        assert seen.alpha.max().item() > 0.8
        assert before_near.alpha.abs().max().item() == 0.0
        assert beyond_far.alpha.abs().max().item() == 0.0
    behind = _gaussians([[0.0, 0.0, -2.0]], [[0.3, 0.3, 0.3]], [0.9], [[1.0, 1.0, 1.0]])
    assert render(behind, w2c, K, width, height, backend="torch").alpha.max().item() == 0.0


def test_background_and_features_without_background():
    gs, w2c, K = random_scene(1, 2, 16, 16, 20, 4, seed=5, opacity_range=(0.2, 0.5))
    empty = Gaussians(*(t[:, :0] for t in gs._fields()))
    bg = torch.tensor([[[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]]])
    out = render(empty, w2c, K, 16, 16, background=bg, backend="torch")
    assert torch.allclose(out.color, bg[..., None, None].expand(1, 2, 3, 16, 16))
    assert out.features.shape == (1, 2, 4, 16, 16)
    assert out.features.abs().max().item() == 0.0
    assert out.alpha.abs().max().item() == 0.0
    assert out.depth.abs().max().item() == 0.0


def test_tile_overflow_keeps_nearest_and_is_counted():
    # 12 large Gaussians stacked in depth, all covering the single 8x8 tile; cap at 4.
    width = height = 8
    w2c, K = _single_camera(width, height)
    n = 12
    depths = torch.linspace(1.0, 3.0, n).flip(0)  # listed far to near
    means = torch.stack([torch.zeros(n), torch.zeros(n), depths], -1)
    colors = torch.rand(n, 3, generator=torch.Generator().manual_seed(0))
    gs = _gaussians(means, torch.full((n, 3), 1.0), torch.full((n,), 0.3), colors)
    capped = TorchTileRasterizer(TileRasterizerConfig(tile_size=8, max_gaussians_per_tile=4))
    bg = torch.zeros(1, 1, 3)
    out = capped(gs, w2c, K, width, height, background=bg, near=0.01, far=100.0)
    assert out.tile_overflow.tolist() == [[n - 4]]
    # Same image as rendering only the 4 nearest Gaussians (the last 4 listed), exactly.
    nearest = Gaussians(*(t[:, -4:] for t in gs._fields()))
    ref = render(nearest, w2c, K, width, height, backend="dense")
    for m in ("color", "depth", "alpha"):
        assert (getattr(out, m) - getattr(ref, m)).abs().max().item() < 1e-5, m
    full = render(gs, w2c, K, width, height, backend="torch")
    assert full.tile_overflow.tolist() == [[0]]
    assert (full.alpha - out.alpha).abs().max().item() > 0.05  # dropping them was visible


@pytest.mark.cuda
@pytest.mark.skipif(not gsplat_cuda_available(), reason="needs CUDA and gsplat's CUDA rasterizer")
def test_gsplat_matches_torch_backend_on_cuda():
    gs, w2c, K = random_scene(2, 2, 48, 64, 4000, 19, seed=2)
    dev = torch.device("cuda")
    gs, w2c, K = gs.to(dev), w2c.to(dev), K.to(dev)
    bg = torch.tensor([0.2, 0.4, 0.6], device=dev)
    ga, gb = _requires_grad(gs), _requires_grad(gs)
    a = render(ga, w2c, K, 64, 48, background=bg, backend="gsplat")
    b = render(gb, w2c, K, 64, 48, background=bg, backend="torch")
    assert render(gs, w2c, K, 64, 48, backend="auto").alpha.device.type == "cuda"
    for m in MAPS:
        assert (getattr(a, m) - getattr(b, m)).abs().max().item() <= 2e-3, m
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(getattr(a, m).shape, generator=gen).to(dev) for m in MAPS]
    g_a, g_b = _grads(ga, a, weights), _grads(gb, b, weights)
    for name in FIELDS:
        rel = ((g_a[name] - g_b[name]).norm() / g_b[name].norm()).item()
        assert rel <= 2e-2, (name, rel)
