"""Data passed to and returned from rasterizers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass
class Gaussians:
    """A batch of 3D Gaussians in the world frame (metres).

    means:     (b, n, 3)  centres.
    quats:     (b, n, 4)  rotations, wxyz, need not be normalised.
    scales:    (b, n, 3)  standard deviations along the rotated axes, metres, > 0.
    opacities: (b, n)     in [0, 1].
    colors:    (b, n, 3)  linear RGB in [0, 1] (no spherical harmonics).
    features:  (b, n, f)  any number of extra channels composited with the same weights
               (f may be 0).
    """

    means: Float[Tensor, "b n 3"]
    quats: Float[Tensor, "b n 4"]
    scales: Float[Tensor, "b n 3"]
    opacities: Float[Tensor, "b n"]
    colors: Float[Tensor, "b n 3"]
    features: Float[Tensor, "b n f"]

    @property
    def batch_size(self) -> int:
        return self.means.shape[0]

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[1]

    @property
    def feature_dim(self) -> int:
        return self.features.shape[-1]

    def detach(self) -> Gaussians:
        return Gaussians(*(t.detach() for t in self._fields()))

    def to(self, device: torch.device | str) -> Gaussians:
        return Gaussians(*(t.to(device) for t in self._fields()))

    def select(self, index: Tensor) -> Gaussians:
        """Keep Gaussians ``index`` (bool mask (n,) or indices) in every batch element."""
        return Gaussians(*(t[:, index] for t in self._fields()))

    def _fields(self) -> tuple[Tensor, ...]:
        return (self.means, self.quats, self.scales, self.opacities, self.colors, self.features)


@dataclass
class RenderOutput:
    """What every rasterizer backend returns, for b batch elements and v views.

    color:    (b, v, 3, h, w)  composited colour over the background.
    features: (b, v, f, h, w)  composited features (no background added).
    depth:    (b, v, 1, h, w)  expected depth Σ wᵢ zᵢ / Σ wᵢ (z in the camera frame, metres);
              0 where alpha is 0.
    alpha:    (b, v, 1, h, w)  accumulated opacity Σ wᵢ in [0, 1].
    tile_overflow: (b, v) int64, or None when the producer does not report it: how many
              (Gaussian, tile) pairs were dropped because a tile held more Gaussians than the
              rasterizer's per-tile cap (the nearest are kept). 0 means the image is exact;
              backends without a cap (dense, gsplat) report zeros.
    """

    color: Float[Tensor, "b v 3 h w"]
    features: Float[Tensor, "b v f h w"]
    depth: Float[Tensor, "b v 1 h w"]
    alpha: Float[Tensor, "b v 1 h w"]
    tile_overflow: Int[Tensor, "b v"] | None = None
