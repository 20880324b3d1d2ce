"""Precomputed teacher features (the distillation targets), cached on disk, one file per example.

Layout of ``out_dir``: ``manifest.json`` (what was computed, by which teachers) and
``000000.pt``... each holding {"context"|"target": {"sam", "lang", "small", "medium", "large"}}
with features in float16 and segment ids in int32. Computation resumes where it stopped; a cache
made by other teachers or for another dataset is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from semanticsplat_ros.teachers.lseg import LanguageTeacher
from semanticsplat_ros.teachers.sam import SamTeacher

CACHE_FORMAT = "semanticsplat-teacher-cache"
CACHE_VERSION = 1


@dataclass
class TeacherFeatures:
    """Teacher outputs for v views."""

    sam: Float[Tensor, "v 256 hs ws"]
    """SAM image embeddings."""
    lang: Float[Tensor, "v d hl wl"]
    """Unit-norm language features."""
    small: Int[Tensor, "v h w"]
    """Automatic small segments (-1 = none), for hierarchical context-aware pooling."""
    medium: Int[Tensor, "v h w"]
    """Automatic medium segments."""
    large: Int[Tensor, "v h w"]
    """Automatic large segments."""


@torch.no_grad()
def compute_teacher_features(
    images: Float[Tensor, "v 3 h w"], sam_teacher: SamTeacher, lang_teacher: LanguageTeacher
) -> TeacherFeatures:
    """All distillation targets of one set of views."""
    sam = sam_teacher.embed(images)
    masks = sam_teacher.hierarchical_masks(sam, image_size=tuple(images.shape[-2:]))
    return TeacherFeatures(sam, lang_teacher.embed(images), *masks.levels())


def _pack(f: TeacherFeatures) -> dict[str, Tensor]:
    return {
        "sam": f.sam.half().cpu(),
        "lang": f.lang.half().cpu(),
        "small": f.small.int().cpu(),
        "medium": f.medium.int().cpu(),
        "large": f.large.int().cpu(),
    }


def _unpack(d: dict[str, Tensor]) -> TeacherFeatures:
    return TeacherFeatures(
        d["sam"].float(),
        d["lang"].float(),
        d["small"].long(),
        d["medium"].long(),
        d["large"].long(),
    )


def precompute_teacher_features(
    dataset: Dataset,
    sam_teacher: SamTeacher,
    lang_teacher: LanguageTeacher,
    out_dir: str | Path,
    dataset_id: str,
    teachers_id: str,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Compute and store the teacher features of every example (context and target views).

    dataset_id / teachers_id identify the data and the teachers (e.g. "synthetic:0:1000@64x64",
    "tiny_sam.pt+tiny_lseg.pt"); an existing cache with other ids raises ValueError.
    """
    out = Path(out_dir)
    manifest = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "dataset": dataset_id,
        "teachers": teachers_id,
        "num_examples": len(dataset),
    }
    path = out / "manifest.json"
    if path.is_file() and not overwrite:
        old = json.loads(path.read_text())
        if old != manifest:
            raise ValueError(
                f"{out} holds a cache for {old.get('dataset')!r} / {old.get('teachers')!r}; "
                f"asked for {dataset_id!r} / {teachers_id!r} (pass overwrite=True to replace it)"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2))
    for i in tqdm(range(len(dataset)), desc="teacher features", disable=not progress):
        file = out / f"{i:06d}.pt"
        if file.is_file() and not overwrite:
            continue
        example = dataset[i]
        item = {}
        for name in ("context", "target"):
            views = getattr(example, name)
            if views.num_views > 0:
                item[name] = _pack(
                    compute_teacher_features(views.images, sam_teacher, lang_teacher)
                )
        tmp = file.with_suffix(".tmp")
        torch.save(item, tmp)
        tmp.replace(file)
    return out


class TeacherFeatureCache:
    """Read access to a cache written by ``precompute_teacher_features``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no teacher feature cache at {self.root} (no manifest.json)")
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"corrupt teacher cache manifest {path}: {exc}") from exc
        if (
            self.manifest.get("format") != CACHE_FORMAT
            or self.manifest.get("version") != CACHE_VERSION
        ):
            raise ValueError(f"{path} is not a version {CACHE_VERSION} teacher feature cache")

    def __len__(self) -> int:
        return int(self.manifest["num_examples"])

    def __getitem__(self, i: int) -> dict[str, TeacherFeatures]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} cached examples")
        file = self.root / f"{i:06d}.pt"
        if not file.is_file():
            raise FileNotFoundError(f"example {i} is missing from the cache {self.root}")
        data = torch.load(file, map_location="cpu", weights_only=True)
        return {name: _unpack(d) for name, d in data.items()}
