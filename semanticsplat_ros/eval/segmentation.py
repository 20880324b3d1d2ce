"""Segmentation metrics of the paper's protocols: mIoU/Acc, point-grid promptable IoU, and
cross-view consistency of labels."""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from semanticsplat_ros.geometry import (
    invert_pose,
    point_grid,
    project,
    transform_points,
    unproject_depth,
)

__all__ = [
    "best_of_masks_iou",
    "confusion_matrix",
    "label_consistency",
    "masks_at_points",
    "miou_acc",
    "point_grid",
]


def confusion_matrix(
    pred: Int[Tensor, "*shape"], gt: Int[Tensor, "*shape"], num_classes: int, ignore_index: int = -1
) -> Int[Tensor, "c c"]:
    """Rows = ground truth, columns = prediction; pixels with gt == ignore_index are skipped."""
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ in shape")
    keep = gt != ignore_index
    p = pred[keep].long().clamp(0, num_classes - 1)
    g = gt[keep].long()
    if (g < 0).any() or (g >= num_classes).any():
        raise ValueError(f"gt holds ids outside [0, {num_classes})")
    idx = g * num_classes + p
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def miou_acc(conf: Int[Tensor, "c c"]) -> tuple[float, float]:
    """Mean IoU over classes that occur (in gt or prediction) and pixel accuracy."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    miou = (tp[present] / union[present]).mean().item() if present.any() else float("nan")
    total = conf.sum()
    acc = (tp.sum() / total).item() if total > 0 else float("nan")
    return miou, acc


def masks_at_points(
    instances: Int[Tensor, "h w"], points: Float[Tensor, "p 2"]
) -> tuple[Bool[Tensor, "p h w"], Bool[Tensor, " p"]]:
    """Ground-truth mask of the instance under each point, and whether it is valid (id >= 0)."""
    h, w = instances.shape
    cols = points[:, 0].floor().long().clamp(0, w - 1)
    rows = points[:, 1].floor().long().clamp(0, h - 1)
    ids = instances[rows, cols]
    return instances.unsqueeze(0) == ids[:, None, None], ids >= 0


def best_of_masks_iou(
    pred: Bool[Tensor, "p k h w"], gt: Bool[Tensor, "p h w"]
) -> Float[Tensor, " p"]:
    """For each prompt, the best IoU among its k candidate masks (k = 3 for SAM)."""
    gt = gt.unsqueeze(1)
    inter = (pred & gt).flatten(2).sum(-1).double()
    union = (pred | gt).flatten(2).sum(-1).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))
    return iou.max(dim=1).values


def label_consistency(
    labels: Int[Tensor, "v h w"],
    depth: Float[Tensor, "v h w"],
    K: Float[Tensor, "v 3 3"],
    c2w: Float[Tensor, "v 4 4"],
    depth_tolerance: float = 0.05,
) -> float:
    """Agreement of labels between views: the fraction of co-visible pixel pairs that agree.

    Each pixel of view i is lifted with ``depth`` (use ground-truth depth so that every method is
    judged on the same correspondences), projected into every other view j, and counted when it
    lands inside j and its depth matches j's depth within ``depth_tolerance`` (relative), i.e.
    the same surface is seen. Pixels with label < 0 or depth <= 0 are skipped.
    """
    v, h, w = labels.shape
    if v < 2:
        raise ValueError("label consistency needs at least 2 views")
    agree = 0
    total = 0
    w2c = invert_pose(c2w)
    for i in range(v):
        pts = unproject_depth(depth[i], K[i], c2w[i]).reshape(-1, 3)
        ok_i = (depth[i].reshape(-1) > 0) & (labels[i].reshape(-1) >= 0)
        for j in range(v):
            if i == j:
                continue
            uv, z = project(transform_points(w2c[j], pts), K[j])
            col = uv[:, 0].floor().long()
            row = uv[:, 1].floor().long()
            inside = ok_i & (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
            idx = row.clamp(0, h - 1) * w + col.clamp(0, w - 1)
            dj = depth[j].reshape(-1)[idx]
            covis = inside & (dj > 0) & ((dj - z).abs() <= depth_tolerance * dj)
            lj = labels[j].reshape(-1)[idx]
            covis &= lj >= 0
            agree += int((covis & (lj == labels[i].reshape(-1))).sum())
            total += int(covis.sum())
    return agree / total if total else float("nan")
