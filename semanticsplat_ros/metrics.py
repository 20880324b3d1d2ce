"""Image and depth metrics as plain functions (per image; average them over a dataset)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from scipy.spatial import cKDTree
from torch import Tensor


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: pred and target must be tensors")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")


def psnr(
    pred: Float[Tensor, "*batch c h w"], target: Float[Tensor, "*batch c h w"]
) -> Float[Tensor, "*batch"]:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (pred is clamped), per image."""
    _check_pair(pred, target, "psnr")
    mse = (pred.clamp(0, 1) - target).pow(2).flatten(-3).mean(-1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, device, dtype) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: Float[Tensor, "*batch c h w"],
    target: Float[Tensor, "*batch c h w"],
    window: int = 11,
    sigma: float = 1.5,
) -> Float[Tensor, "*batch"]:
    """Structural similarity (Wang et al. 2004; Gaussian 11×11 window, σ = 1.5, images in
    [0, 1], valid region only), averaged over channels and pixels, per image."""
    _check_pair(pred, target, "ssim")
    *batch, c, h, w = pred.shape
    if h < window or w < window:
        raise ValueError(f"ssim needs images of at least {window}×{window}, got {h}×{w}")
    x = pred.clamp(0, 1).reshape(-1, c, h, w)
    y = target.reshape(-1, c, h, w)
    g = _gaussian_window(window, sigma, x.device, x.dtype)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, window, window)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(-1).reshape(batch)


def depth_abs_rel(
    pred: Float[Tensor, "*batch h w"], target: Float[Tensor, "*batch h w"]
) -> Float[Tensor, "*batch"]:
    """Mean |pred - gt| / gt over pixels with gt > 0, per depth map (NaN if none is valid)."""
    _check_pair(pred, target, "depth_abs_rel")
    valid = target > 0
    err = torch.where(valid, (pred - target).abs() / target.clamp_min(1e-8), torch.zeros_like(pred))
    count = valid.flatten(-2).sum(-1)
    abs_rel = err.flatten(-2).sum(-1) / count.clamp_min(1)
    return torch.where(count > 0, abs_rel, torch.full_like(abs_rel, float("nan")))


def relative_depth_errors(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|pred - truth| / truth`` at the pixels where both depths are finite and > 0 (numpy,
    any shape, the same for both), and the mask of the pixels where ``truth`` alone is known.
    ValueError if the shapes differ."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(truth, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"depth shapes differ: predicted {p.shape}, ground truth {g.shape}")
    known = np.isfinite(g) & (g > 0)
    covered = known & np.isfinite(p) & (p > 0)
    return np.abs(p[covered] - g[covered]) / g[covered], known


def surface_distance_ratio(
    points: np.ndarray, camera_centers: np.ndarray, surface: np.ndarray
) -> np.ndarray:
    """Distance of each point to the nearest true-surface sample over its distance to the camera.

    ``points`` (n, 3), ``camera_centers`` (3,) or (k, 3) and ``surface`` (m, 3) in one frame;
    ``surface`` samples the true surfaces (e.g. ground-truth depth maps unprojected). With several
    cameras a point's distance to the camera is to the nearest one (the smaller denominator). This
    is "within x% of its distance to the camera from the true surfaces": a point displaced along
    its ray on a surface seen at a slant is nearer the surface than its depth error. Sampling adds
    at most half the sample spacing (about 0.5 / f of the distance for a depth map at focal length
    f pixels), so the figure is slightly pessimistic.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    surf = np.asarray(surface, dtype=np.float64).reshape(-1, 3)
    centres = np.asarray(camera_centers, dtype=np.float64).reshape(-1, 3)
    if len(surf) == 0 or len(centres) == 0:
        raise ValueError("surface_distance_ratio: needs surface samples and a camera centre")
    if not (np.isfinite(pts).all() and np.isfinite(surf).all() and np.isfinite(centres).all()):
        raise ValueError("surface_distance_ratio: points, surface and centres must be finite")
    if len(pts) == 0:
        return np.zeros(0)
    nearest, _ = cKDTree(surf).query(pts)
    to_camera = np.linalg.norm(pts[:, None, :] - centres[None], axis=-1).min(axis=1)
    return nearest / np.maximum(to_camera, 1e-9)
