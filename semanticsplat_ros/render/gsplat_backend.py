"""gsplat backend: ``gsplat.rasterization`` (CUDA) with features packed as extra channels."""

from __future__ import annotations

from functools import cache

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.render.projection import EPS2D
from semanticsplat_ros.render.types import Gaussians, RenderOutput


@cache
def gsplat_cuda_available() -> bool:
    """True when CUDA is present and gsplat's compiled rasterizer renders a tiny scene."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat import rasterization

        dev = torch.device("cuda")
        rasterization(
            means=torch.tensor([[0.0, 0.0, 2.0]], device=dev),
            quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]], device=dev),
            scales=torch.full((1, 3), 0.1, device=dev),
            opacities=torch.ones(1, device=dev),
            colors=torch.ones(1, 3, device=dev),
            viewmats=torch.eye(4, device=dev)[None],
            Ks=torch.tensor([[[8.0, 0.0, 4.0], [0.0, 8.0, 4.0], [0.0, 0.0, 1.0]]], device=dev),
            width=8,
            height=8,
        )
        torch.cuda.synchronize()
    except Exception:  # any import, build or launch failure means "use the torch backend"
        return False
    return True


class GsplatRasterizer:
    """``gsplat.rasterization`` in "RGB+ED" mode; colour and features share one pass."""

    name = "gsplat"

    def __call__(
        self,
        gaussians: Gaussians,
        w2c: Float[Tensor, "b v 4 4"],
        K: Float[Tensor, "b v 3 3"],
        width: int,
        height: int,
        *,
        background: Float[Tensor, "b v 3"],
        near: float,
        far: float,
    ) -> RenderOutput:
        if not gaussians.means.is_cuda:
            raise ValueError("backend 'gsplat' needs CUDA tensors; use backend='torch' on CPU")
        from gsplat import rasterization

        b, v = w2c.shape[:2]
        f = gaussians.feature_dim
        values = torch.cat([gaussians.colors, gaussians.features], dim=-1)
        # Features get no background: pad the background with zeros for their channels.
        bg = torch.cat([background, background.new_zeros(b, v, f)], dim=-1)
        rendered, alpha, _ = rasterization(
            means=gaussians.means,
            quats=gaussians.quats,
            scales=gaussians.scales,
            opacities=gaussians.opacities,
            colors=values,
            viewmats=w2c,
            Ks=K,
            width=width,
            height=height,
            near_plane=near,
            far_plane=far,
            eps2d=EPS2D,
            backgrounds=bg,
            render_mode="RGB+ED",
            packed=False,
        )
        rendered = rendered.permute(0, 1, 4, 2, 3)  # (b, v, 3 + f + 1, h, w)
        alpha = alpha.permute(0, 1, 4, 2, 3)
        depth = torch.where(alpha > 0, rendered[:, :, -1:], 0.0)
        return RenderOutput(
            color=rendered[:, :, :3],
            features=rendered[:, :, 3 : 3 + f],
            depth=depth,
            alpha=alpha,
            tile_overflow=torch.zeros(b, v, dtype=torch.long, device=w2c.device),
        )
