"""Distillation losses of the two semantic stages (DESIGN.md, method step 7).

Stage 1 (segmentation): ``1 - cos(S, Ŝ)`` between the rendered-and-expanded segmentation field
and the SAM teacher embedding, plus 0.2 × a mask loss: SAM's mask decoder is run on both
embeddings for the same point prompts, and our masks are trained to match the teacher's with
focal + dice in a 20:1 ratio (``FL + dice / 20``).

Stage 2 (language): ``1 - cos(L̄, L̂)`` where L̄ is the teacher's language field after
hierarchical-context-aware (HCAM) pooling: averaged inside the small, medium and large SAM masks
that contain each pixel, then averaged over the three scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.queries import cosine_scores

MASK_LOSS_WEIGHT = 0.2
"""Weight of the mask loss against the cosine term in stage 1."""

DICE_RATIO = 20.0
"""Focal : dice = 20 : 1, i.e. ``focal + dice / 20``."""


def cosine_distillation_loss(
    pred: Float[Tensor, "n c h w"],
    target: Float[Tensor, "n c h w"],
    valid: Float[Tensor, "n 1 h w"] | None = None,
) -> Tensor:
    """Mean of ``1 - cos`` over pixels (weighted by ``valid`` when given); target is detached."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    cos = F.cosine_similarity(pred, target.detach(), dim=1, eps=1e-6).unsqueeze(1)
    loss = 1.0 - cos
    if valid is None:
        return loss.mean()
    return (loss * valid).sum() / valid.sum().clamp_min(1.0)


def focal_loss(
    logits: Float[Tensor, "*shape"],
    targets: Float[Tensor, "*shape"],
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> Tensor:
    """Sigmoid focal loss (as SAM is trained), mean over all elements."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean()


def dice_loss(logits: Float[Tensor, "m h w"], targets: Float[Tensor, "m h w"]) -> Tensor:
    """1 - soft Dice per mask, averaged over masks."""
    prob = logits.sigmoid().flatten(1)
    t = targets.flatten(1)
    num = 2 * (prob * t).sum(-1) + 1.0
    den = prob.sum(-1) + t.sum(-1) + 1.0
    return (1 - num / den).mean()


def mask_loss(
    pred_logits: Float[Tensor, "*batch h w"], teacher_logits: Float[Tensor, "*batch h w"]
) -> Tensor:
    """``focal + dice / 20`` of our decoder masks against the teacher's (binarised at 0)."""
    if pred_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"pred_logits {tuple(pred_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} differ"
        )
    h, w = pred_logits.shape[-2:]
    pred = pred_logits.reshape(-1, h, w)
    target = (teacher_logits.detach() > 0).to(pred.dtype).reshape(-1, h, w)
    return focal_loss(pred, target) + dice_loss(pred, target) / DICE_RATIO


def hcam_pool(
    features: Float[Tensor, "n c h w"], region_ids: Int[Tensor, "n s h w"]
) -> Float[Tensor, "n c h w"]:
    """Hierarchical-context-aware pooling of a feature map.

    ``region_ids[:, k]`` labels the regions of scale k (small, medium, large SAM masks); -1 means
    "no mask here". Each pixel receives, per scale, the mean feature of the region containing it
    (its own feature where it has none); the scales are averaged and the result L2-normalised.
    """
    n, c, h, w = features.shape
    if region_ids.shape[0] != n or region_ids.shape[-2:] != (h, w):
        raise ValueError(
            f"region_ids {tuple(region_ids.shape)} does not match features {tuple(features.shape)}"
        )
    flat = features.flatten(2)  # n c hw
    pooled_scales = []
    for k in range(region_ids.shape[1]):
        ids = region_ids[:, k].flatten(1).long()  # n hw
        has = ids >= 0
        num_regions = int(ids.max().item()) + 1 if has.any() else 0
        if num_regions == 0:
            pooled_scales.append(flat)
            continue
        safe = torch.where(has, ids, torch.zeros_like(ids))
        sums = flat.new_zeros(n, c, num_regions)
        sums.scatter_add_(2, safe.unsqueeze(1).expand(n, c, -1), flat * has.unsqueeze(1))
        counts = flat.new_zeros(n, 1, num_regions)
        counts.scatter_add_(2, safe.unsqueeze(1), has.unsqueeze(1).to(flat.dtype))
        means = sums / counts.clamp_min(1.0)
        gathered = torch.gather(means, 2, safe.unsqueeze(1).expand(n, c, -1))
        pooled_scales.append(torch.where(has.unsqueeze(1), gathered, flat))
    pooled = torch.stack(pooled_scales, dim=0).mean(0)
    return F.normalize(pooled, dim=1).reshape(n, c, h, w)


@torch.no_grad()
def hcam_language_target(
    language_features: Float[Tensor, "n c h w"], sam_teacher, images: Float[Tensor, "n 3 hi wi"]
) -> Float[Tensor, "n c h w"]:
    """The stage-2 target with HCAM: ``language_features`` (the language teacher's, on
    ``images``) pooled inside ``sam_teacher``'s automatic small / medium / large masks."""
    return hcam_language_target_from_masks(
        language_features, sam_teacher.hierarchical_masks(images).levels()
    )


@torch.no_grad()
def hcam_language_target_from_masks(
    language_features: Float[Tensor, "n c h w"], levels: Sequence[Int[Tensor, "n hi wi"]]
) -> Float[Tensor, "n c h w"]:
    """``hcam_language_target`` from precomputed segment-id maps (small, medium, large; -1 =
    none; at image resolution), e.g. those of a teacher feature cache."""
    grid = language_features.shape[-2:]
    regions = torch.stack(
        [F.interpolate(m[:, None].float(), size=grid, mode="nearest")[:, 0] for m in levels],
        dim=1,
    ).long()
    return hcam_pool(language_features, regions)


def class_balance_weights(
    teacher_features: Float[Tensor, "n c h w"],
    class_embeddings: Float[Tensor, "k c"],
    exponent: float,
) -> Float[Tensor, "n 1 h w"]:
    """Per-pixel weights ``freq(label) ** -exponent`` (mean 1) from the teacher's own labels.

    The label of a pixel is the class whose text embedding is closest to the teacher's feature
    (no ground truth is used); ``freq`` is that label's share of the batch's pixels. Exponent 0
    gives uniform weights (the plain mean); 0.5 weighs rare classes (a bed, a sofa) up by the
    inverse square root of their frequency, so they are not drowned by walls and floors.
    """
    if exponent < 0:
        raise ValueError(f"exponent must be >= 0, got {exponent}")
    if exponent == 0:
        return teacher_features.new_ones(teacher_features.shape[0], 1, *teacher_features.shape[-2:])
    labels = cosine_scores(teacher_features, class_embeddings).argmax(1)  # n h w
    freq = torch.bincount(labels.flatten(), minlength=class_embeddings.shape[0]).float()
    freq = freq / freq.sum()
    weights = freq.clamp_min(1e-6).pow(-exponent)[labels]
    return (weights / weights.mean()).unsqueeze(1).detach()


def label_distillation_loss(
    pred_language: Float[Tensor, "n c h w"],
    teacher_language: Float[Tensor, "n c h w"],
    class_embeddings: Float[Tensor, "k c"],
    temperature: float,
    weights: Float[Tensor, "n 1 h w"] | None = None,
) -> Tensor:
    """KL(teacher ‖ ours) of the class distributions ``softmax(cos(feature, text_k) / T)``.

    The teacher's own soft labels over a vocabulary (no ground truth): where the cosine loss
    treats every direction of the feature alike, this term spends the field's capacity on the
    directions that decide between the vocabulary's classes (the ones a robot queries), so a
    rare class whose teacher features lie close to a frequent one (a bed near a sofa) is not
    rounded off to it. Mean over pixels, weighted by ``weights`` (mean 1) when given; the
    teacher is detached.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if pred_language.shape != teacher_language.shape:
        raise ValueError(
            f"pred {tuple(pred_language.shape)} and teacher {tuple(teacher_language.shape)} differ"
        )
    log_ours = (cosine_scores(pred_language, class_embeddings) / temperature).log_softmax(dim=1)
    with torch.no_grad():
        teacher = cosine_scores(teacher_language, class_embeddings) / temperature
        log_teacher = teacher.log_softmax(dim=1)
    kl = (log_teacher.exp() * (log_teacher - log_ours)).sum(dim=1, keepdim=True)  # n 1 h w
    if weights is None:
        return kl.mean()
    return (kl * weights).sum() / weights.sum().clamp_min(1e-6)
