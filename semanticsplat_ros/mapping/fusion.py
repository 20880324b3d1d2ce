"""One scene's contribution to the map: its pixels averaged per voxel, and the voxels its
cameras see through (free-space carving). Pure tensor code on the map's device.

Carving is done per voxel rather than by marching along every ray: each live voxel's mean
position is projected into every camera, and the voxel is seen through when the camera's
measured depth on that pixel lies well beyond it (``MapConfig.carve_margin_voxels`` and
``carve_depth_fraction``). That is the ray test for the ray through the voxel, exact for every
voxel in the frustum (no ray subsampling, no gaps between rays far from the camera), and costs
one projection per voxel and camera. The measured depth is the nearest of the 2x2 pixels
around the projection, so a voxel on an object's silhouette, whose own pixel may see the
background behind, is not carved; and the voxel's mean position (on the surface) is projected rather
than its centre, so surfaces seen at grazing angles are not carved by their own rays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.geometry import invert_pose, project, transform_points, unproject_depth
from semanticsplat_ros.mapping.config import MapConfig, MapIdentity
from semanticsplat_ros.mapping.voxels import COORD_LIMIT, pack_keys
from semanticsplat_ros.queries import TEMPERATURE
from semanticsplat_ros.render.types import Gaussians


class SceneLike(Protocol):
    """What ``SemanticMap.fuse`` reads from a scene: ``pipeline.EncodedScene`` has all of it.
    v views of h x w pixels (the model's input resolution), c language channels, k classes."""

    stamp: float
    """Acquisition time, seconds."""
    images: Float[Tensor, "v 3 h w"]
    """RGB in [0, 1]."""
    K: Float[Tensor, "v 3 3"]
    """Intrinsics in pixels of (h, w), pixel centres at +0.5."""
    c2w: Float[Tensor, "v 4 4"]
    """Camera-to-fixed-frame poses, OpenCV camera axes, metres."""
    depth: Float[Tensor, "v h w"]
    """z-depth, metres; <= 0 where there is none."""
    labels: Tensor
    """(v, h, w) int64 class ids into ``classes``."""
    class_cosine: Tensor | None
    """(v, k, h, w) cosine of each pixel's language feature with each class's text, or None."""
    classes: tuple[str, ...]
    gaussians: Gaussians
    """Batch 1; one Gaussian per pixel (view-major, row-major) gives each pixel's opacity, its
    segmentation latent (the leading ``seg_dim`` feature channels) and its language latent
    (the ``MapIdentity.language_dim`` channels after them)."""
    seg_dim: int


@dataclass
class Observation:
    """A scene's pixels averaged per voxel (m voxels, sorted by key)."""

    keys: Int[Tensor, " m"]
    position: Float[Tensor, "m 3"]
    color: Float[Tensor, "m 3"]
    opacity: Float[Tensor, " m"]
    language: Float[Tensor, "m l"]
    """Mean of the pixels' language latents (float32)."""
    segmentation: Float[Tensor, "m d"]
    """Mean of the pixels' segmentation latents (float32)."""
    class_hist: Float[Tensor, "m k"]
    """Mean of the pixels' class probabilities."""
    camera_centres: Float[Tensor, "v 3"]


def check_scene(scene: SceneLike) -> tuple[int, int, int, int]:
    """(v, h, w, k) of a scene, or ValueError/TypeError naming what is malformed."""
    for name in ("images", "K", "c2w", "depth", "labels"):
        if not isinstance(getattr(scene, name, None), Tensor):
            raise TypeError(f"scene.{name} must be a torch.Tensor")
    if scene.depth.ndim != 3:
        raise ValueError(f"scene.depth must be (v, h, w), got {tuple(scene.depth.shape)}")
    v, h, w = scene.depth.shape
    k = len(scene.classes)
    expected = {
        "images": (v, 3, h, w),
        "K": (v, 3, 3),
        "c2w": (v, 4, 4),
        "labels": (v, h, w),
    }
    if scene.class_cosine is not None:
        expected["class_cosine"] = (v, k, h, w)
    for name, shape in expected.items():
        got = tuple(getattr(scene, name).shape)
        if got != shape:
            raise ValueError(f"scene.{name} must have shape {shape}, got {got}")
    if k == 0:
        raise ValueError("scene.classes is empty")
    return v, h, w, k


def _pixel_opacity(scene: SceneLike, v: int, h: int, w: int) -> Tensor:
    """(v, h, w) opacity of each pixel's Gaussian; ones when the Gaussians are not one per
    pixel (then only depth and range select pixels)."""
    opacities = getattr(scene.gaussians, "opacities", None)
    if isinstance(opacities, Tensor) and opacities.numel() == v * h * w:
        return opacities.reshape(v, h, w)
    return torch.ones(v, h, w, device=scene.depth.device)


def _pixel_latents(
    scene: SceneLike, v: int, h: int, w: int, identity: MapIdentity
) -> tuple[Tensor, Tensor]:
    """(v, h, w, d) segmentation and (v, h, w, l) language latents of each pixel's Gaussian
    (ValueError unless the scene's seg_dim is the map's and its Gaussians are one per pixel
    with the map's d + l feature channels)."""
    d, lang = identity.seg_dim, identity.language_dim
    if int(scene.seg_dim) != d:
        raise ValueError(f"scene.seg_dim is {scene.seg_dim}; the map stores {d}-d segmentation")
    features = scene.gaussians.features
    if features.ndim != 3 or features.shape[1] != v * h * w or features.shape[2] != d + lang:
        raise ValueError(
            f"scene.gaussians.features must be (1, {v * h * w}, {d} + {lang}) to give each "
            f"pixel its segmentation and language latents, got {tuple(features.shape)}"
        )
    grid = features[0].reshape(v, h, w, d + lang)
    return grid[..., :d], grid[..., d:]


def _class_probabilities(scene: SceneLike, k: int) -> Tensor:
    """(v, k, h, w) per-pixel class probabilities: the pipeline's softmax of the class cosines
    (``queries.classify_cosine``), or one-hot labels when the scene has no cosines."""
    if scene.class_cosine is not None:
        return (scene.class_cosine.float() / TEMPERATURE).softmax(dim=1)
    labels = scene.labels.clamp(0, k - 1)
    return F.one_hot(labels, k).permute(0, 3, 1, 2).float()


def observe(
    scene: SceneLike, config: MapConfig, identity: MapIdentity, device: torch.device
) -> Observation:
    """Average the scene's valid pixels per voxel (ValueError on a malformed scene). Valid:
    depth in (0, max_range_m], a finite point, Gaussian opacity >= min_opacity, voxel
    coordinates within ``COORD_LIMIT``."""
    v, h, w, k = check_scene(scene)
    segmentation, language = _pixel_latents(scene, v, h, w, identity)
    depth = scene.depth.to(device, torch.float32)
    K = scene.K.to(device, torch.float32)
    c2w = scene.c2w.to(device, torch.float32)
    opacity = _pixel_opacity(scene, v, h, w).to(device, torch.float32)
    points = unproject_depth(depth, K, c2w)  # (v, h, w, 3)
    valid = (depth > 0) & (depth <= config.max_range_m) & (opacity >= config.min_opacity)
    valid &= torch.isfinite(points).all(dim=-1)
    coords = torch.floor(points / config.voxel_size)
    valid &= (coords.abs() <= COORD_LIMIT).all(dim=-1)
    keys_px = pack_keys(coords[valid].to(torch.int64))
    keys, inverse = torch.unique(keys_px, sorted=True, return_inverse=True)
    m = keys.shape[0]
    counts = torch.bincount(inverse, minlength=m).float()

    def mean(values: Tensor) -> Tensor:
        out = torch.zeros(m, *values.shape[1:], device=device, dtype=torch.float32)
        out.index_add_(0, inverse, values.float())
        return out / counts.reshape(-1, *([1] * (values.ndim - 1)))

    probs = _class_probabilities(scene, k).to(device).permute(0, 2, 3, 1)
    return Observation(
        keys=keys,
        position=mean(points[valid]),
        color=mean(scene.images.to(device).permute(0, 2, 3, 1)[valid]).clamp(0, 1),
        opacity=mean(opacity[valid]),
        language=mean(language.to(device)[valid]),
        segmentation=mean(segmentation.to(device)[valid]),
        class_hist=mean(probs[valid]),
        camera_centres=c2w[:, :3, 3].clone(),
    )


def seen_through(
    position: Float[Tensor, "n 3"], scene: SceneLike, config: MapConfig
) -> torch.Tensor:
    """(n,) bool: voxels (mean positions, fixed frame) that some camera of the scene sees
    through: in its image, in front of it within ``max_range_m``, and in front of the measured
    depth by at least the carving margin (see the module docstring)."""
    device = position.device
    n = position.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=device)
    depth = scene.depth.to(device, torch.float32)
    v, h, w = depth.shape
    K = scene.K.to(device, torch.float32)
    w2c = invert_pose(scene.c2w.to(device, torch.float32))
    # The nearest of the 2x2 pixels whose centres surround a projection (a missing depth, 0,
    # among them vetoes carving): a voxel just beside a silhouette is not carved by the
    # background seen past the silhouette. ``nearest[i, r0 + 1, u0 + 1]`` is that minimum for
    # the window whose top-left pixel is (r0, u0), r0 in [-1, h - 1] (edges replicated).
    padded = F.pad(depth[:, None], (1, 1, 1, 1), mode="replicate")
    nearest = -F.max_pool2d(-padded, kernel_size=2, stride=1)[:, 0]  # (v, h + 1, w + 1)
    missed = torch.zeros(n, dtype=torch.bool, device=device)
    for i in range(v):  # a handful of cameras; each step is vectorised over all voxels
        uv, z = project(transform_points(w2c[i], position), K[i])
        u, r = uv[:, 0], uv[:, 1]
        inside = (z > 0) & (z <= config.max_range_m) & (u >= 0) & (u < w) & (r >= 0) & (r < h)
        idx = torch.nonzero(inside)[:, 0]
        if idx.numel() == 0:
            continue
        z = z[idx]
        u0 = torch.floor(u[idx] - 0.5).long() + 1
        r0 = torch.floor(r[idx] - 0.5).long() + 1
        measured = nearest[i][r0, u0]
        margin = torch.clamp(
            measured * config.carve_depth_fraction,
            min=config.carve_margin_voxels * config.voxel_size,
        )
        missed[idx] |= (measured > 0) & (z < measured - margin)
    return missed
