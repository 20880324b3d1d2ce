"""The paper's evaluation protocols for a SemanticSplat model against its 2D teachers.

For every example (context views in, target views to render):

* NVS (Table 1): PSNR / SSIM of the rendered target views (LPIPS only where its backbone weights
  are installed, which they are not on a plain machine: reported as None), and AbsRel of the
  predicted context-view depth against ground truth.
* Language (Table 2): per-pixel class = argmax cosine between the language field and the text
  embeddings of the class prompts; mIoU / pixel accuracy over source (context) and target views.
  "teacher" is the 2D language teacher run on each view's image independently.
* Promptable (Table 3): a 32×32 grid of point prompts per view; SAM's mask decoder on our
  rendered segmentation embedding ("ours") or on the SAM teacher's embedding of the image
  ("teacher"); per point the best IoU of the 3 masks against the ground-truth instance mask under
  the point; mIoU = mean over points, Acc = mean pixel accuracy of that best mask.
* Consistency: agreement of the predicted labels of all views of a scene after reprojection with
  ground-truth depth (``label_consistency``), ours (one 3D field) vs the teacher (per view).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from semanticsplat_ros.data.classes import CLASS_NAMES, NUM_CLASSES
from semanticsplat_ros.data.types import Views
from semanticsplat_ros.eval.segmentation import (
    best_of_masks_iou,
    confusion_matrix,
    label_consistency,
    masks_at_points,
    miou_acc,
    point_grid,
)
from semanticsplat_ros.geometry import invert_pose
from semanticsplat_ros.metrics import depth_abs_rel, psnr, ssim
from semanticsplat_ros.queries import classify
from semanticsplat_ros.teachers.frame_cache import CachedExample

SPLITS = ("source", "target")

ModelProtocol = Literal["nvs", "language", "promptable", "consistency"]
"""The protocols ``evaluate_model`` runs."""
MODEL_PROTOCOLS: tuple[str, ...] = get_args(ModelProtocol)


@dataclass
class ProtocolSettings:
    """Which protocols run and how big they are."""

    grid: int = 32
    """Point prompts per image side (32 → 1,024 prompts per view)."""
    prompt_chunk: int = 256
    """Prompts decoded per call of the mask decoder."""
    promptable_views: int = 1
    """Views per split and example that get the point grid (it dominates the run time)."""
    protocols: tuple[ModelProtocol, ...] = MODEL_PROTOCOLS
    """Subset of the protocols to run."""

    def __post_init__(self) -> None:
        unknown = set(self.protocols) - set(MODEL_PROTOCOLS)
        if unknown:
            raise ValueError(f"unknown protocols {sorted(unknown)}")
        for name in ("grid", "prompt_chunk", "promptable_views"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class _Accumulator:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    abs_rel: list[float] = field(default_factory=list)
    feedforward_s: list[float] = field(default_factory=list)
    conf: dict[str, Tensor] = field(default_factory=dict)
    prompt_iou: dict[str, list[float]] = field(default_factory=dict)
    prompt_acc: dict[str, list[float]] = field(default_factory=dict)
    consistency: dict[str, list[float]] = field(default_factory=dict)

    def add_conf(self, key: str, conf: Tensor) -> None:
        self.conf[key] = self.conf.get(key, torch.zeros_like(conf)) + conf


def _labels(language: Tensor, class_embeddings: Tensor) -> Tensor:
    return classify(language, class_embeddings)[0]


def _teacher_labels(feats: Tensor, size: tuple[int, int], class_embeddings: Tensor) -> Tensor:
    feats = F.interpolate(feats, size=size, mode="bilinear", align_corners=False)
    return _labels(feats, class_embeddings)


class _ExampleTeachers:
    """The teachers' features of one example's views (split ``source`` = context, ``target``):
    read from the teacher cache when the example carries them (``CachedExample``, a
    ``CachedTeacherDataset``'s), else computed by the teachers."""

    def __init__(self, ex, sam_teacher, lang_teacher, device: torch.device | str) -> None:
        self.sam_teacher, self.lang_teacher = sam_teacher, lang_teacher
        self.cached = {}
        if isinstance(ex, CachedExample):
            for split, f in (("source", ex.context_features), ("target", ex.target_features)):
                if f is not None:
                    self.cached[split] = (f.sam.to(device), f.lang.to(device))

    def sam(self, split: str, images: Tensor) -> Tensor:
        if split in self.cached:
            return self.cached[split][0]
        return self.sam_teacher.embed(images)

    def language(self, split: str, images: Tensor) -> Tensor:
        if split in self.cached:
            return self.cached[split][1]
        return self.lang_teacher.embed(images)


def promptable_view(
    sam_teacher, embeddings: Tensor, instances: Tensor, grid: int, chunk: int
) -> tuple[list[float], list[float]]:
    """Best-of-3 IoU and pixel accuracy per valid grid point of one view."""
    h, w = instances.shape
    pts = point_grid(h, w, grid).to(embeddings.device)
    gt, valid = masks_at_points(instances, pts)
    pred = sam_teacher.predict_masks_at(embeddings[None], pts[None], (h, w), chunk)
    masks = pred.logits[0] > 0  # (p, 3, h, w)
    iou = best_of_masks_iou(masks, gt)
    gt3 = gt.unsqueeze(1)
    inter = (masks & gt3).flatten(2).sum(-1).double()
    union = (masks | gt3).flatten(2).sum(-1).double()
    best = (inter / union.clamp_min(1)).argmax(1)
    chosen = masks[torch.arange(len(best)), best]
    acc = (chosen == gt).flatten(1).double().mean(-1)
    return iou[valid].tolist(), acc[valid].tolist()


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    dataset: Sequence,
    sam_teacher,
    lang_teacher,
    class_embeddings: Tensor,
    settings: ProtocolSettings | None = None,
    with_teacher: bool = True,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "eval",
) -> dict:
    """Run the protocols over ``dataset`` (Examples); returns a nested dict of figures.

    ``class_embeddings`` (NUM_CLASSES, d) are the text embeddings of the class prompts in
    CLASS_NAMES order. The teacher columns are computed only when ``with_teacher``.
    """
    settings = settings or ProtocolSettings()
    if class_embeddings.shape[0] != NUM_CLASSES:
        raise ValueError(f"class_embeddings must have {NUM_CLASSES} rows")
    was_training = model.training
    model.eval()
    acc = _Accumulator()
    run = set(settings.protocols)
    class_embeddings = class_embeddings.to(device)
    try:
        for idx in tqdm(range(len(dataset)), desc=desc, disable=not progress, mininterval=2.0):
            ex = dataset[idx]
            ctx = ex.context.to(device)
            tgt = ex.target.to(device)
            batched = Views(
                **{k: (v[None] if v is not None else None) for k, v in ctx.__dict__.items()}
            )
            fusion = model.config.fusion
            teachers = _ExampleTeachers(ex, sam_teacher, lang_teacher, device)
            t_start = time.perf_counter()
            sam_feats = teachers.sam("source", ctx.images)[None] if fusion.use_sam else None
            lang_feats = (
                teachers.language("source", ctx.images)[None] if fusion.use_language else None
            )
            out = model(batched, sam_feats, lang_feats)
            if "nvs" in run and ctx.depth is not None:
                values = depth_abs_rel(out.depth[0], ctx.depth)
                acc.abs_rel += values[torch.isfinite(values)].tolist()
            labels_by_split: dict[str, tuple[Tensor, Tensor | None]] = {}
            for split, views in (("source", ctx), ("target", tgt)):
                if views.num_views == 0:
                    continue
                rendered = model.render(
                    out, invert_pose(views.c2w)[None], views.K[None], views.width, views.height
                )
                seg, lang = model.decode_features(rendered)
                seg, lang = seg[0], lang[0]
                if split == "target":
                    # Feed-forward time of a scene: teacher conditions, network, target renders.
                    acc.feedforward_s.append(time.perf_counter() - t_start)
                if split == "target" and "nvs" in run:
                    acc.psnr += psnr(rendered.color[0], views.images).tolist()
                    acc.ssim += ssim(rendered.color[0], views.images).tolist()
                ours = _labels(lang, class_embeddings)
                teacher = (
                    _teacher_labels(
                        teachers.language(split, views.images),
                        views.images.shape[-2:],
                        class_embeddings,
                    )
                    if with_teacher and ("language" in run or "consistency" in run)
                    else None
                )
                labels_by_split[split] = (ours, teacher)
                if "language" in run and views.labels is not None:
                    acc.add_conf(f"{split}.ours", confusion_matrix(ours, views.labels, NUM_CLASSES))
                    if teacher is not None:
                        acc.add_conf(
                            f"{split}.teacher", confusion_matrix(teacher, views.labels, NUM_CLASSES)
                        )
                if "promptable" in run and views.instances is not None:
                    teacher_emb = teachers.sam(split, views.images) if with_teacher else None
                    for i in range(min(settings.promptable_views, views.num_views)):
                        rows = [("ours", seg[i])]
                        if teacher_emb is not None:
                            rows.append(("teacher", teacher_emb[i]))
                        for name, emb in rows:
                            ious, accs = promptable_view(
                                sam_teacher,
                                emb,
                                views.instances[i],
                                settings.grid,
                                settings.prompt_chunk,
                            )
                            acc.prompt_iou.setdefault(f"{split}.{name}", []).extend(ious)
                            acc.prompt_acc.setdefault(f"{split}.{name}", []).extend(accs)
            if "consistency" in run and ctx.depth is not None and tgt.depth is not None:
                all_views = _concat_views(ctx, tgt)
                for col in (0, 1):
                    parts = [labels_by_split[s][col] for s in SPLITS if s in labels_by_split]
                    if any(p is None for p in parts):
                        continue
                    value = label_consistency(
                        torch.cat(parts), all_views.depth, all_views.K, all_views.c2w
                    )
                    if not math.isnan(value):
                        acc.consistency.setdefault(("ours", "teacher")[col], []).append(value)
    finally:
        model.train(was_training)
    return _summarise(acc, len(dataset))


def _concat_views(a: Views, b: Views) -> Views:
    return Views(
        images=torch.cat([a.images, b.images]),
        K=torch.cat([a.K, b.K]),
        c2w=torch.cat([a.c2w, b.c2w]),
        near=torch.cat([a.near, b.near]),
        far=torch.cat([a.far, b.far]),
        depth=torch.cat([a.depth, b.depth]),
    )


def per_class_iou(conf: Tensor) -> dict[str, float]:
    """IoU of every class present in ``conf`` (ground truth or prediction), by class name."""
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    return {CLASS_NAMES[k]: float(tp[k] / union[k]) for k in range(len(tp)) if union[k] > 0}


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _summarise(acc: _Accumulator, num_examples: int) -> dict:
    out: dict = {"num_examples": num_examples}
    if acc.feedforward_s:
        out["feedforward_s"] = _mean(acc.feedforward_s)
    if acc.psnr:
        out["nvs"] = {"psnr": _mean(acc.psnr), "ssim": _mean(acc.ssim), "lpips": None}
    if acc.abs_rel:
        out["depth"] = {"abs_rel": _mean(acc.abs_rel)}
    if acc.conf:
        language: dict = {}
        for key, conf in acc.conf.items():
            split, name = key.split(".")
            miou, pixel_acc = miou_acc(conf)
            language.setdefault(split, {})[name] = {
                "miou": miou,
                "acc": pixel_acc,
                "per_class": per_class_iou(conf),
            }
        out["language"] = language
    if acc.consistency:
        out.setdefault("language", {})["consistency"] = {
            k: _mean(v) for k, v in acc.consistency.items()
        }
    if acc.prompt_iou:
        promptable: dict = {}
        for key, ious in acc.prompt_iou.items():
            split, name = key.split(".")
            promptable.setdefault(split, {})[name] = {
                "miou": _mean(ious),
                "acc": _mean(acc.prompt_acc[key]),
                "points": len(ious),
            }
        out["promptable"] = promptable
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1} (the dotted keys the acceptance criteria name)."""
    flat: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat
