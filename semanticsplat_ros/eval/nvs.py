"""Novel-view synthesis and depth evaluation of a SemanticSplat model on a dataset."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset

from semanticsplat_ros.data.types import collate
from semanticsplat_ros.geometry import invert_pose
from semanticsplat_ros.metrics import depth_abs_rel, psnr, ssim


@torch.no_grad()
def evaluate_nvs(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    max_examples: int | None = None,
) -> dict[str, float]:
    """Render every example's target views from its context views and average the metrics.

    Returns ``nvs.psnr`` (dB), ``nvs.ssim`` over target views (at the dataset's resolution);
    ``depth.abs_rel``: the model's context-view depth against ground truth (pixels with
    depth > 0); ``depth.abs_rel_target``: rendered target-view depth against ground truth where
    the render is opaque (alpha > 0.5); and ``num_examples``. Depth keys are NaN when the dataset
    has no depth.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    sums = {"psnr": 0.0, "ssim": 0.0, "abs_rel": 0.0, "abs_rel_target": 0.0}
    counts = {k: 0 for k in sums}
    seen = 0
    try:
        for batch in loader:
            if max_examples is not None and seen >= max_examples:
                break
            batch = batch.to(device)
            ctx, tgt = batch.context, batch.target
            out = model(ctx)
            rendered = model.render(out, invert_pose(tgt.c2w), tgt.K, tgt.width, tgt.height)
            for key, values in (
                ("psnr", psnr(rendered.color, tgt.images)),
                ("ssim", ssim(rendered.color, tgt.images)),
            ):
                sums[key] += float(values.sum())
                counts[key] += values.numel()
            if ctx.depth is not None:
                _accumulate(sums, counts, "abs_rel", depth_abs_rel(out.depth, ctx.depth))
            if tgt.depth is not None:
                gt = torch.where(
                    rendered.alpha[:, :, 0] > 0.5, tgt.depth, torch.zeros_like(tgt.depth)
                )
                _accumulate(
                    sums, counts, "abs_rel_target", depth_abs_rel(rendered.depth[:, :, 0], gt)
                )
            seen += ctx.images.shape[0]
    finally:
        model.train(was_training)

    def mean(key: str) -> float:
        return sums[key] / counts[key] if counts[key] else math.nan

    return {
        "nvs.psnr": mean("psnr"),
        "nvs.ssim": mean("ssim"),
        "depth.abs_rel": mean("abs_rel"),
        "depth.abs_rel_target": mean("abs_rel_target"),
        "num_examples": float(seen),
    }


def _accumulate(sums: dict, counts: dict, key: str, values: torch.Tensor) -> None:
    valid = torch.isfinite(values)
    sums[key] += float(values[valid].sum())
    counts[key] += int(valid.sum())
