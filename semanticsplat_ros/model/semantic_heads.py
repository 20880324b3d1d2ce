"""Semantic heads: latent f_j, segmentation f^S_j and language f^L_j (low-dimensional), and
the small CNNs expanding rendered low-dimensional features to the teachers' widths."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.model.layers import conv3x3


@dataclass
class SemanticHeadsConfig:
    """Widths of the per-Gaussian semantic attributes and of the expansion CNNs."""

    latent_dim: int = 32
    """Width of the latent semantic attribute f_j."""

    seg_render_dim: int = 16
    """Width of the rendered segmentation feature f^S_j (expanded to ``sam_dim`` after)."""

    language_render_dim: int = 16
    """Width of the rendered language feature f^L_j (expanded to ``language_dim`` after)."""

    expand_hidden: int = 64
    """Hidden width of the expansion CNNs."""

    language_skip: bool = False
    """Add a per-pixel map of the language teacher's own features (at full resolution) to the
    language attribute f^L_j, beside the fusion's 1/4-resolution condition, so fine teacher
    detail reaches the Gaussians. Needs the fusion's language condition."""

    language_skip_hidden: int = 32
    """Hidden width of that map (1×1 conv, GELU, 1×1 conv)."""


class SemanticHeads(nn.Module):
    """Per-pixel f_j from (features, latent); f^S_j and f^L_j read f_j."""

    def __init__(self, in_channels: int, config: SemanticHeadsConfig) -> None:
        super().__init__()
        self.latent = nn.Sequential(
            conv3x3(in_channels, config.latent_dim),
            nn.GELU(),
            conv3x3(config.latent_dim, config.latent_dim),
            nn.GELU(),
        )
        self.seg = nn.Conv2d(config.latent_dim, config.seg_render_dim, 1)
        self.language = nn.Conv2d(config.latent_dim, config.language_render_dim, 1)

    def forward(
        self, x: Float[Tensor, "n c h w"]
    ) -> tuple[Float[Tensor, "n fs h w"], Float[Tensor, "n fl h w"]]:
        f = self.latent(x)
        return self.seg(f), self.language(f)


class LanguageSkip(nn.Module):
    """Teacher language features → an addend to f^L_j, per pixel (1×1 conv, GELU, 1×1 conv).

    The last convolution starts at zero, so adding the skip to a trained model leaves its
    output unchanged until training moves it (``model.semanticsplat.with_language_skip``).
    """

    def __init__(self, language_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(language_dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, out_dim, 1)
        )
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, x: Float[Tensor, "n cl h w"]) -> Float[Tensor, "n fl h w"]:
        return self.net(x)


class FeatureExpander(nn.Module):
    """Small CNN: rendered low-dimensional features → the teacher's feature width."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(conv3x3(in_dim, hidden), nn.GELU(), nn.Conv2d(hidden, out_dim, 1))

    def forward(self, x: Float[Tensor, "b v f h w"]) -> Float[Tensor, "b v c h w"]:
        b, v = x.shape[:2]
        out = self.net(x.flatten(0, 1))
        return out.reshape(b, v, *out.shape[1:])

    def hidden(self, x: Float[Tensor, "b v f h w"]) -> Float[Tensor, "b v k h w"]:
        """The activations before the last (1×1, linear) layer: ``forward(x)`` equals
        ``output_weight @ hidden(x) + output_bias`` at every pixel."""
        b, v = x.shape[:2]
        first, act = self.net[0], self.net[1]
        out = act(first(x.flatten(0, 1)))
        return out.reshape(b, v, *out.shape[1:])

    @property
    def output_weight(self) -> Float[Tensor, "c k"]:
        return self.net[2].weight[:, :, 0, 0]

    @property
    def output_bias(self) -> Float[Tensor, " c"]:
        return self.net[2].bias

    def points(self, x: Float[Tensor, "n f"]) -> Float[Tensor, "n c"]:
        """Expand n feature vectors each as a field constant around its pixel: the 3×3
        convolution's taps summed into one matrix. Equals ``forward`` on a constant image away
        from its border; what a map expands its per-voxel mean latents with."""
        first, last = self.net[0], self.net[2]
        hidden = F.gelu(F.linear(x, first.weight.sum(dim=(2, 3)), first.bias))
        return F.linear(hidden, last.weight[:, :, 0, 0], last.bias)
