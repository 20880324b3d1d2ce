"""Posed views and training examples shared by data, model, teachers, train and eval."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

DEFAULT_NEAR = 0.5
"""Default near plane (metres) of the cost volume's inverse-depth candidates: rendered and
recorded views, the pipeline and the node. Indoor views put 99.9% of their pixels beyond 0.5 m
(synthetic training scenes 0:200); the candidates are uniform in inverse depth, so a nearer plane
spends them on depths that hardly occur: with 0.25 m, three quarters of them covered the 5% of
pixels nearer than 1 m. Depth nearer than ``near`` is clamped to it."""


@dataclass
class Views:
    """v posed views of one scene (a leading batch dim b is added by ``collate``).

    images:    (v, 3, h, w) float RGB in [0, 1].
    K:         (v, 3, 3) intrinsics in pixels of *this* resolution (centres at +0.5).
    c2w:       (v, 4, 4) camera-to-world, OpenCV camera frame, metres.
    near, far: (v,) depth range in metres used for the cost volume.
    depth:     (v, h, w) metric z-depth ground truth, 0 where unknown; or None.
    labels:    (v, h, w) int64 class ids into CLASS_NAMES, -1 where unknown; or None.
    instances: (v, h, w) int64 instance ids, -1 unknown; or None. Structure has ids too (in the
               synthetic world: floor 0, ceiling 1, walls 2-5, then the objects).
    parts:     (v, h, w) int64 part ids (small masks); or None.
    groups:    (v, h, w) int64 group ids (large masks: objects arranged together); or None.
    """

    images: Float[Tensor, "*b v 3 h w"]
    K: Float[Tensor, "*b v 3 3"]
    c2w: Float[Tensor, "*b v 4 4"]
    near: Float[Tensor, "*b v"]
    far: Float[Tensor, "*b v"]
    depth: Float[Tensor, "*b v h w"] | None = None
    labels: Int[Tensor, "*b v h w"] | None = None
    instances: Int[Tensor, "*b v h w"] | None = None
    parts: Int[Tensor, "*b v h w"] | None = None
    groups: Int[Tensor, "*b v h w"] | None = None

    @property
    def num_views(self) -> int:
        return self.images.shape[-4]

    @property
    def height(self) -> int:
        return self.images.shape[-2]

    @property
    def width(self) -> int:
        return self.images.shape[-1]

    def to(self, device: torch.device | str) -> Views:
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in fields(self)
                if getattr(self, f.name) is not None
            },
        )

    def index_views(self, index: Tensor | list[int]) -> Views:
        """Views ``index`` along the view dimension (works with or without a batch dim)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        dim = self.images.ndim - 4
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).index_select(
                    dim, idx.to(getattr(self, f.name).device)
                )
                for f in fields(self)
                if getattr(self, f.name) is not None
            },
        )


@dataclass
class Example:
    """One training / evaluation example: context views in, target views to render."""

    context: Views
    target: Views
    scene_id: str = ""

    def to(self, device: torch.device | str) -> Example:
        return Example(self.context.to(device), self.target.to(device), self.scene_id)


def _stack_views(items: list[Views]) -> Views:
    out = {}
    for f in fields(Views):
        values = [getattr(v, f.name) for v in items]
        if any(x is None for x in values):
            out[f.name] = None
        else:
            out[f.name] = torch.stack(values, dim=0)
    return Views(**out)


def collate(examples: list[Example]) -> Example:
    """Stack examples into a batch (adds the leading b dimension); a DataLoader collate_fn."""
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    return Example(
        _stack_views([e.context for e in examples]),
        _stack_views([e.target for e in examples]),
        ",".join(e.scene_id for e in examples),
    )
