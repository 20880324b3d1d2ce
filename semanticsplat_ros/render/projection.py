"""EWA projection of 3D Gaussians to image-plane 2D Gaussians (shared by the torch backends).

The maths follows gsplat 1.5.3 (``_fully_fused_projection`` / ``ProjectionEWA3DGSFused.cu``) so
that the torch and gsplat backends agree: camera-frame covariance ``W Σ Wᵀ``, perspective Jacobian
evaluated at the mean clamped to 1.3× the field of view, a 0.3 px² low-pass added to the 2D
covariance, and an opacity-aware extent ``min(3.33, sqrt(2 ln(255 o)))`` standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from semanticsplat_ros.geometry.quaternions import quat_to_rotmat
from semanticsplat_ros.render.types import Gaussians

ALPHA_MIN = 1.0 / 255.0
"""Gaussian-pixel pairs with alpha below this are skipped (gsplat's ALPHA_THRESHOLD)."""
ALPHA_MAX = 0.999
"""Alpha is clamped to this so that transmittance never reaches 0 (gsplat)."""
TRANSMITTANCE_MIN = 1e-4
"""A pixel stops compositing before the Gaussian that would bring T to or below this (gsplat)."""
EPS2D = 0.3
"""Low-pass filter added to the 2D covariance, px² (the usual EWA anti-aliasing term)."""
MAX_EXTENT = 3.33
"""Largest footprint extent in standard deviations (alpha < 1/255 beyond it at opacity 1)."""


@dataclass
class ProjectedGaussians:
    """Gaussians of every batch element projected into each of its views.

    means2d:   (b, v, n, 2)  pixel coordinates (centres at +0.5).
    conics:    (b, v, n, 3)  inverse 2D covariance (a, b, c): Mahalanobis² = a dx² + 2 b dx dy + c dy².
    depths:    (b, v, n)     camera-frame z, metres.
    opacities: (b, v, n)     opacity (the same in every view).
    extents:   (b, v, n, 2)  half-size of the footprint's bounding box in pixels (x, y).
    valid:     (b, v, n)     in front of the camera between near and far, opacity >= 1/255,
               finite; invalid Gaussians are never composited.
    """

    means2d: Float[Tensor, "b v n 2"]
    conics: Float[Tensor, "b v n 3"]
    depths: Float[Tensor, "b v n"]
    opacities: Float[Tensor, "b v n"]
    extents: Float[Tensor, "b v n 2"]
    valid: Bool[Tensor, "b v n"]


def covariances_3d(
    quats: Float[Tensor, "*batch 4"], scales: Float[Tensor, "*batch 3"]
) -> Float[Tensor, "*batch 3 3"]:
    """World covariance ``R diag(s²) Rᵀ`` from wxyz quaternions and standard deviations."""
    M = quat_to_rotmat(quats) * scales.unsqueeze(-2)
    return M @ M.transpose(-1, -2)


def project_gaussians(
    gaussians: Gaussians,
    w2c: Float[Tensor, "b v 4 4"],
    K: Float[Tensor, "b v 3 3"],
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float = EPS2D,
) -> ProjectedGaussians:
    """Project ``gaussians`` (b, n) into the v views of each batch element (differentiable).

    ``w2c`` is world-to-camera (OpenCV frame), ``K`` in pixels. Inputs are assumed validated.
    """
    cov = covariances_3d(gaussians.quats, gaussians.scales)  # (b, n, 3, 3)
    R = w2c[..., :3, :3]  # (b, v, 3, 3)
    t = w2c[..., :3, 3]
    means_c = torch.einsum("bvij,bnj->bvni", R, gaussians.means) + t.unsqueeze(2)
    cov_c = torch.einsum("bvij,bnjk,bvlk->bvnil", R, cov, R)
    x, y, z = means_c.unbind(-1)
    in_range = (z > near) & (z < far)
    # Substitute a harmless depth where the Gaussian is culled so no NaN/Inf enters autograd.
    z_safe = torch.where(in_range, z, torch.ones_like(z))

    fx = K[..., 0, 0].unsqueeze(-1)
    fy = K[..., 1, 1].unsqueeze(-1)
    cx = K[..., 0, 2].unsqueeze(-1)
    cy = K[..., 1, 2].unsqueeze(-1)
    skew = K[..., 0, 1].unsqueeze(-1)
    # The Jacobian is evaluated at the mean clamped to 1.3× the field of view (as gsplat does):
    # Gaussians far outside the image would otherwise get huge, unstable footprints.
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z_safe * torch.maximum(torch.minimum(x / z_safe, lim_x_pos), -lim_x_neg)
    ty = z_safe * torch.maximum(torch.minimum(y / z_safe, lim_y_pos), -lim_y_neg)
    zero = torch.zeros_like(z_safe)
    J = torch.stack(
        [fx / z_safe, zero, -fx * tx / z_safe**2, zero, fy / z_safe, -fy * ty / z_safe**2], dim=-1
    ).reshape(*z.shape, 2, 3)
    cov2d = J @ cov_c @ J.transpose(-1, -2)
    c00 = cov2d[..., 0, 0] + eps2d
    c11 = cov2d[..., 1, 1] + eps2d
    c01 = 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0])
    det = c00 * c11 - c01 * c01
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c11 / det_safe, -c01 / det_safe, c00 / det_safe], dim=-1)

    u = (fx * x + skew * y) / z_safe + cx
    v = fy * y / z_safe + cy
    means2d = torch.stack([u, v], dim=-1)

    opac = gaussians.opacities.unsqueeze(1).expand_as(z)
    with torch.no_grad():
        o = opac.clamp_min(ALPHA_MIN)
        extent = torch.sqrt(2.0 * torch.log(o / ALPHA_MIN)).clamp_max(MAX_EXTENT)
        extents = torch.stack(
            [extent * c00.clamp_min(0).sqrt(), extent * c11.clamp_min(0).sqrt()], dim=-1
        )
        finite = torch.isfinite(means2d).all(-1) & torch.isfinite(conics).all(-1)
        valid = in_range & det_ok & (opac >= ALPHA_MIN) & finite
    return ProjectedGaussians(means2d, conics, z, opac, extents, valid)
