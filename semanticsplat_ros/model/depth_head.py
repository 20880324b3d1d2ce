"""Depth: U-Net + softmax over the D candidates at 1/4 resolution, convex upsampling to h×w, and
an optional cascade stage (CasMVSNet / DepthSplat style): a local plane sweep over a few
per-pixel candidates around the coarse estimate, matched with full-resolution features."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.geometry import linear_steps
from semanticsplat_ros.model.cost_volume import local_correlation_cost_volume
from semanticsplat_ros.model.layers import UNet, UNetConfig, conv3x3


@dataclass
class DepthHeadConfig:
    """Depth regression from the cost volume and the fused latent."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    """The U-Net producing per-candidate logits at 1/4 resolution."""

    refine_channels: int = 32
    """Width of the full-resolution residual refinement convolutions."""

    refine_candidates: int = 8
    """Dr: per-pixel candidates of the cascade stage, a local plane sweep with full-resolution
    features around the coarse estimate (0 = no cascade stage; otherwise >= 2)."""

    refine_span: float = 2.0
    """Half-width of the cascade's search window, in coarse bins (one bin = 1/(D-1) of the
    normalised inverse depth); the Dr candidates are uniform in inverse depth across it."""

    cascade_channels: int = 16
    """Width of the cascade stage's full-resolution convolutions (cost + features → logits)."""


@dataclass
class DepthOutput:
    """Per-view depth.

    depth:        (n, h, w) metric z-depth in metres at the full input resolution (after the
                  cascade stage when it is enabled).
    inverse:      (n, h, w) the same as normalised inverse depth in [0, 1] (0 = far, 1 = near).
    probs:        (n, d, h/4, w/4) softmax over the coarse candidates.
    coarse_depth: (n, h, w) the upsampled coarse depth the cascade starts from (= ``depth``
                  without a cascade stage), metres.
    refine_probs: (n, dr, h, w) softmax over the cascade's per-pixel candidates, or None.
    """

    depth: Float[Tensor, "n h w"]
    inverse: Float[Tensor, "n h w"]
    probs: Float[Tensor, "n d hs ws"]
    coarse_depth: Float[Tensor, "n h w"]
    refine_probs: Float[Tensor, "n dr h w"] | None = None


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


def normalized_inverse_to_depth(
    inverse: Float[Tensor, "n ..."], near: Float[Tensor, " n"], far: Float[Tensor, " n"]
) -> Float[Tensor, "n ..."]:
    """Metric z-depth of a normalised inverse depth (1 = ``near``, 0 = ``far``; metres)."""
    shape = (-1,) + (1,) * (inverse.ndim - 1)
    inv_near = 1.0 / near.reshape(shape)
    inv_far = 1.0 / far.reshape(shape)
    return 1.0 / (inv_far + inverse * (inv_near - inv_far))


def local_inverse_candidates(
    centre: Float[Tensor, "n h w"], num: int, half_width: float
) -> Float[Tensor, "n d h w"]:
    """``num`` per-pixel candidates, uniform in normalised inverse depth over a window of
    half-width ``half_width`` centred on ``centre`` (values in [0, 1]).

    Near the ends of [0, 1] the window is shifted (not cut) to stay inside, so it still holds
    ``num`` distinct candidates and still contains ``centre``; a window wider than [0, 1] is
    [0, 1]. Index 0 is the farthest candidate.
    """
    if num < 2:
        raise ValueError(f"num must be >= 2, got {num}")
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")
    width = min(2.0 * half_width, 1.0)
    low = (centre - 0.5 * width).clamp(0.0, 1.0 - width)
    steps = linear_steps(0.0, width, num, device=centre.device, dtype=centre.dtype)
    return low.unsqueeze(1) + steps[:, None, None]


class CascadeRefinement(nn.Module):
    """Second, local plane sweep at full resolution around the coarse inverse depth.

    Per pixel, Dr candidates in inverse depth span ± ``half_width`` around the coarse estimate;
    full-resolution matching features of every other view are warped onto them, correlated with
    the reference view's and averaged over the other views (any number ≥ 1, order-free). Three
    convolutions over [correlation, reference features, coarse inverse depth] give logits over
    the candidates; the refined inverse depth is the softmax expectation (differentiable).
    """

    def __init__(
        self, full_channels: int, num_candidates: int, half_width: float, channels: int
    ) -> None:
        super().__init__()
        self.num_candidates = num_candidates
        self.half_width = half_width
        # A learned linear map of the shared full-resolution features for matching.
        self.match = conv3x3(full_channels, full_channels)
        self.logits = nn.Sequential(
            conv3x3(num_candidates + full_channels + 1, channels),
            nn.GELU(),
            conv3x3(channels, channels),
            nn.GELU(),
            conv3x3(channels, num_candidates),
        )
        # Near-uniform start (the refined estimate starts at the coarse one); small, not zero,
        # so gradients reach every layer.
        with torch.no_grad():
            self.logits[-1].weight.mul_(0.01)
            self.logits[-1].bias.zero_()

    def forward(
        self,
        inverse: Float[Tensor, "n h w"],
        full_features: Float[Tensor, "n c0 h w"],
        K: Float[Tensor, "n 3 3"],
        c2w: Float[Tensor, "n 4 4"],
        near: Float[Tensor, " n"],
        far: Float[Tensor, " n"],
        num_views: int,
    ) -> tuple[Float[Tensor, "n h w"], Float[Tensor, "n dr h w"]]:
        """Refine ``inverse`` (normalised, n = b·v views of one batch, view-major within each
        scene). ``K`` in pixels of the h×w maps. Returns (refined inverse, candidate probs)."""
        n = full_features.shape[0]
        if num_views < 2 or n % num_views:
            raise ValueError(f"need >= 2 views dividing n={n}, got num_views={num_views}")
        b = n // num_views
        # The window is placed at the coarse estimate but not differentiated through the warp:
        # the coarse stage gets the photometric gradient through the additive read-out below.
        centre = inverse.detach()
        candidates = local_inverse_candidates(centre, self.num_candidates, self.half_width)
        depths = normalized_inverse_to_depth(candidates, near, far)
        features = self.match(full_features)

        def per_scene(x: Tensor) -> Tensor:
            return x.reshape(b, num_views, *x.shape[1:])

        cost = local_correlation_cost_volume(
            per_scene(features), per_scene(K), per_scene(c2w), per_scene(depths)
        ).flatten(0, 1)
        x = torch.cat([cost, full_features, centre.unsqueeze(1) * 2.0 - 1.0], dim=1)
        probs = self.logits(x).softmax(dim=1)
        expected = (probs * candidates).sum(dim=1)
        return inverse + (expected - centre), probs


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
        dr = config.refine_candidates
        if dr != 0 and dr < 2:
            raise ValueError(f"depth.refine_candidates must be 0 (off) or >= 2, got {dr}")
        if dr and not config.refine_span > 0:
            raise ValueError(f"depth.refine_span must be > 0, got {config.refine_span}")
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
        self.cascade = (
            CascadeRefinement(
                full_channels, dr, config.refine_span / (num_depths - 1), config.cascade_channels
            )
            if dr
            else None
        )

    def forward(
        self,
        latent: Float[Tensor, "n l hs ws"],
        cost: Float[Tensor, "n d hs ws"],
        images: Float[Tensor, "n 3 h w"],
        full_features: Float[Tensor, "n c0 h w"],
        near: Float[Tensor, " n"],
        far: Float[Tensor, " n"],
        K: Float[Tensor, "n 3 3"],
        c2w: Float[Tensor, "n 4 4"],
        num_views: int,
    ) -> DepthOutput:
        """Depth of n = b·v views (view-major per scene); ``K`` in pixels of the h×w images,
        ``c2w`` camera-to-world, ``near``/``far`` in metres (only the cascade uses K and c2w)."""
        x = torch.cat([latent, cost], dim=1)
        probs = self.unet(x).softmax(dim=1)
        d = probs.shape[1]
        # Candidates are uniform in inverse depth, so the normalised inverse depth of candidate k
        # is 1 - k/(d-1): the expectation is a fixed linear read-out of the probabilities.
        levels = linear_steps(1.0, 0.0, d, device=probs.device, dtype=probs.dtype)
        inverse = (probs * levels[:, None, None]).sum(dim=1, keepdim=True)
        inverse = convex_upsample(inverse, self.mask(x), self.downsample)
        residual = self.refine(torch.cat([images * 2.0 - 1.0, full_features, inverse], dim=1))
        inverse = (inverse + residual).clamp(0.0, 1.0).squeeze(1)
        coarse_depth = normalized_inverse_to_depth(inverse, near, far)
        depth, refine_probs = coarse_depth, None
        if self.cascade is not None:
            inverse, refine_probs = self.cascade(
                inverse, full_features, K, c2w, near, far, num_views
            )
            depth = normalized_inverse_to_depth(inverse, near, far)
        return DepthOutput(
            depth=depth,
            inverse=inverse,
            probs=probs,
            coarse_depth=coarse_depth,
            refine_probs=refine_probs,
        )
