"""Camera effects (noise, blur, vignetting, tone, JPEG) and random rigs / aspects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from semanticsplat_ros.data.camera_effects import (
    NONE,
    CameraEffects,
    apply_effects,
    sample_effects,
)
from semanticsplat_ros.data.random_rigs import (
    ASPECTS,
    image_size,
    sample_aspect,
    sample_image_size,
    sample_rig,
)
from semanticsplat_ros.data.rigs import RIGS, rig_cameras
from semanticsplat_ros.data.scene import Scene
from semanticsplat_ros.data.world import make_scene


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene(0)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _images(v: int = 2, h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand((v, 3, h, w), generator=torch.Generator().manual_seed(seed))


def _flat(value: float = 0.5, v: int = 2, h: int = 32, w: int = 40) -> torch.Tensor:
    return torch.full((v, 3, h, w), value)


def _checkerboard(h: int = 32, w: int = 32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = ((x // 2 + y // 2) % 2).float() * 0.8 + 0.1
    return board.expand(1, 3, h, w).clone()


def _high_freq_energy(img: torch.Tensor) -> float:
    return float(
        (img[..., 1:] - img[..., :-1]).pow(2).mean()
        + (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    )


def test_identity_is_exact():
    img = _images() * 1.2 - 0.1  # even outside [0, 1]: identity touches nothing
    assert torch.equal(apply_effects(img, NONE, _rng()), img)
    assert torch.equal(apply_effects(img, [NONE, CameraEffects()], _rng()), img)
    assert NONE.is_identity and not CameraEffects(gamma=1.1).is_identity


def test_mixed_per_view_keeps_identity_views_exact():
    img = _images(v=3)
    effects = [NONE, CameraEffects(noise_sigma=0.05, blur_sigma=1.0, jpeg_quality=70), NONE]
    out = apply_effects(img, effects, _rng())
    assert torch.equal(out[0], img[0]) and torch.equal(out[2], img[2])
    assert not torch.equal(out[1], img[1])
    with pytest.raises(ValueError):
        apply_effects(img, [NONE, NONE], _rng())


def test_deterministic_in_rng_seed():
    img = _images()
    fx = CameraEffects(noise_sigma=0.03, blur_sigma=0.8, vignetting=0.3, jpeg_quality=80)
    a = apply_effects(img, fx, _rng(5))
    b = apply_effects(img, fx, _rng(5))
    c = apply_effects(img, fx, _rng(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_shape_dtype_range_preserved():
    fx = CameraEffects(noise_sigma=0.1, exposure=3.0, gamma=0.8, blur_sigma=2.0, vignetting=0.5)
    for dtype in (torch.float32, torch.float64):
        img = _images().to(dtype)
        out = apply_effects(img, fx, _rng())
        assert out.shape == img.shape and out.dtype == dtype and out.device == img.device
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    out = apply_effects(_images().half(), fx, _rng())
    assert out.dtype == torch.float16


def test_noise_raises_variance_and_grows_with_intensity():
    dark = apply_effects(_flat(0.1), CameraEffects(noise_sigma=0.02), _rng())
    bright = apply_effects(_flat(0.8), CameraEffects(noise_sigma=0.02), _rng())
    assert float(dark.var()) > 1e-5
    assert float(bright.var()) > 1.5 * float(dark.var())  # shot noise
    assert abs(float(bright.mean()) - 0.8) < 0.01


def test_blur_lowers_high_frequency_energy():
    board = _checkerboard()
    out = apply_effects(board, CameraEffects(blur_sigma=1.5), _rng())
    assert _high_freq_energy(out) < 0.3 * _high_freq_energy(board)
    assert abs(float(out.mean()) - float(board.mean())) < 0.02  # blur keeps the mean


def test_vignetting_darkens_corners():
    out = apply_effects(_flat(0.8, h=64, w=64), CameraEffects(vignetting=0.5), _rng())
    centre = float(out[..., 30:34, 30:34].mean())
    corner = float(out[..., :2, :2].mean())
    assert centre > 0.79
    assert corner == pytest.approx(0.8 * 0.5, abs=0.03)


def test_tone_gains_and_gamma_change_means():
    flat = _flat(0.5)
    gamma = apply_effects(flat, CameraEffects(gamma=1.25), _rng())
    assert torch.allclose(gamma, torch.full_like(flat, 0.5**1.25))
    wb = apply_effects(flat, CameraEffects(white_balance=(1.2, 1.0, 0.8)), _rng())
    means = wb.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([0.6, 0.5, 0.4]), atol=1e-6)
    expo = apply_effects(flat, CameraEffects(exposure=1.5), _rng())
    assert float(expo.mean()) == pytest.approx(0.75, abs=1e-6)
    saturated = apply_effects(flat, CameraEffects(exposure=4.0), _rng())
    assert float(saturated.max()) == 1.0


def test_jpeg_changes_slightly_keeps_shape_and_range():
    img = apply_effects(_checkerboard(64, 64), CameraEffects(blur_sigma=0.7), _rng())
    out = apply_effects(img, CameraEffects(jpeg_quality=50), _rng())
    assert out.shape == img.shape and out.dtype == img.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    err = float((out - img).abs().mean())
    assert 0.0 < err < 0.05


@pytest.mark.parametrize(
    "kwargs",
    [
        {"noise_sigma": -0.01},
        {"noise_sigma": 0.5},
        {"blur_sigma": -1.0},
        {"blur_sigma": 50.0},
        {"vignetting": 0.7},
        {"gamma": 0.5},
        {"gamma": 2.0},
        {"white_balance": (1.0, 1.0)},
        {"white_balance": (1.0, 3.0, 1.0)},
        {"exposure": 0.0},
        {"jpeg_quality": 10},
        {"jpeg_quality": 99},
        {"jpeg_quality": 50.5},
        {"noise_sigma": float("nan")},
    ],
)
def test_bad_values_raise(kwargs):
    with pytest.raises(ValueError):
        CameraEffects(**kwargs)


def test_bad_image_shape_raises():
    with pytest.raises(ValueError):
        apply_effects(torch.rand(3, 8, 8), NONE, _rng())


def test_sample_effects_valid_and_varied():
    rng = _rng(1)
    draws = [sample_effects(rng) for _ in range(200)]
    for fx in draws:  # re-validate through the constructor
        CameraEffects(**dataclasses.asdict(fx))
    assert any(fx.is_identity for fx in draws)
    assert any(fx.jpeg_quality == 0 for fx in draws) and any(fx.jpeg_quality for fx in draws)
    assert any(fx.blur_sigma == 0 for fx in draws) and any(fx.blur_sigma > 1 for fx in draws)
    assert len({fx.noise_sigma for fx in draws}) > 100
    img = _images()
    for fx in draws[:20]:
        out = apply_effects(img, fx, rng)
        assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 1


def test_rig_cameras_takes_a_rig_or_its_name(scene):
    for name, rig in RIGS.items():
        c2w, K = rig_cameras(scene, rig, 3.7, 24, 32, seed=2)
        c2w_ref, K_ref = rig_cameras(scene, name, 3.7, 24, 32, seed=2)
        assert torch.equal(c2w, c2w_ref) and torch.equal(K, K_ref)


def _hfov_deg(K: torch.Tensor, width: int) -> torch.Tensor:
    return torch.rad2deg(2 * torch.atan(width / (2 * K[:, 0, 0])))


def test_sample_rig_covers_kinds_baselines_and_fov(scene):
    rng = _rng(3)
    counts = {1: 0, 2: 0, 3: 0, 4: 0}
    baselines = []
    names = set()
    for _ in range(200):
        rig = sample_rig(rng)
        names.add(rig.name)
        assert rig.name.startswith("random_") and rig.description
        c2w, K = rig_cameras(scene, rig, float(rng.uniform(0, 60)), 48, 64)
        v = c2w.shape[0]
        counts[v] += 1
        fov = _hfov_deg(K, 64)
        assert float(fov.min()) >= 50 - 1e-3 and float(fov.max()) <= 110 + 1e-3
        assert torch.allclose(fov, fov[0])  # one FOV per rig
        if v == 2:
            b = float((c2w[0, :3, 3] - c2w[1, :3, 3]).norm())
            assert 0.05 - 1e-4 <= b <= 0.5 + 1e-4
            baselines.append(b)
        if v >= 3:  # neighbouring optical axes within the FOV of each other: they overlap
            z = c2w[:, :3, 2]
            angles = torch.rad2deg(torch.acos((z[:-1] * z[1:]).sum(-1).clamp(-1, 1)))
            assert float(angles.max()) <= 0.82 * float(fov[0])
    assert all(n > 10 for n in counts.values()), counts
    assert min(baselines) < 0.15 and max(baselines) > 0.4
    assert len(names) > 100


def test_image_size_and_aspects():
    assert image_size("4:3", 128) == (96, 128)
    assert image_size("16:9", 128) == (72, 128)
    assert image_size("1:1", 128) == (128, 128)
    assert image_size("16:9", 100) == (56, 100)
    for aspect in ASPECTS:
        for width in (30, 64, 161, 320):
            h, w = image_size(aspect, width)
            assert h % 4 == 0 and w % 4 == 0 and abs(w - width) <= 2
            ah, aw = ASPECTS[aspect]
            assert abs(h / w - ah / aw) < 4 / w
    with pytest.raises(ValueError):
        image_size("2:1", 64)
    rng = _rng(4)
    drawn = {sample_aspect(rng) for _ in range(100)}
    assert drawn == set(ASPECTS)
    h, w = sample_image_size(rng, 64)
    assert w == 64 and h in {48, 36, 64}


def test_sample_rig_with_a_camera_count(scene):
    rng = _rng(5)
    for n in (1, 2, 3, 4):
        for _ in range(20):
            rig = sample_rig(rng, cameras=n)
            assert len(rig.cameras) == n
            c2w, _ = rig_cameras(scene, rig, float(rng.uniform(0, 60)), 24, 32)
            assert c2w.shape == (n, 4, 4)
    with pytest.raises(ValueError, match="cameras must be 1, 2, 3 or 4"):
        sample_rig(rng, cameras=5)
