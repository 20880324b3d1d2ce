"""Distillation losses: known values, gradients, and HCAM pooling on hand-made regions."""

from __future__ import annotations

import pytest
import torch

from semanticsplat_ros.train.distillation import (
    class_balance_weights,
    cosine_distillation_loss,
    dice_loss,
    focal_loss,
    hcam_pool,
    label_distillation_loss,
    mask_loss,
)


def test_cosine_loss_values():
    x = torch.randn(2, 8, 4, 4)
    assert cosine_distillation_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distillation_loss(x, -x).item() == pytest.approx(2.0, abs=1e-6)
    assert cosine_distillation_loss(x, 3 * x).item() == pytest.approx(0.0, abs=1e-6)
    valid = torch.zeros(2, 1, 4, 4)
    valid[:, :, :2] = 1
    y = x.clone()
    y[:, :, 2:] *= -1  # wrong only where invalid
    assert cosine_distillation_loss(x, y, valid).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        cosine_distillation_loss(x, x[:, :4])


def test_mask_loss_prefers_matching_masks_and_uses_20_to_1():
    target = torch.zeros(3, 8, 8)
    target[:, 2:6, 2:6] = 5.0
    target -= 2.5  # logits: positive inside the square
    good = target * 4
    bad = -good
    assert mask_loss(good, target) < mask_loss(bad, target)
    pred = torch.randn(3, 8, 8)
    binary = (target > 0).float()
    expected = focal_loss(pred, binary) + dice_loss(pred, binary) / 20
    assert mask_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_hcam_pool_averages_inside_regions():
    feats = torch.zeros(1, 2, 2, 2)
    feats[0, 0] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    feats[0, 1] = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # One scale: top row is one region, bottom row has no mask (keeps its own feature).
    ids = torch.tensor([[[[0, 0], [-1, -1]]]])
    pooled = hcam_pool(feats, ids)
    assert torch.allclose(pooled[0, :, 0, 0], torch.tensor([1.0, 0.0]))  # mean (2, 0) normalised
    assert torch.allclose(pooled[0, :, 1, 0], torch.tensor([0.0, 1.0]))
    # Two scales: the second groups everything; the result is the normalised average of both.
    ids2 = torch.cat([ids, torch.zeros_like(ids)], dim=1)
    pooled2 = hcam_pool(feats, ids2)
    mean_all = feats.flatten(2).mean(-1)[0]  # (1, 0.5)
    expected_tl = torch.nn.functional.normalize((torch.tensor([2.0, 0.0]) + mean_all) / 2, dim=0)
    assert torch.allclose(pooled2[0, :, 0, 0], expected_tl, atol=1e-6)
    with pytest.raises(ValueError):
        hcam_pool(feats, ids[..., :1])


def test_class_balance_weights_follow_the_teacher_labels():
    classes = torch.eye(3, 4)  # three class directions in a 4-d feature space
    feats = torch.zeros(1, 4, 2, 4)
    feats[0, 0] = 1.0  # every pixel is class 0 ...
    feats[0, 0, 1, 3], feats[0, 2, 1, 3] = 0.0, 1.0  # ... except one pixel of class 2
    uniform = class_balance_weights(feats, classes, 0.0)
    assert uniform.shape == (1, 1, 2, 4) and torch.equal(uniform, torch.ones_like(uniform))
    w = class_balance_weights(feats, classes, 0.5)
    assert torch.allclose(w.mean(), torch.tensor(1.0))
    # freq 7/8 vs 1/8: the rare pixel weighs sqrt(7) times more.
    assert torch.allclose(w[0, 0, 1, 3] / w[0, 0, 0, 0], torch.tensor(7.0).sqrt())
    with pytest.raises(ValueError, match="exponent"):
        class_balance_weights(feats, classes, -1.0)


def test_label_distillation_is_the_kl_of_the_class_distributions():
    classes = torch.eye(3, 4)
    teacher = torch.zeros(2, 4, 1, 2)
    teacher[:, 0] = 1.0
    teacher[:, 1] = 0.8  # class 0 wins narrowly over class 1 everywhere
    # Scaling a feature changes no cosine: the loss is 0 for the teacher itself, scaled.
    same = label_distillation_loss(3.0 * teacher, teacher, classes, 0.07)
    assert same.abs() < 1e-6
    # A prediction on the wrong side of the class boundary costs more than one on the right
    # side, though its cosine to the teacher is about as high.
    right = teacher.clone()
    right[:, 1] = 0.6
    wrong = teacher.clone()
    wrong[:, 0], wrong[:, 1] = 0.8, 1.0
    pred = torch.stack([right, wrong]).requires_grad_(True)
    losses = [label_distillation_loss(p, teacher, classes, 0.07) for p in pred]
    assert 0 < losses[0] < losses[1]
    # Against a hand computation of KL(teacher || ours) at one pixel.
    t = (torch.nn.functional.normalize(teacher[0, :, 0, 0], dim=0) @ classes.T / 0.07).softmax(0)
    o = (torch.nn.functional.normalize(wrong[0, :, 0, 0], dim=0) @ classes.T / 0.07).softmax(0)
    assert torch.allclose(losses[1], (t * (t / o).log()).sum(), atol=1e-5)
    losses[1].backward()
    assert pred.grad is not None and pred.grad[1].abs().sum() > 0
    # Weights pick the pixels that count.
    w = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2).expand(2, 1, 1, 2)
    mixed = torch.cat([wrong[:, :, :, :1], teacher[:, :, :, 1:]], dim=3)
    assert torch.allclose(
        label_distillation_loss(mixed, teacher, classes, 0.07, w), losses[1], atol=1e-6
    )
    with pytest.raises(ValueError, match="temperature"):
        label_distillation_loss(teacher, teacher, classes, 0.0)
