"""render(): input validation, backend registry and selection, benchmark contract."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from semanticsplat_ros.render import (
    Gaussians,
    Rasterizer,
    RenderOutput,
    available_rasterizers,
    get_rasterizer,
    register_rasterizer,
    render,
)
from semanticsplat_ros.render import benchmark as render_benchmark
from semanticsplat_ros.render.scenes import random_scene


@pytest.fixture
def scene():
    return random_scene(2, 2, 16, 16, 50, 4, seed=0)


def _replace(gs: Gaussians, **fields) -> Gaussians:
    return dataclasses.replace(gs, **fields)


def test_output_shapes_and_auto_backend_on_cpu(scene):
    gs, w2c, K = scene
    out = render(gs, w2c, K, 16, 12, background=torch.tensor([1.0, 1.0, 1.0]))
    assert isinstance(out, RenderOutput)
    assert out.color.shape == (2, 2, 3, 12, 16)
    assert out.features.shape == (2, 2, 4, 12, 16)
    assert out.depth.shape == (2, 2, 1, 12, 16)
    assert out.alpha.shape == (2, 2, 1, 12, 16)
    assert out.tile_overflow.shape == (2, 2)
    assert get_rasterizer("auto", "cpu").name == "torch"
    assert float(out.alpha.max()) <= 1.0
    assert float(out.alpha.min()) >= 0.0


def test_batch_elements_render_only_their_own_gaussians(scene):
    gs, w2c, K = scene
    both = render(gs, w2c, K, 16, 16)
    second = render(Gaussians(*(t[1:] for t in gs._fields())), w2c[1:], K[1:], 16, 16)
    assert torch.allclose(both.color[1:], second.color, atol=1e-6)
    assert not torch.allclose(both.color[0], both.color[1], atol=1e-3)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda gs: _replace(gs, quats=gs.quats[:, :-1]), "gaussians.quats"),
        (lambda gs: _replace(gs, opacities=gs.opacities[:, :-1]), "gaussians.opacities"),
        (lambda gs: _replace(gs, features=gs.features[:1]), "gaussians.features"),
        (lambda gs: _replace(gs, colors=gs.colors[..., :2]), "gaussians.colors"),
        (lambda gs: _replace(gs, means=gs.means.clone().fill_(float("nan"))), "gaussians.means"),
        (lambda gs: _replace(gs, scales=gs.scales * 0), "gaussians.scales"),
        (lambda gs: _replace(gs, scales=-gs.scales), "gaussians.scales"),
        (lambda gs: _replace(gs, opacities=gs.opacities + 2), "gaussians.opacities"),
    ],
)
def test_bad_gaussians_raise_value_error_naming_the_field(scene, change, match):
    gs, w2c, K = scene
    with pytest.raises(ValueError, match=match):
        render(change(gs), w2c, K, 16, 16)


def test_bad_cameras_and_sizes_raise_value_error(scene):
    gs, w2c, K = scene
    with pytest.raises(ValueError, match="K"):
        render(gs, w2c, K[..., :2, :], 16, 16)
    with pytest.raises(ValueError, match="K"):
        render(gs, w2c, K[:, :1], 16, 16)
    with pytest.raises(ValueError, match="w2c"):
        render(gs, w2c[:1], K, 16, 16)
    with pytest.raises(ValueError, match="w2c"):
        render(gs, w2c * 2, K, 16, 16)
    with pytest.raises(ValueError, match="width"):
        render(gs, w2c, K, 0, 16)
    with pytest.raises(ValueError, match="height"):
        render(gs, w2c, K, 16, 0)
    with pytest.raises(TypeError, match="width"):
        render(gs, w2c, K, 16.0, 16)
    with pytest.raises(ValueError, match="near"):
        render(gs, w2c, K, 16, 16, near=2.0, far=1.0)
    with pytest.raises(ValueError, match="background"):
        render(gs, w2c, K, 16, 16, background=torch.zeros(4))
    with pytest.raises(ValueError, match="backend"):
        render(gs, w2c, K, 16, 16, backend="opengl")
    with pytest.raises(TypeError, match="gaussians"):
        render(gs.means, w2c, K, 16, 16)


def test_registry_accepts_a_custom_backend(scene):
    gs, w2c, K = scene
    calls = []

    class Constant:
        name = "constant"

        def __call__(self, gaussians, w2c, K, width, height, *, background, near, far):
            calls.append(background.shape)
            b, v = w2c.shape[:2]
            z = torch.zeros(b, v, 1, height, width)
            f = gaussians.feature_dim
            return RenderOutput(z.expand(-1, -1, 3, -1, -1), z.expand(-1, -1, f, -1, -1), z, z)

    register_rasterizer("constant", Constant)
    try:
        assert "constant" in available_rasterizers()
        assert isinstance(get_rasterizer("constant"), Rasterizer)
        out = render(gs, w2c, K, 8, 8, backend="constant")
        assert calls == [(2, 2, 3)]  # background normalised to (b, v, 3) before the backend
        assert out.tile_overflow is None
    finally:
        from semanticsplat_ros.render import rasterizer

        rasterizer._REGISTRY.pop("constant")
        rasterizer._INSTANCES.pop("constant", None)
    with pytest.raises(ValueError, match="auto"):
        register_rasterizer("auto", Constant)


def test_gsplat_backend_refuses_cpu_tensors(scene):
    gs, w2c, K = scene
    with pytest.raises(ValueError, match="CUDA"):
        render(gs, w2c, K, 16, 16, backend="gsplat")


def test_benchmark_returns_the_documented_keys(monkeypatch):
    monkeypatch.setattr(render_benchmark, "CASES", [("tiny", 2, 16, 16, 256)])
    result = render_benchmark.benchmark(device="cpu", quick=True)
    assert result["device"] == "cpu"
    assert result["torch_threads"] >= 1
    (case,) = result["cases"]
    for key in ("name", "views", "height", "width", "gaussians", "channels"):
        assert key in case
    assert case["channels"] == 35
    assert case["fwd_s"] > 0
    assert case["fwd_bwd_s"] > 0
    assert case["dense_fwd_bwd_s"] > 0
    assert case["speedup"] == pytest.approx(case["dense_fwd_bwd_s"] / case["fwd_bwd_s"], rel=0.01)
