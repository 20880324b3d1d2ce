"""Teacher evaluation on synthetic scenes (``semanticsplat eval --teachers``).

Protocols:
* SAM (promptable): for every view, a 32×32 grid of point prompts; for each point the best IoU of
  the three predicted masks against the ground-truth instance mask containing the point;
  averaged over all points (points on unknown pixels are skipped).
* LSeg (language): per-pixel argmax over the cosine between the teacher's features and the text
  embeddings of the 8 class prompts (the class names, or ``class_prompts`` replacing them);
  IoU per class over all pixels of all views, mIoU over the classes present (in ground truth or
  prediction), and pixel accuracy. Query texts are embedded by ``prompts.embed_prompts``
  (``QUERY_TEMPLATES`` unless ``templates`` is given).
* Unseen words (``unseen_word_check``): the language protocol with several sets of class
  queries on the same features: the class names; ``picks`` (K) random draws of one train text
  per class from the class vocabulary; K random draws of one unseen word per class. Each group's
  mIoU is the mean over its draws, and ``ratio`` = unseen mIoU / names mIoU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

import torch
from tqdm import tqdm

from semanticsplat_ros.data.classes import CLASS_NAMES, NUM_CLASSES
from semanticsplat_ros.data.styled import WorldStyle
from semanticsplat_ros.data.synthetic import SyntheticDataset, ViewSampling
from semanticsplat_ros.eval.protocols import per_class_iou, promptable_view
from semanticsplat_ros.eval.segmentation import confusion_matrix, miou_acc
from semanticsplat_ros.teachers.lseg import LanguageTeacher, load_tiny_lseg
from semanticsplat_ros.teachers.prompts import (
    QUERY_TEMPLATES,
    embed_prompts,
    unseen_words_in_text_space,
)
from semanticsplat_ros.teachers.sam import MaskGenerationConfig, SamTeacher, load_tiny_sam
from semanticsplat_ros.teachers.vocabulary import ClassVocabulary
from semanticsplat_ros.train.distillation import hcam_language_target
from semanticsplat_ros.train.stages import DistillationLossConfig

TeacherProtocol = Literal["sam", "lseg"]
"""The teacher protocols ``evaluate_teachers`` runs."""
TEACHER_PROTOCOLS: tuple[str, ...] = get_args(TeacherProtocol)

GRID_POINTS_PER_SIDE = 32
"""Side of the point-prompt grid of the promptable protocol."""


def load_class_prompts(path: str | Path) -> dict[str, str]:
    """A YAML mapping class name -> query text; ValueError for unknown classes or bad values."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class prompts file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"class prompts file {path} is not valid YAML: {exc}") from exc
    return check_class_prompts(data, str(path))


def check_class_prompts(data: object, source: str = "class_prompts") -> dict[str, str]:
    """Validate a class name -> query text mapping (a subset of CLASS_NAMES is allowed)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{source} must map class names to query texts")
    unknown = sorted(str(k) for k in data if k not in CLASS_NAMES)
    if unknown:
        raise ValueError(f"{source}: unknown class names {unknown}; known: {list(CLASS_NAMES)}")
    for k, v in data.items():
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{source}: the query for {k!r} must be a non-empty string")
    return {str(k): str(v) for k, v in data.items()}


def class_queries(class_prompts: Mapping[str, str] | None) -> list[str]:
    """The 8 query texts in CLASS_NAMES order (class names unless replaced)."""
    prompts = check_class_prompts(class_prompts or {})
    return [prompts.get(name, name) for name in CLASS_NAMES]


@torch.no_grad()
def sam_grid_miou(
    teacher: SamTeacher, images: torch.Tensor, instances: torch.Tensor, chunk: int = 256
) -> tuple[float, int]:
    """Sum of best-of-3 IoUs over the grid points of ``images`` (n,3,h,w) and the point count."""
    embeddings = teacher.embed(images)
    total, count = 0.0, 0
    for i in range(images.shape[0]):
        ious, _ = promptable_view(teacher, embeddings[i], instances[i], GRID_POINTS_PER_SIDE, chunk)
        total += sum(ious)
        count += len(ious)
    return total, count


def _context_views(
    seeds: range, height: int, width: int, num_views: int, style: WorldStyle
) -> SyntheticDataset:
    """The examples both protocols read: ``num_views`` context views per scene, no targets."""
    return SyntheticDataset(
        seeds, height=height, width=width, num_context=num_views, num_target=0,
        sampling=ViewSampling(style=style),
    )  # fmt: skip


def evaluate_teachers(
    seeds: range,
    height: int = 64,
    width: int = 64,
    class_prompts: Mapping[str, str] | None = None,
    sam_teacher: SamTeacher | None = None,
    lang_teacher: LanguageTeacher | None = None,
    num_views: int = 2,
    progress: bool = True,
    protocols: tuple[TeacherProtocol, ...] = TEACHER_PROTOCOLS,
    templates: Sequence[str] = QUERY_TEMPLATES,
    style: WorldStyle = "classic",
) -> dict:
    """Both protocols on the context views of scenes ``seeds`` of world ``style``.

    Returns {"teachers": {"sam": {"miou", "points"}, "lseg": {"miou", "acc", "per_class",
    "queries"}, "lseg_hcam": {"miou", "acc"}}} (only the requested ``protocols``; ``lseg_hcam``
    — the language teacher's features after HCAM pooling inside SAM's masks, i.e. the stage-2
    target with HCAM — needs both). Teachers default to the shipped tiny ones.
    """
    unknown = sorted(set(protocols) - set(TEACHER_PROTOCOLS))
    if unknown or not protocols:
        raise ValueError(
            f"protocols must be a non-empty subset of ('sam', 'lseg'), got {protocols}"
        )
    queries = class_queries(class_prompts)
    if "sam" in protocols and sam_teacher is None:
        sam_teacher = load_tiny_sam()
        # HCAM pooling as in stage-2 training.
        points = DistillationLossConfig().hcam_points_per_side
        sam_teacher.generation = MaskGenerationConfig(points_per_side=points)
    text = None
    if "lseg" in protocols:
        lang_teacher = lang_teacher or load_tiny_lseg()
        text = embed_prompts(lang_teacher.text_encoder, queries, templates)
    dataset = _context_views(seeds, height, width, num_views, style)
    sam_total, sam_count = 0.0, 0
    confusion = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)  # gt x pred (rows)
    confusion_hcam = torch.zeros_like(confusion)
    for i in tqdm(range(len(dataset)), desc="eval teachers", disable=not progress):
        views = dataset[i].context
        if sam_teacher is not None and "sam" in protocols:
            total, count = sam_grid_miou(sam_teacher, views.images, views.instances)
            sam_total, sam_count = sam_total + total, sam_count + count
        if lang_teacher is None or "lseg" not in protocols:
            continue
        feats = lang_teacher.embed(views.images)
        size = views.images.shape[-2:]
        pred = lang_teacher.segment_features(feats, text, size)
        confusion += confusion_matrix(pred, views.labels, NUM_CLASSES)
        if sam_teacher is not None:
            # The stage-2 target with HCAM pooling, classified the same way.
            pooled = hcam_language_target(feats, sam_teacher, views.images)
            pred = lang_teacher.segment_features(pooled, text, size)
            confusion_hcam += confusion_matrix(pred, views.labels, NUM_CLASSES)
    miou, pixel_acc = miou_acc(confusion)
    out: dict = {}
    if "sam" in protocols:
        out["sam"] = {"miou": sam_total / max(1, sam_count), "points": sam_count}
    if "lseg" in protocols:
        out["lseg"] = {
            "miou": miou,
            "acc": pixel_acc,
            "per_class": per_class_iou(confusion),
            "queries": dict(zip(CLASS_NAMES, queries, strict=True)),
            "templates": list(templates),
        }
        if confusion_hcam.sum() > 0:
            miou_h, acc_h = miou_acc(confusion_hcam)
            out["lseg_hcam"] = {"miou": miou_h, "acc": acc_h}
    return {"teachers": out}


PromptSets = dict[str, list[dict[str, str]]]
"""Group name -> class query mappings (``{}``: the class names)."""


def unseen_prompt_sets(vocabulary: ClassVocabulary, picks: int = 5, seed: int = 0) -> PromptSets:
    """The query sets of the unseen-word check: names, K train draws, K unseen draws."""
    return {
        "names": [{}],
        "train": vocabulary.prompt_sets("train", picks, seed),
        "unseen": vocabulary.prompt_sets("unseen", picks, seed),
    }


def summarise_prompt_sets(sets: PromptSets, mious: Mapping[str, Sequence[float]]) -> dict:
    """{group: mean mIoU, "picks": {group: [{"queries", "miou"}]}, "ratio": unseen / names}."""
    out: dict = {g: sum(mious[g]) / len(mious[g]) for g in sets}
    out["picks"] = {
        g: [
            {"queries": class_queries(p), "miou": m} for p, m in zip(sets[g], mious[g], strict=True)
        ]
        for g in sets
    }
    if "names" in out and "unseen" in out:
        out["ratio"] = out["unseen"] / out["names"] if out["names"] > 0 else None
    return out


@torch.no_grad()
def unseen_word_check(
    seeds: range,
    vocabulary: ClassVocabulary,
    height: int = 64,
    width: int = 64,
    picks: int = 5,
    lang_teacher: LanguageTeacher | None = None,
    templates: Sequence[str] = QUERY_TEMPLATES,
    num_views: int = 2,
    progress: bool = True,
    seed: int = 0,
    style: WorldStyle = "classic",
) -> dict:
    """The language protocol of the 2D teacher with every query set of ``unseen_prompt_sets``
    (the features of each view computed once). Returns ``summarise_prompt_sets``'s dict."""
    lang_teacher = lang_teacher or load_tiny_lseg()
    sets = unseen_prompt_sets(vocabulary, picks, seed)
    flat = [(g, p) for g, group in sets.items() for p in group]
    texts = [embed_prompts(lang_teacher.text_encoder, class_queries(p), templates) for _, p in flat]
    dataset = _context_views(seeds, height, width, num_views, style)
    confusions = torch.zeros(len(flat), NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    for i in tqdm(range(len(dataset)), desc="eval unseen words", disable=not progress):
        views = dataset[i].context
        feats = lang_teacher.embed(views.images)
        for j, text in enumerate(texts):
            pred = lang_teacher.segment_features(feats, text, views.images.shape[-2:])
            confusions[j] += confusion_matrix(pred, views.labels, NUM_CLASSES)
    mious: dict[str, list[float]] = {g: [] for g in sets}
    for (g, _), conf in zip(flat, confusions, strict=True):
        mious[g].append(miou_acc(conf)[0])
    summary = summarise_prompt_sets(sets, mious)
    summary["text_space"] = unseen_words_in_text_space(
        lang_teacher.text_encoder, vocabulary, templates
    )
    return {**summary, "templates": list(templates)}
