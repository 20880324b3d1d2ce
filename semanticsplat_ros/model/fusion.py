"""Multi-conditioned fusion: teacher features + cost volume + image features → a latent map.

The SAM and language teacher features are optional conditions (the paper's ablation rows:
both, either or none), chosen in the config. An enabled condition that is missing at call
time (stage-0 training runs before the teachers exist) is fed as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.model.layers import UNet, UNetConfig


@dataclass
class FusionConfig:
    """Inputs and size of the fusion U-Net (runs at 1/4 resolution)."""

    use_sam: bool = True
    """Condition on the SAM teacher's image embeddings."""

    use_language: bool = True
    """Condition on the language teacher's (LSeg/CLIP-like) dense features."""

    condition_dim: int = 32
    """Each teacher feature map is projected to this many channels (1×1 conv) before fusion."""

    latent_dim: int = 64
    """Channels of the fused latent map."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    """The fusion U-Net."""


class Fusion(nn.Module):
    """(features, cost volume, [SAM], [language]) at h×w → latent (n, latent_dim, h, w)."""

    def __init__(
        self,
        feature_dim: int,
        num_depths: int,
        sam_dim: int,
        language_dim: int,
        config: FusionConfig,
    ) -> None:
        super().__init__()
        self.config = config
        self.sam_dim = sam_dim
        self.language_dim = language_dim
        in_ch = feature_dim + num_depths
        self.sam_proj = nn.Conv2d(sam_dim, config.condition_dim, 1) if config.use_sam else None
        self.language_proj = (
            nn.Conv2d(language_dim, config.condition_dim, 1) if config.use_language else None
        )
        in_ch += config.condition_dim * (int(config.use_sam) + int(config.use_language))
        self.unet = UNet(in_ch, config.latent_dim, config.unet)

    def forward(
        self,
        features: Float[Tensor, "n c h w"],
        cost: Float[Tensor, "n d h w"],
        sam: Float[Tensor, "n cs hs ws"] | None = None,
        language: Float[Tensor, "n cl hl wl"] | None = None,
    ) -> Float[Tensor, "n latent h w"]:
        size = features.shape[-2:]
        parts = [features, cost]
        for proj, cond, dim in (
            (self.sam_proj, sam, self.sam_dim),
            (self.language_proj, language, self.language_dim),
        ):
            if proj is None:
                continue
            if cond is None:
                cond = features.new_zeros(features.shape[0], dim, *size)
            else:
                cond = F.interpolate(cond, size=size, mode="bilinear", align_corners=False)
            parts.append(proj(cond))
        return self.unet(torch.cat(parts, dim=1))
