"""Small building blocks shared by the model's modules (conv blocks, a 2-level U-Net)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (GELU, GroupNorm)."""

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        g = _groups(channels, groups)
        self.conv1 = conv3x3(channels, channels)
        self.norm1 = nn.GroupNorm(g, channels)
        self.conv2 = conv3x3(channels, channels)
        self.norm2 = nn.GroupNorm(g, channels)

    def forward(self, x: Float[Tensor, "n c h w"]) -> Float[Tensor, "n c h w"]:
        y = F.gelu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.gelu(x + y)


def _groups(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` not above ``groups`` (GroupNorm needs a divisor)."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


@dataclass
class UNetConfig:
    """A light 2-level 2D U-Net (one downsampling by 2, one upsampling)."""

    channels: int = 64
    """Channels at the input resolution; the bottleneck (half resolution) has twice as many."""

    blocks: int = 1
    """Residual blocks per level."""


class UNet(nn.Module):
    """``in_channels`` → ``out_channels`` at the same resolution (h, w must be even)."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig) -> None:
        super().__init__()
        c = config.channels
        self.inp = nn.Sequential(conv3x3(in_channels, c), nn.GELU())
        self.enc = nn.Sequential(*[ResBlock(c) for _ in range(config.blocks)])
        self.down = nn.Sequential(conv3x3(c, 2 * c, stride=2), nn.GELU())
        self.mid = nn.Sequential(*[ResBlock(2 * c) for _ in range(config.blocks)])
        self.up = conv3x3(2 * c, c)
        self.dec = nn.Sequential(
            conv3x3(2 * c, c), nn.GELU(), *[ResBlock(c) for _ in range(config.blocks)]
        )
        self.out = nn.Conv2d(c, out_channels, 1)

    def forward(self, x: Float[Tensor, "n ci h w"]) -> Float[Tensor, "n co h w"]:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"UNet input height and width must be even, got {tuple(x.shape[-2:])}")
        skip = self.enc(self.inp(x))
        y = self.mid(self.down(skip))
        y = F.gelu(
            self.up(F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False))
        )
        y = self.dec(torch.cat([y, skip], dim=1))
        return self.out(y)
