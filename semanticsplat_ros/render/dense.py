"""Dense reference rasterizer: every Gaussian against every pixel, plain autograd.

O(pixels × Gaussians) time and memory: for tests and the benchmark only. It shares the EWA
projection with the tile backend but composites independently (explicit offsets, a global depth
sort per view, no tiles, no cap), applying gsplat's per-pixel rule: alpha = min(0.999, o e^-σ),
skipped below 1/255, stop before transmittance would reach <= 1e-4.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.geometry.projection import pixel_centers
from semanticsplat_ros.render.projection import (
    ALPHA_MAX,
    ALPHA_MIN,
    TRANSMITTANCE_MIN,
    project_gaussians,
)
from semanticsplat_ros.render.types import Gaussians, RenderOutput


def dense_memory_bytes(views: int, height: int, width: int, gaussians: int) -> int:
    """Rough peak memory of a dense float32 forward+backward (~16 per-pair tensors alive)."""
    return views * height * width * gaussians * 4 * 16


def composite_dense(
    means2d: Float[Tensor, "n 2"],
    conics: Float[Tensor, "n 3"],
    opacities: Float[Tensor, " n"],
    values: Float[Tensor, "n c"],
    depths: Float[Tensor, " n"],
    width: int,
    height: int,
) -> tuple[Float[Tensor, "h w c"], Float[Tensor, "h w"], Float[Tensor, "h w"]]:
    """Composite one image: returns (Σ w·values, Σ w·z, Σ w). Gaussians must be valid."""
    order = torch.sort(depths.detach(), stable=True).indices
    means2d, conics, opacities = means2d[order], conics[order], opacities[order]
    values, depths = values[order], depths[order]
    pix = pixel_centers(height, width, device=means2d.device, dtype=means2d.dtype).reshape(-1, 2)
    d = pix[:, None, :] - means2d[None, :, :]  # (P, n, 2)
    a, b, c = conics.unbind(-1)
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = torch.clamp_max(opacities * torch.exp(-sigma), ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    t_incl = torch.cumprod(1.0 - alpha, dim=-1)
    t_excl = torch.cat([torch.ones_like(t_incl[:, :1]), t_incl[:, :-1]], dim=-1)
    weights = torch.where(t_incl > TRANSMITTANCE_MIN, alpha * t_excl, torch.zeros_like(alpha))
    out = (weights @ values).reshape(height, width, -1)
    zsum = (weights @ depths).reshape(height, width)
    acc = weights.sum(-1).reshape(height, width)
    return out, zsum, acc


def render_dense(
    gaussians: Gaussians,
    w2c: Float[Tensor, "b v 4 4"],
    K: Float[Tensor, "b v 3 3"],
    width: int,
    height: int,
    *,
    background: Float[Tensor, "b v 3"] | Float[Tensor, " 3"] | None = None,
    near: float = 0.01,
    far: float = 1000.0,
) -> RenderOutput:
    """Reference render with the same contract as :func:`semanticsplat_ros.render.render`.

    Inputs are validated by ``render(..., backend="dense")``; call it that way from outside.
    """
    b, v = w2c.shape[:2]
    proj = project_gaussians(gaussians, w2c, K, width, height, near, far)
    values = torch.cat([gaussians.colors, gaussians.features], dim=-1)
    f = gaussians.feature_dim
    if background is None:
        background = values.new_zeros(3)
    background = background.to(values).expand(b, v, 3)
    colors, feats, depths, alphas = [], [], [], []
    for bi in range(b):
        for vi in range(v):
            keep = proj.valid[bi, vi]
            out, zsum, acc = composite_dense(
                proj.means2d[bi, vi][keep],
                proj.conics[bi, vi][keep],
                proj.opacities[bi, vi][keep],
                values[bi][keep],
                proj.depths[bi, vi][keep],
                width,
                height,
            )
            out = out.permute(2, 0, 1)
            acc = acc.unsqueeze(0)
            colors.append(out[:3] + (1.0 - acc) * background[bi, vi, :, None, None])
            feats.append(out[3 : 3 + f])
            depth = torch.where(acc > 0, zsum.unsqueeze(0) / acc.clamp_min(1e-12), 0.0)
            depths.append(depth)
            alphas.append(acc)

    def stack(xs: list[Tensor]) -> Tensor:
        return torch.stack(xs).reshape(b, v, *xs[0].shape)

    return RenderOutput(
        color=stack(colors),
        features=stack(feats),
        depth=stack(depths),
        alpha=stack(alphas),
        tile_overflow=torch.zeros(b, v, dtype=torch.long, device=w2c.device),
    )
