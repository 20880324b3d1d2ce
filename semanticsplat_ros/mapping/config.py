"""The map's configuration and identity, and what a voxel costs in memory."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DeviceName = str
"""``cpu``, ``cuda`` or ``cuda:<index>``: where the map's arrays live."""


@dataclass(frozen=True)
class MapConfig:
    """How scenes are fused into the map. Validated once, on construction (ValueError)."""

    voxel_size: float = 0.05
    """Edge of a voxel, metres."""
    max_voxels: int = 200_000
    """Hard bound on the number of voxels; past it the oldest voxels go first, and among equally
    old ones those farthest from the latest cameras (``bytes_per_voxel`` gives the memory)."""
    max_range_m: float = 6.0
    """Pixels farther than this (z-depth, metres) are neither fused nor carve voxels beyond it."""
    min_opacity: float = 0.05
    """Pixels whose Gaussian is fainter than this are not fused (they still carve free space)."""
    carve: bool = True
    """Free-space carving: a voxel that a camera's ray passes well before the ray's measured
    depth loses evidence, and goes once it has none."""
    carve_margin_voxels: float = 1.0
    """A voxel is seen through only when it lies at least this many voxels in front of the
    measured depth along its ray (so a surface's own voxels survive depth quantisation)."""
    carve_depth_fraction: float = 0.01
    """... and at least this fraction of the measured depth in front of it (predicted depth is
    less accurate far away). Predicted depth noise beyond the margin is absorbed by the
    evidence count: a surface observed in most scenes keeps its evidence."""
    max_evidence: int = 8
    """Evidence of a voxel: +1 per scene that puts points in it, -1 per scene that sees
    through it, at most this; at 0 the voxel is removed. A long-observed voxel therefore
    survives ``max_evidence - 1`` scenes that see through it and goes at the next."""
    max_weight: int = 10
    """Running means (position, colour, opacity, language, class histogram) weigh the newest
    observation at least 1 / (max_weight + 1), so a voxel whose content changes (an object
    moved into it) takes its new label within about ``max_weight / 2`` observations."""
    min_instance_voxels: int = 3
    """Connected components with fewer voxels are not returned as instances by queries."""
    point_radius_voxels: float = 2.0
    """``segment_point`` answers with the voxel nearest the point within this many voxels."""
    device: DeviceName = "cpu"
    """Where the map's arrays live and fusion runs (scenes are moved there)."""

    def __post_init__(self) -> None:
        positive = {
            "voxel_size": self.voxel_size,
            "max_range_m": self.max_range_m,
            "carve_margin_voxels": self.carve_margin_voxels,
            "point_radius_voxels": self.point_radius_voxels,
        }
        for name, value in positive.items():
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"MapConfig.{name} must be a finite number > 0, got {value!r}")
        minimum = {"max_voxels": 1, "max_evidence": 1, "max_weight": 1, "min_instance_voxels": 1}
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"MapConfig.{name} must be an int >= {low}, got {value!r}")
        if not 0.0 <= self.min_opacity < 1.0:
            raise ValueError(f"MapConfig.min_opacity must be in [0, 1), got {self.min_opacity}")
        if not 0.0 <= self.carve_depth_fraction < 1.0:
            raise ValueError(
                f"MapConfig.carve_depth_fraction must be in [0, 1), got {self.carve_depth_fraction}"
            )
        if not isinstance(self.carve, bool):
            raise ValueError(f"MapConfig.carve must be a bool, got {self.carve!r}")
        if self.max_evidence > 32_000 or self.max_weight > 1_000_000:
            raise ValueError("MapConfig.max_evidence must be <= 32000 and max_weight <= 1e6")
        device = self.device
        if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
            raise ValueError(f"MapConfig.device must be cpu, cuda or cuda:<n>, got {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"MapConfig.device is {device!r} but CUDA is not available")


@dataclass(frozen=True)
class MapIdentity:
    """What produced a map's features. A saved map loads only into a map of the same identity."""

    model: str
    """The caller's name for the model whose features the map holds (e.g. the checkpoint's file
    name or hash); "" when unknown."""
    text_encoder: str
    """Name of the text encoder whose space the language features live in (e.g. ``minilm``)."""
    feature_dim: int
    """Width of the language features (the text encoder's width), channels."""
    seg_dim: int = 0
    """Width of the stored segmentation features: the model's low-dimensional segmentation
    latent (``EncodedScene.seg_features``, which the model's decoder expands), channels."""
    language_dim: int = 0
    """Width of the stored language features: the model's low-dimensional language latent
    (``EncodedScene.lang_features``), which the map expands to ``feature_dim`` with the model's
    expander when a query needs it. 0 (resolved to ``feature_dim``): the Gaussians' language
    channels are already in the text encoder's space and are stored as they are."""

    def __post_init__(self) -> None:
        for name in ("model", "text_encoder"):
            value = getattr(self, name)
            if not isinstance(value, str) or any(ch in value for ch in "\r\n"):
                raise ValueError(f"MapIdentity.{name} must be a one-line string, got {value!r}")
        dim = self.feature_dim
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 65_536:
            raise ValueError(f"MapIdentity.feature_dim must be an int in [1, 65536], got {dim!r}")
        for name in ("seg_dim", "language_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4096:
                raise ValueError(f"MapIdentity.{name} must be an int in [0, 4096], got {value!r}")
        if self.language_dim == 0:
            object.__setattr__(self, "language_dim", dim)

    def describe(self) -> str:
        """One line naming the model, text encoder and feature width (for messages)."""
        return (
            f"model {self.model or '(unnamed)'!r}, text encoder {self.text_encoder!r}, "
            f"{self.feature_dim}-d language ({self.language_dim}-d stored) and "
            f"{self.seg_dim}-d segmentation features"
        )


def bytes_per_voxel(language_dim: int, num_classes: int, seg_dim: int = 0) -> int:
    """Bytes one voxel holds: key 8, position 12, colour 12, opacity 4, stored language and
    segmentation features 2 per channel (fp16), class histogram 4 per class, observation count
    4, evidence 2, last-seen stamp 8, and 12 in the sorted key index (key 8 + slot 4). The
    bundled models' 16-d language and 16-d segmentation latents with 8 classes: 158 bytes, so
    200,000 voxels hold about 32 MB."""
    if language_dim < 0 or num_classes < 0 or seg_dim < 0:
        raise ValueError("language_dim, num_classes and seg_dim must be >= 0")
    return 8 + 12 + 12 + 4 + 2 * (language_dim + seg_dim) + 4 * num_classes + 4 + 2 + 8 + 12
