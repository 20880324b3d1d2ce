"""Stage-specific training losses, pluggable into the shared trainer.

A loss is a :class:`StageLoss`: called with the batch and the model it returns a
:class:`LossOutput` (the scalar to minimise, detached terms to log, images to show), and it
says which parameters its stage trains. Stage 0 (geometry and appearance) is
:class:`PhotometricLoss`; the distillation stages' losses are in ``train/stages.py``, whose
:func:`build_loss` builds any stage's.

LPIPS: the paper adds 0.05 × LPIPS to L1. LPIPS needs pretrained backbone weights that cannot be
downloaded here, so it is used only when ``lpips_weights`` names an existing file *and* the
``lpips`` package imports; otherwise the term is skipped (``PhotometricLoss.uses_lpips`` says
which).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.data.types import Example
from semanticsplat_ros.geometry import invert_pose
from semanticsplat_ros.metrics import psnr
from semanticsplat_ros.model import SemanticGaussians, SemanticSplat


@dataclass
class LossOutput:
    """One step's loss: ``total`` is minimised; ``terms`` (floats) and ``images`` are logged."""

    total: Tensor
    terms: dict[str, float] = field(default_factory=dict)
    images: dict[str, Float[Tensor, "3 h w"]] = field(default_factory=dict)


class StageLoss(Protocol):
    """What the trainer needs from a stage's loss."""

    def __call__(self, batch: Example, model: SemanticSplat, forward: nn.Module) -> LossOutput:
        """Compute the loss. ``forward`` is the module to call for the forward pass (the model
        itself, or its DistributedDataParallel wrapper); ``model`` gives rendering/decoding."""
        ...

    def trainable_parameters(self, model: SemanticSplat) -> Iterable[nn.Parameter]:
        """Parameters this stage optimises (others are frozen)."""
        ...


@dataclass
class PhotometricLossConfig:
    """Stage-0 loss: photometric L1 (+ LPIPS) on target views, optional depth supervision."""

    l1_weight: float = 1.0
    """Weight of the mean absolute colour error on rendered target views."""

    lpips_weight: float = 0.05
    """Weight of LPIPS (used only when its weights exist, see the module docstring)."""

    lpips_weights: str | None = None
    """Path to LPIPS backbone weights; None or a missing file disables LPIPS."""

    depth_weight: float = 0.0
    """Depth supervision (off by default: the method needs none): ``depth_weight`` × the
    ``depth_loss`` of the context views' depth against ground truth where it is known."""

    depth_loss: str = "inverse_l1"
    """``inverse_l1``: L1 of normalised inverse depth (weighs near surfaces most);
    ``log_l1``: L1 of log depth (a relative error at every range, as AbsRel measures)."""

    depth_coarse_weight: float = 0.0
    """With depth supervision on: weight of the same ``depth_loss`` on the coarse (cost-volume)
    depth before the cascade refinement, relative to ``depth_weight``. The refined depth only
    moves within a few candidate bins of the coarse one, so a coarse estimate in the wrong bin is
    out of the refinement's reach; this gives the cost volume's softmax a direct signal. 0 = the
    refined depth alone is supervised."""

    smoothness_weight: float = 0.0
    """Weight of an edge-aware second-order smoothness prior on the context views' inverse depth
    (``smoothness_loss``): zero on any plane, so walls and floors without texture to match are
    pulled flat instead of left to noise. Needs no ground truth. 0 disables it."""

    render_context: bool = False
    """Also render the context views and add their L1 (the paper renders target views only)."""

    def __post_init__(self) -> None:
        check_depth_loss(self.depth_loss)
        for name in ("depth_weight", "depth_coarse_weight", "smoothness_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    return (pred - target).abs().mean()


def inverse_depth_loss(
    pred: Float[Tensor, "b v h w"],
    target: Float[Tensor, "b v h w"],
    near: Float[Tensor, "b v"],
    far: Float[Tensor, "b v"],
) -> Tensor:
    """L1 between normalised inverse depths (0 = far, 1 = near) where ``target`` > 0."""
    inv_near = (1.0 / near)[..., None, None]
    inv_far = (1.0 / far)[..., None, None]

    def normalise(d: Tensor) -> Tensor:
        return (1.0 / d.clamp_min(1e-6) - inv_far) / (inv_near - inv_far)

    return _mean_where_known((normalise(pred) - normalise(target)).abs(), target)


def log_depth_loss(
    pred: Float[Tensor, "b v h w"],
    target: Float[Tensor, "b v h w"],
    near: Float[Tensor, "b v"],
    far: Float[Tensor, "b v"],
) -> Tensor:
    """L1 between log depths where ``target`` > 0 (``near``/``far`` unused: the same signature
    as ``inverse_depth_loss``)."""
    return _mean_where_known(
        (pred.clamp_min(1e-6).log() - target.clamp_min(1e-6).log()).abs(), target
    )


def _mean_where_known(diff: Tensor, target: Tensor) -> Tensor:
    """Mean of ``diff`` over the pixels whose ground-truth depth is known (``target`` > 0)."""
    valid = target > 0
    return torch.where(valid, diff, torch.zeros_like(diff)).sum() / valid.sum().clamp_min(1)


EDGE_SCALE = 10.0
"""Image-gradient scale of the smoothness prior's edge weights: a step of 0.1 in [0, 1] colour
weighs the prior by e^-1."""


def smoothness_loss(depth: Float[Tensor, "b v h w"], images: Float[Tensor, "b v 3 h w"]) -> Tensor:
    """Edge-aware second-order smoothness of inverse depth (Monodepth's first-order form, one
    order up).

    Inverse depth is divided by its per-view mean (so the prior does not favour shrinking
    depth), its second differences along x and y are weighed by exp(-|∂I|) of the image
    (mean over colour), and averaged. The inverse depth of a plane is affine in pixel
    coordinates, so planes cost nothing; creases and edges where the image has an edge cost
    little.
    """
    disp = 1.0 / depth.clamp_min(1e-6)
    disp = disp / disp.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    gray = images.mean(dim=2)
    dxx = (disp[..., :, 2:] - 2 * disp[..., :, 1:-1] + disp[..., :, :-2]).abs()
    dyy = (disp[..., 2:, :] - 2 * disp[..., 1:-1, :] + disp[..., :-2, :]).abs()
    # Edge weights at the centre pixel: the larger image gradient to either neighbour.
    gx = (gray[..., :, 1:] - gray[..., :, :-1]).abs()
    gy = (gray[..., 1:, :] - gray[..., :-1, :]).abs()
    wx = torch.exp(-torch.maximum(gx[..., :, 1:], gx[..., :, :-1]) * EDGE_SCALE)
    wy = torch.exp(-torch.maximum(gy[..., 1:, :], gy[..., :-1, :]) * EDGE_SCALE)
    return (dxx * wx).mean() + (dyy * wy).mean()


DEPTH_LOSSES = {"inverse_l1": inverse_depth_loss, "log_l1": log_depth_loss}
"""Depth supervision losses by name (``PhotometricLossConfig.depth_loss``)."""


def check_depth_loss(name: str) -> None:
    """Raise ValueError unless ``name`` is a key of ``DEPTH_LOSSES`` (the configs' ``depth_loss``)."""
    if name not in DEPTH_LOSSES:
        raise ValueError(f"depth_loss must be one of {sorted(DEPTH_LOSSES)}, got {name!r}")


class PhotometricLoss:
    """Stage 0: render the target views from the context views' Gaussians and compare."""

    def __init__(self, config: PhotometricLossConfig | None = None) -> None:
        self.config = config or PhotometricLossConfig()
        self.lpips: nn.Module | None = _load_lpips(self.config.lpips_weights)

    @property
    def uses_lpips(self) -> bool:
        return self.lpips is not None and self.config.lpips_weight > 0

    def trainable_parameters(self, model: SemanticSplat) -> Iterable[nn.Parameter]:
        return [p for p in model.parameters() if p.requires_grad]

    def __call__(self, batch: Example, model: SemanticSplat, forward: nn.Module) -> LossOutput:
        cfg = self.config
        ctx, tgt = batch.context, batch.target
        out: SemanticGaussians = forward(ctx)
        views = [tgt]
        if cfg.render_context:
            views.append(ctx)
        total = torch.zeros((), device=ctx.images.device)
        terms: dict[str, float] = {}
        images: dict[str, Tensor] = {}
        for name, v in zip(("target", "context"), views, strict=False):
            rendered = model.render(out, invert_pose(v.c2w), v.K, v.width, v.height)
            l1 = l1_loss(rendered.color, v.images)
            total = total + cfg.l1_weight * l1
            terms[f"l1_{name}"] = float(l1.detach())
            terms[f"psnr_{name}"] = float(psnr(rendered.color.detach(), v.images).mean())
            if self.lpips is not None and cfg.lpips_weight > 0:
                lp = self.lpips(
                    rendered.color.flatten(0, 1) * 2 - 1, v.images.flatten(0, 1) * 2 - 1
                ).mean()
                total = total + cfg.lpips_weight * lp
                terms[f"lpips_{name}"] = float(lp.detach())
            if name == "target":
                images["target/pred"] = rendered.color[0, 0].detach()
                images["target/gt"] = v.images[0, 0]
                images["target/depth"] = _depth_image(rendered.depth[0, 0, 0].detach())
        if ctx.depth is not None:
            dl = inverse_depth_loss(out.depth, ctx.depth, ctx.near, ctx.far)
            terms["depth_l1_inv"] = float(dl.detach())
            if cfg.depth_weight > 0:
                supervised = DEPTH_LOSSES[cfg.depth_loss]
                if supervised is not inverse_depth_loss:
                    dl = supervised(out.depth, ctx.depth, ctx.near, ctx.far)
                    terms[f"depth_{cfg.depth_loss}"] = float(dl.detach())
                total = total + cfg.depth_weight * dl
                if cfg.depth_coarse_weight > 0 and out.coarse_depth is not None:
                    coarse = supervised(out.coarse_depth, ctx.depth, ctx.near, ctx.far)
                    terms[f"depth_coarse_{cfg.depth_loss}"] = float(coarse.detach())
                    total = total + cfg.depth_weight * cfg.depth_coarse_weight * coarse
        if cfg.smoothness_weight > 0:
            smooth = smoothness_loss(out.depth, ctx.images)
            total = total + cfg.smoothness_weight * smooth
            terms["smoothness"] = float(smooth.detach())
        images["context/depth"] = _depth_image(out.depth[0, 0].detach())
        terms["loss"] = float(total.detach())
        return LossOutput(total=total, terms=terms, images=images)


def _depth_image(depth: Float[Tensor, "h w"]) -> Float[Tensor, "3 h w"]:
    """Inverse depth scaled to [0, 1] as a grey image (near = bright)."""
    inv = 1.0 / depth.clamp_min(1e-6)
    inv = (inv - inv.min()) / (inv.max() - inv.min()).clamp_min(1e-6)
    return inv.expand(3, *inv.shape)


def _load_lpips(path: str | None) -> nn.Module | None:
    if not path or not Path(path).is_file():
        return None
    try:
        import lpips  # type: ignore[import-not-found]
    except ImportError:
        return None
    net = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    net.load_state_dict(torch.load(path, map_location="cpu"), strict=False)
    return net.eval().requires_grad_(False)
