"""``semanticsplat check-teachers``: load a SAM and a language teacher and run each once.

Example (Meta's SAM ViT-B and an open_clip ViT-B-16, both local files)::

    semanticsplat check-teachers --sam vit_b:/weights/sam_vit_b_01ec64.pth \\
        --language open_clip:ViT-B-16:/weights/open_clip_vit_b_16.bin

The teacher specs are those of ``spec.py`` (default: the shipped tiny teachers). One view of the
synthetic world (scene ``--seed``, its head camera) goes through both teachers: SAM embeds it and
its mask decoder answers a point prompt at the view's centre on that embedding; the language
teacher's dense features are compared (cosine) with its text tower's embedding of ``--text``.
The JSON printed on stdout (``TeacherCheck``) gives every shape and timing, and two sanity
figures that mean something only for trained weights: the best IoU of SAM's three masks with
the ground-truth instance under the point, and the mean cosine inside / outside the
ground-truth pixels of ``--text`` when it is a class name.

A missing file, a corrupt one or one of another architecture exits with status 2 and one line on
stderr naming the file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.synthetic import make_example
from semanticsplat_ros.data.types import Views
from semanticsplat_ros.device import DEVICES, resolve_device
from semanticsplat_ros.teachers.sam import SamTeacher
from semanticsplat_ros.teachers.spec import (
    LANGUAGE_SPEC_FORMS,
    SAM_SPEC_FORMS,
    LanguageSpec,
    LoadedLanguageTeacher,
    SamSpec,
    load_language_teacher,
    load_sam_teacher,
)

PROG = "semanticsplat check-teachers"
T = TypeVar("T")


@dataclass
class ViewInfo:
    """The synthetic view both teachers saw."""

    seed: int
    """Scene of the synthetic world."""
    height: int
    """Image rows in pixels."""
    width: int
    """Image columns in pixels."""
    device: str
    """Torch device the teachers ran on."""


@dataclass
class SamCheck:
    """SAM: load, embed the view, decode one point prompt."""

    spec: str
    kind: str
    """``tiny`` or the segment_anything architecture (``vit_b``, ...)."""
    input_size: int
    """Side of the square encoder input in pixels (1024 for the released models)."""
    embedding_shape: list[int]
    """(1, 256, h', w') image embedding (64 × 64 for the released models)."""
    point_xy: list[float]
    """The prompt: (x, y) pixels, pixel centres at +0.5 (the view's centre pixel)."""
    masks_shape: list[int]
    """(1, 1, 3, H, W) mask logits: three hierarchical masks for the one point."""
    predicted_iou: list[float]
    """SAM's predicted IoU of each of the three masks."""
    mask_fraction: list[float]
    """Fraction of the view's pixels inside each mask (logit > 0)."""
    best_iou_with_instance: float | None
    """Best IoU of the three masks with the ground-truth instance under the point."""
    load_s: float
    embed_s: float
    decode_s: float


@dataclass
class LanguageCheck:
    """The language teacher: load, dense features of the view, a text query."""

    spec: str
    kind: str
    """``tiny_lseg`` or ``open_clip:<architecture>``."""
    features_shape: list[int]
    """(1, d, h', w') unit-norm dense features (d = 512, 14 × 14 for open_clip ViT-B-16)."""
    text: str
    """The query word."""
    text_embedding_shape: list[int]
    """(1, d) embedding of ``text`` by the teacher's text tower."""
    cosine_range: list[float]
    """Smallest and largest cosine between a pixel's feature and the text embedding."""
    cosine_inside: float | None
    """Mean cosine over the ground-truth pixels of ``text`` (when it is a class in view)."""
    cosine_outside: float | None
    """Mean cosine over the other pixels (same condition)."""
    load_s: float
    embed_s: float
    text_s: float


@dataclass
class TeacherCheck:
    """What ``semanticsplat check-teachers`` prints."""

    view: ViewInfo
    sam: SamCheck
    language: LanguageCheck


def _timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``fn()`` and its wall time in seconds (CUDA work included)."""
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def _shape(t: Tensor) -> list[int]:
    return [int(s) for s in t.shape]


def check_sam(
    spec: SamSpec, teacher: SamTeacher, view: Views, device: torch.device, load_s: float
) -> SamCheck:
    """Embed ``view``'s first image with ``spec``'s loaded SAM (``load_s`` seconds to load) and
    decode a point prompt at its centre on that embedding."""
    images = view.images[:1].to(device)
    h, w = images.shape[-2:]
    with torch.inference_mode():
        embedding, embed_s = _timed(lambda: teacher.embed(images), device)
        row, col = h // 2, w // 2
        point = torch.tensor([[[col + 0.5, row + 0.5]]], device=device)
        masks, decode_s = _timed(lambda: teacher.predict_masks_at(embedding, point, (h, w)), device)
    inside = masks.logits[0, 0] > 0  # (3, H, W)
    best_iou = None
    if view.instances is not None and int(view.instances[0, row, col]) >= 0:
        truth = (view.instances[0] == view.instances[0, row, col]).to(inside.device)
        union = (inside | truth).flatten(1).sum(1).clamp(min=1)
        best_iou = float(((inside & truth).flatten(1).sum(1) / union).max())
    return SamCheck(
        spec=spec.to_string(),
        kind=spec.kind,
        input_size=teacher.input_size,
        embedding_shape=_shape(embedding),
        point_xy=[col + 0.5, row + 0.5],
        masks_shape=_shape(masks.logits),
        predicted_iou=[round(float(v), 4) for v in masks.iou[0, 0]],
        mask_fraction=[round(float(v), 4) for v in inside.float().mean((1, 2))],
        best_iou_with_instance=None if best_iou is None else round(best_iou, 4),
        load_s=round(load_s, 3),
        embed_s=round(embed_s, 3),
        decode_s=round(decode_s, 3),
    )


def check_language(
    spec: LanguageSpec,
    loaded: LoadedLanguageTeacher,
    view: Views,
    text: str,
    device: torch.device,
    load_s: float,
) -> LanguageCheck:
    """Dense features of ``view``'s first image by ``spec``'s loaded language teacher
    (``load_s`` seconds to load), compared with its text tower's embedding of ``text``."""
    images = view.images[:1].to(device)
    with torch.inference_mode():
        features, embed_s = _timed(lambda: loaded.teacher.embed(images), device)
        embedding, text_s = _timed(lambda: loaded.text_encoder.encode([text]), device)
    if embedding.shape[-1] != features.shape[1]:
        raise ValueError(
            f"language teacher {spec.to_string()!r}: {features.shape[1]}-d features but "
            f"{embedding.shape[-1]}-d text embeddings"
        )
    dense = F.interpolate(features.float(), images.shape[-2:], mode="bilinear")
    cosine = torch.einsum(
        "nchw,c->nhw", F.normalize(dense, dim=1), embedding[0].to(dense.device, dense.dtype)
    )[0]
    inside = outside = None
    class_id = CLASS_ID.get(text.strip().lower())
    if class_id is not None and view.labels is not None:
        truth = (view.labels[0] == class_id).to(cosine.device)
        if bool(truth.any()) and not bool(truth.all()):
            inside = round(float(cosine[truth].mean()), 4)
            outside = round(float(cosine[~truth].mean()), 4)
    return LanguageCheck(
        spec=spec.to_string(),
        kind=spec.kind,
        features_shape=_shape(features),
        text=text,
        text_embedding_shape=_shape(embedding),
        cosine_range=[round(float(cosine.min()), 4), round(float(cosine.max()), 4)],
        cosine_inside=inside,
        cosine_outside=outside,
        load_s=round(load_s, 3),
        embed_s=round(embed_s, 3),
        text_s=round(text_s, 3),
    )


def check_teachers(
    sam: SamSpec | str,
    language: LanguageSpec | str,
    *,
    text: str = "floor",
    seed: int = 0,
    height: int = 240,
    width: int = 320,
    device: str = "auto",
) -> TeacherCheck:
    """Both checks on view 0 of synthetic scene ``seed`` (``height`` × ``width`` pixels).

    Raises FileNotFoundError / ValueError (one line naming the file) for a missing, corrupt or
    mismatched weights file, ValueError / TypeError for bad specs or arguments.
    """
    sam_spec = sam if isinstance(sam, SamSpec) else SamSpec.parse(sam)
    language_spec = language if isinstance(language, LanguageSpec) else LanguageSpec.parse(language)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the query text must be a non-empty string")
    torch_device = resolve_device(device)
    # Both load before either runs: a bad file fails in seconds, not after a ViT-H forward.
    sam_teacher, sam_load_s = _timed(lambda: load_sam_teacher(sam_spec, torch_device), torch_device)
    language_teacher, language_load_s = _timed(
        lambda: load_language_teacher(language_spec, torch_device), torch_device
    )
    view = make_example(seed, height, width, num_context=1, num_target=0).context
    return TeacherCheck(
        view=ViewInfo(seed, height, width, str(torch_device)),
        sam=check_sam(sam_spec, sam_teacher, view, torch_device, sam_load_s),
        language=check_language(
            language_spec, language_teacher, view, text, torch_device, language_load_s
        ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sam", default="tiny", help=f"SAM teacher: {SAM_SPEC_FORMS}")
    parser.add_argument(
        "--language", default="tiny_lseg", help=f"language teacher: {LANGUAGE_SPEC_FORMS}"
    )
    parser.add_argument("--text", default="floor", help="the word of the text query")
    parser.add_argument("--seed", type=int, default=0, help="synthetic scene of the view")
    parser.add_argument("--height", type=int, default=240, help="view rows in pixels")
    parser.add_argument("--width", type=int, default=320, help="view columns in pixels")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:<index>")


def run(args: argparse.Namespace) -> int:
    try:
        result = check_teachers(
            args.sam,
            args.language,
            text=args.text,
            seed=args.seed,
            height=args.height,
            width=args.width,
            device=args.device,
        )
    except (FileNotFoundError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2
    sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
    return 0


__all__ = [
    "LanguageCheck",
    "SamCheck",
    "TeacherCheck",
    "ViewInfo",
    "check_language",
    "check_sam",
    "check_teachers",
]
