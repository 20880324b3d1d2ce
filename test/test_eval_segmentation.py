"""Segmentation metrics on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from semanticsplat_ros.eval.segmentation import (
    best_of_masks_iou,
    confusion_matrix,
    label_consistency,
    masks_at_points,
    miou_acc,
    point_grid,
)


def test_miou_and_accuracy_known_values():
    gt = torch.tensor([0, 0, 1, 1, 2, -1])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    conf = confusion_matrix(pred, gt, 3)
    assert conf.sum() == 5  # the ignored pixel is skipped
    miou, acc = miou_acc(conf)
    # class 0: tp 1, union 2 -> 0.5; class 1: tp 2, union 3 -> 2/3; class 2: 1.
    assert miou == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert acc == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(pred[:3], gt, 3)


def test_point_grid_and_best_of_three():
    pts = point_grid(64, 32, n=4)
    assert pts.shape == (16, 2)
    assert pts[0].tolist() == [4.0, 8.0]
    inst = torch.zeros(8, 8, dtype=torch.long)
    inst[:, 4:] = 1
    gt, valid = masks_at_points(inst, torch.tensor([[1.0, 1.0], [6.0, 2.0]]))
    assert valid.all()
    assert gt[0].sum() == 32 and gt[1][0, 7]
    pred = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    pred[0, 2] = gt[0]  # perfect third mask for prompt 0
    pred[1, 0, :, 6:] = True  # half of instance 1 -> IoU 0.5
    iou = best_of_masks_iou(pred, gt)
    assert iou.tolist() == pytest.approx([1.0, 0.5])


def test_label_consistency_of_two_views_of_a_plane():
    h = w = 16
    K = torch.tensor([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]]).expand(2, 3, 3)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = 0.25  # second camera shifted right by 0.25 m; plane at z = 2
    depth = torch.full((2, h, w), 2.0)
    # Labels painted on the plane by world x: consistent by construction.
    u = torch.arange(w) + 0.5
    x0 = (u - 8) / 16 * 2
    labels = torch.stack([(x0 > 0).long().expand(h, w), (x0 + 0.25 > 0).long().expand(h, w)])
    assert label_consistency(labels, depth, K, c2w) == pytest.approx(1.0)
    flipped = labels.clone()
    flipped[1] = 1 - flipped[1]
    assert label_consistency(flipped, depth, K, c2w) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        label_consistency(labels[:1], depth[:1], K[:1], c2w[:1])
    assert math.isnan(label_consistency(labels, torch.zeros_like(depth), K, c2w))
