"""Teacher features of a ScanNet-layout dataset, computed once per frame and cached on disk.

``semanticsplat cache-teachers --data DIR`` (``cache_command.py``) writes, under ``--out``::

    manifest.json            format, version, teacher record (``spec.spec_to_checkpoint_dict``),
                             height, width, hcam_points_per_side, frames_per_shard, and per
                             scene its frame stems and the shape of every stored field
    <scene>/<k>.pt           shard k of a scene: frames [k·F, (k+1)·F) of its frame list (F =
                             frames_per_shard), {"sam", "lang", "small", "medium", "large"}

Per frame, at the training resolution ``height`` × ``width`` (the views ``ScanNetDataset``
loads): SAM's image embedding and the language teacher's dense features in float16, and SAM's
automatic small / medium / large segment ids (int16, -1 = none) for HCAM pooling. Shards are
written atomically (temporary file, then rename), so an interrupted run resumes at the first
missing shard; a cache of other teachers, another resolution or another frame list is refused.

``CachedTeacherDataset`` wraps the trainer's ``ScanNetDataset``: its examples are the dataset's
own, each carrying the cached features of its context and target views (``CachedExample``), so
the distillation losses read them instead of running the teachers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from semanticsplat_ros.data.scannet import ScanNetDataset, ScanNetScene
from semanticsplat_ros.data.types import Example, collate
from semanticsplat_ros.teachers.base import Teacher
from semanticsplat_ros.teachers.sam import MaskGenerationConfig, SamTeacher
from semanticsplat_ros.teachers.spec import check_checkpoint_teachers

FRAME_CACHE_FORMAT = "semanticsplat-teacher-frame-cache"
FRAME_CACHE_VERSION = 1
FIELDS = ("sam", "lang", "small", "medium", "large")
"""The stored fields of a frame (``TeacherFeatures``' fields)."""
FIELD_BYTES = {"sam": 2, "lang": 2, "small": 2, "medium": 2, "large": 2}
"""Bytes per element on disk: float16 features, int16 segment ids."""


@dataclass
class TeacherFeatures:
    """Teacher outputs for v views (the distillation targets)."""

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


def _shards(num_frames: int, per_shard: int) -> range:
    return range((num_frames + per_shard - 1) // per_shard)


@torch.no_grad()
def frame_features(
    images: Tensor, sam: SamTeacher, language: Teacher, hcam_points_per_side: int
) -> dict[str, Tensor]:
    """The stored fields of views ``images`` (n, 3, H, W): float16 features, int16 ids."""
    sam.generation = MaskGenerationConfig(points_per_side=hcam_points_per_side)
    embedding = sam.embed(images)
    masks = sam.hierarchical_masks(embedding, image_size=tuple(images.shape[-2:]))
    out = {"sam": embedding.half().cpu(), "lang": language.embed(images).half().cpu()}
    for name, ids in zip(("small", "medium", "large"), masks.levels(), strict=True):
        if int(ids.max()) >= 2**15:
            raise ValueError(f"{int(ids.max()) + 1} segments do not fit the cache's int16 ids")
        out[name] = ids.to(torch.int16).cpu()
    return out


@dataclass
class FrameCachePlan:
    """What a cache of a dataset holds (the manifest) and which shards are still missing."""

    root: Path
    manifest: dict[str, Any]
    missing: list[tuple[str, int]]
    """(scene, shard index) pairs not yet on disk, in writing order."""

    @property
    def total_bytes(self) -> int:
        """Size of the complete cache's tensors (the files add a few kB each)."""
        per_frame = sum(
            FIELD_BYTES[k] * int(np.prod(shape)) for k, shape in self.manifest["shapes"].items()
        )
        return per_frame * sum(len(s) for s in self.manifest["scenes"].values())


def plan_frame_cache(
    scenes: Sequence[ScanNetScene],
    out: str | Path,
    teachers: dict[str, Any],
    shapes: dict[str, list[int]],
    height: int,
    width: int,
    hcam_points_per_side: int = 8,
    frames_per_shard: int = 64,
) -> FrameCachePlan:
    """The manifest of a cache of ``scenes`` and its missing shards; ValueError if ``out``
    holds a cache of other teachers, resolution, mask grid or frames.

    teachers: the ``spec_to_checkpoint_dict`` record; shapes: per field the per-frame shape.
    """
    if frames_per_shard < 1 or hcam_points_per_side < 1:
        raise ValueError("frames_per_shard and hcam_points_per_side must be >= 1")
    root = Path(out)
    manifest = {
        "format": FRAME_CACHE_FORMAT,
        "version": FRAME_CACHE_VERSION,
        "teachers": teachers,
        "height": height,
        "width": width,
        "hcam_points_per_side": hcam_points_per_side,
        "frames_per_shard": frames_per_shard,
        "shapes": shapes,
        "scenes": {s.name: [f.stem for f in s.color_files] for s in scenes},
    }
    path = root / "manifest.json"
    if path.is_file():
        old = _read_manifest(path)
        for key in ("teachers", "height", "width", "hcam_points_per_side", "frames_per_shard"):
            if old.get(key) != manifest[key]:
                raise ValueError(
                    f"{root} holds a teacher cache with {key} {old.get(key)!r}, not "
                    f"{manifest[key]!r}: give another --out or delete it"
                )
        if old.get("scenes") != manifest["scenes"]:
            raise ValueError(f"{root} holds a teacher cache of other scenes or frames")
    missing = [
        (name, k)
        for name, stems in manifest["scenes"].items()
        for k in _shards(len(stems), frames_per_shard)
        if not (root / name / f"{k:05d}.pt").is_file()
    ]
    return FrameCachePlan(root, manifest, missing)


def write_frame_cache(
    plan: FrameCachePlan,
    scenes: Sequence[ScanNetScene],
    sam: SamTeacher,
    language: Teacher,
    device: torch.device,
    batch_size: int = 8,
    progress: bool = True,
    max_shards: int | None = None,
) -> int:
    """Compute and write ``plan``'s missing shards (at most ``max_shards``); returns how many.

    The manifest is written first, so a partial cache is recognised and resumed later.
    """
    m = plan.manifest
    plan.root.mkdir(parents=True, exist_ok=True)
    (plan.root / "manifest.json").write_text(json.dumps(m, indent=1))
    by_name = {s.name: s for s in scenes}
    todo = plan.missing if max_shards is None else plan.missing[:max_shards]
    per_shard = m["frames_per_shard"]
    bar = tqdm(total=len(todo), desc="teacher shards", disable=not progress, file=sys.stderr)
    try:
        for name, k in todo:
            scene = by_name[name]
            frames = list(range(k * per_shard, min((k + 1) * per_shard, len(scene))))
            parts: dict[str, list[Tensor]] = {f: [] for f in FIELDS}
            for start in range(0, len(frames), batch_size):
                views = scene.load_views(
                    frames[start : start + batch_size], m["height"], m["width"]
                )
                got = frame_features(
                    views.images.to(device), sam, language, m["hcam_points_per_side"]
                )
                for f in FIELDS:
                    parts[f].append(got[f])
            shard = {f: torch.cat(v) for f, v in parts.items()}
            for f in FIELDS:
                if list(shard[f].shape[1:]) != m["shapes"][f]:
                    raise ValueError(
                        f"teacher field {f} of {name} has shape {list(shard[f].shape[1:])}, "
                        f"the manifest says {m['shapes'][f]}"
                    )
            file = plan.root / name / f"{k:05d}.pt"
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_name(file.name + ".tmp")
            torch.save(shard, tmp)
            tmp.replace(file)
            bar.update(1)
    finally:
        bar.close()
    return len(todo)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"teacher cache manifest {path} is unreadable: {exc}") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FRAME_CACHE_FORMAT
        or manifest.get("version") != FRAME_CACHE_VERSION
    ):
        raise ValueError(f"{path} is not a version {FRAME_CACHE_VERSION} teacher frame cache")
    return manifest


class FrameFeatureCache:
    """Read access to a complete cache written by ``write_frame_cache`` (shards kept in memory
    once read: a few MB each)."""

    def __init__(self, root: str | Path, max_open_shards: int = 8) -> None:
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no teacher cache at {self.root} (no manifest.json)")
        self.manifest = _read_manifest(path)
        self.per_shard = int(self.manifest["frames_per_shard"])
        self.index = {
            (scene, stem): i
            for scene, stems in self.manifest["scenes"].items()
            for i, stem in enumerate(stems)
        }
        missing = [
            f"{scene}/{k:05d}.pt"
            for scene, stems in self.manifest["scenes"].items()
            for k in _shards(len(stems), self.per_shard)
            if not (self.root / scene / f"{k:05d}.pt").is_file()
        ]
        if missing:
            raise ValueError(
                f"teacher cache {self.root} is incomplete ({len(missing)} shards missing, e.g. "
                f"{missing[0]}): run semanticsplat cache-teachers again to finish it"
            )
        self.max_open_shards = max_open_shards
        self._shards: dict[tuple[str, int], dict[str, Tensor]] = {}

    def check(
        self,
        teachers: dict[str, Any],
        height: int,
        width: int,
        hcam_points_per_side: int | None = None,
    ) -> None:
        """ValueError unless the cache was made by ``teachers`` at this resolution and (unless
        None: HCAM off) with this point grid of SAM's automatic masks."""
        check_checkpoint_teachers(
            self.manifest.get("teachers"), teachers, f"teacher cache {self.root}"
        )
        m = self.manifest
        if (m["height"], m["width"]) != (height, width):
            raise ValueError(
                f"teacher cache {self.root} is at {m['height']}x{m['width']} (HxW), training at "
                f"{height}x{width}"
            )
        if hcam_points_per_side is not None and m["hcam_points_per_side"] != hcam_points_per_side:
            raise ValueError(
                f"teacher cache {self.root} has HCAM masks of a {m['hcam_points_per_side']}² "
                f"point grid, the loss asks for {hcam_points_per_side}²"
            )

    def _shard(self, scene: str, k: int) -> dict[str, Tensor]:
        key = (scene, k)
        if key not in self._shards:
            if len(self._shards) >= self.max_open_shards:
                self._shards.pop(next(iter(self._shards)))
            file = self.root / scene / f"{k:05d}.pt"
            try:
                self._shards[key] = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # truncated / garbage files raise many types
                raise ValueError(f"teacher cache shard {file} is corrupt: {exc}") from exc
        return self._shards[key]

    def features(self, scene: str, stems: Sequence[str]) -> TeacherFeatures:
        """The cached features of frames ``stems`` of ``scene`` (float32 features, int64 ids)."""
        rows: dict[str, list[Tensor]] = {f: [] for f in FIELDS}
        for stem in stems:
            i = self.index.get((scene, stem))
            if i is None:
                raise ValueError(f"teacher cache {self.root} has no frame {stem} of {scene}")
            shard = self._shard(scene, i // self.per_shard)
            for f in FIELDS:
                rows[f].append(shard[f][i % self.per_shard])
        stacked = {f: torch.stack(v) for f, v in rows.items()}
        return TeacherFeatures(
            stacked["sam"].float(),
            stacked["lang"].float(),
            *(stacked[k].long() for k in ("small", "medium", "large")),
        )


@dataclass
class CachedExample(Example):
    """An example with the cached teacher features of its views (batched by ``collate_cached``:
    every tensor then has a leading batch dimension)."""

    context_features: TeacherFeatures | None = None
    target_features: TeacherFeatures | None = None

    def to(self, device: torch.device | str) -> CachedExample:
        return CachedExample(
            self.context.to(device),
            self.target.to(device),
            self.scene_id,
            _features_to(self.context_features, device),
            _features_to(self.target_features, device),
        )


def _features_to(f: TeacherFeatures | None, device: torch.device | str) -> TeacherFeatures | None:
    if f is None:
        return None
    return replace(f, **{x.name: getattr(f, x.name).to(device) for x in fields(f)})


def _stack_features(items: list[TeacherFeatures]) -> TeacherFeatures:
    return TeacherFeatures(
        **{x.name: torch.stack([getattr(i, x.name) for i in items]) for x in fields(items[0])}
    )


def collate_cached(examples: list[CachedExample]) -> CachedExample:
    """``data.types.collate`` keeping the teacher features (a DataLoader collate_fn)."""
    base = collate(examples)
    return CachedExample(
        base.context,
        base.target,
        base.scene_id,
        _stack_features([e.context_features for e in examples]),
        _stack_features([e.target_features for e in examples]),
    )


class CachedTeacherDataset(Dataset):
    """``dataset``'s examples with their views' cached teacher features (``CachedExample``)."""

    collate_fn = staticmethod(collate_cached)

    def __init__(self, dataset: ScanNetDataset, cache: FrameFeatureCache) -> None:
        if (dataset.height, dataset.width) != (cache.manifest["height"], cache.manifest["width"]):
            raise ValueError(
                f"teacher cache {cache.root} is at {cache.manifest['height']}x"
                f"{cache.manifest['width']}, the dataset at {dataset.height}x{dataset.width}"
            )
        self.dataset = dataset
        self.cache = cache

    def __len__(self) -> int:
        return len(self.dataset)

    def frames_of(self, i: int) -> tuple[ScanNetScene, list[int], list[int]]:
        """Scene and (context, target) frame indices of example ``i``: ``ScanNetDataset``'s own
        draw (seeded by (seed, i))."""
        d = self.dataset
        scene = d.scenes[i // d.examples_per_scene]
        context, targets = d.sample_frames(scene, np.random.default_rng([d.seed, i]))
        return scene, context, targets

    def __getitem__(self, i: int) -> CachedExample:
        example = self.dataset[i]
        scene, context, targets = self.frames_of(i)
        # The draw must be the one the dataset made: its poses say which frames it loaded.
        if not torch.equal(example.context.c2w, scene.c2w[context]):
            raise RuntimeError(f"example {i}: cached frame lookup disagrees with the dataset")
        stems = [scene.color_files[k].stem for k in context + targets]
        features = self.cache.features(scene.name, stems)
        nc = len(context)
        return CachedExample(
            example.context,
            example.target,
            example.scene_id,
            _index(features, slice(0, nc)),
            _index(features, slice(nc, None)),
        )


def _index(f: TeacherFeatures, rows: slice) -> TeacherFeatures:
    return TeacherFeatures(**{x.name: getattr(f, x.name)[rows] for x in fields(f)})


def iter_scenes(root: str | Path) -> Iterator[ScanNetScene]:
    """The scenes of a ScanNet-layout folder as the trainer reads them (invalid poses skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"missing dataset folder: {root}")
    names = sorted(p.name for p in root.iterdir() if (p / "color").is_dir())
    if not names:
        raise ValueError(f"{root}: no scene folders (sub-folders with color/)")
    for name in names:
        yield ScanNetScene(root / name, skip_invalid_poses=True)


__all__ = [
    "CachedExample",
    "CachedTeacherDataset",
    "FrameCachePlan",
    "FrameFeatureCache",
    "collate_cached",
    "frame_features",
    "iter_scenes",
    "plan_frame_cache",
    "write_frame_cache",
]
