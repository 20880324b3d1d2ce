"""Depth: U-Net + softmax over the D candidates at 1/4 resolution, convex upsampling to h×w."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.model.layers import UNet, UNetConfig, conv3x3


@dataclass
class DepthHeadConfig:
    """Depth regression from the cost volume and the fused latent."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    """The U-Net producing per-candidate logits at 1/4 resolution."""

    refine_channels: int = 32
    """Width of the full-resolution refinement convolutions."""


@dataclass
class DepthOutput:
    """Per-view depth.

    depth:        (n, h, w) metric z-depth in metres at the full input resolution.
    inverse:      (n, h, w) the same as normalised inverse depth in [0, 1] (0 = far, 1 = near).
    probs:        (n, d, h/4, w/4) softmax over the candidates.
    """

    depth: Float[Tensor, "n h w"]
    inverse: Float[Tensor, "n h w"]
    probs: Float[Tensor, "n d hs ws"]


def convex_upsample(
    x: Float[Tensor, "n c h w"], mask: Float[Tensor, "n m h w"], factor: int
) -> Float[Tensor, "n c H W"]:
    """RAFT-style upsampling: each output pixel is a convex mix of its 3×3 low-res neighbours.

    ``mask`` holds 9·factor² logits per low-res pixel. Borders are replicate-padded (no zeros
    mixed in).
    """
    n, c, h, w = x.shape
    weights = mask.reshape(n, 1, 9, factor, factor, h, w).softmax(dim=2)
    patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel_size=3)
    patches = patches.reshape(n, c, 9, 1, 1, h, w)
    up = (weights * patches).sum(dim=2)  # (n, c, f, f, h, w)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, c, h * factor, w * factor)


class DepthHead(nn.Module):
    """Regresses per-view depth; the expectation is taken in inverse depth (MVSplat)."""

    def __init__(
        self,
        latent_dim: int,
        num_depths: int,
        full_channels: int,
        downsample: int,
        config: DepthHeadConfig,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.unet = UNet(latent_dim + num_depths, num_depths, config.unet)
        self.mask = nn.Sequential(
            conv3x3(latent_dim + num_depths, latent_dim),
            nn.GELU(),
            nn.Conv2d(latent_dim, 9 * downsample * downsample, 1),
        )
        r = config.refine_channels
        self.refine = nn.Sequential(
            conv3x3(3 + full_channels + 1, r), nn.GELU(), conv3x3(r, r), nn.GELU(), conv3x3(r, 1)
        )
        # Start close to the unrefined estimate (small, not zero, so gradients reach every layer).
        with torch.no_grad():
            self.refine[-1].weight.mul_(0.01)
            self.refine[-1].bias.zero_()

    def forward(
        self,
        latent: Float[Tensor, "n l hs ws"],
        cost: Float[Tensor, "n d hs ws"],
        images: Float[Tensor, "n 3 h w"],
        full_features: Float[Tensor, "n c0 h w"],
        near: Float[Tensor, " n"],
        far: Float[Tensor, " n"],
    ) -> DepthOutput:
        x = torch.cat([latent, cost], dim=1)
        probs = self.unet(x).softmax(dim=1)
        d = probs.shape[1]
        # Candidates are uniform in inverse depth, so the normalised inverse depth of candidate k
        # is 1 - k/(d-1): the expectation is a fixed linear read-out of the probabilities.
        levels = torch.linspace(1.0, 0.0, d, device=probs.device, dtype=probs.dtype)
        inverse = (probs * levels[:, None, None]).sum(dim=1, keepdim=True)
        inverse = convex_upsample(inverse, self.mask(x), self.downsample)
        residual = self.refine(torch.cat([images * 2.0 - 1.0, full_features, inverse], dim=1))
        inverse = (inverse + residual).clamp(0.0, 1.0).squeeze(1)
        inv_near = 1.0 / near[:, None, None]
        inv_far = 1.0 / far[:, None, None]
        depth = 1.0 / (inv_far + inverse * (inv_near - inv_far))
        return DepthOutput(depth=depth, inverse=inverse, probs=probs)
