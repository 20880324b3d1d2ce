"""CNN backbone: full-resolution shallow features and features downsampled by s = 4."""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.model.layers import ResBlock, conv3x3


@dataclass
class BackboneConfig:
    """Channel widths of the three backbone levels (full, 1/2 and 1/4 resolution)."""

    full_channels: int = 16
    """Channels of the full-resolution shallow features (fed to the Gaussian heads)."""

    half_channels: int = 32
    """Channels at 1/2 resolution."""

    channels: int = 64
    """Channels at 1/4 resolution: the width of the multi-view transformer tokens."""

    blocks: int = 1
    """Residual blocks per level."""


class Backbone(nn.Module):
    """Per-view CNN; downsamples by 4 (the method's s)."""

    downsample = 4

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2 = config.full_channels, config.half_channels, config.channels
        self.stem = nn.Sequential(
            conv3x3(3, c0), nn.GELU(), *[ResBlock(c0) for _ in range(config.blocks)]
        )
        self.down1 = nn.Sequential(
            conv3x3(c0, c1, stride=2), nn.GELU(), *[ResBlock(c1) for _ in range(config.blocks)]
        )
        self.down2 = nn.Sequential(
            conv3x3(c1, c2, stride=2), nn.GELU(), *[ResBlock(c2) for _ in range(config.blocks)]
        )

    def forward(
        self, images: Float[Tensor, "n 3 h w"]
    ) -> tuple[Float[Tensor, "n c0 h w"], Float[Tensor, "n c h4 w4"]]:
        """Return (full-resolution features, features at h/4 × w/4). Images in [0, 1]."""
        full = self.stem(images * 2.0 - 1.0)
        low = self.down2(self.down1(full))
        return full, low
