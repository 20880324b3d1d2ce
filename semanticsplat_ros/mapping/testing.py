"""Scenes made from the synthetic world's truth, for tests and benchmarks of the map.

``truth_scene`` wraps rendered views (``data.raycast.render_views``: true depth, class ids) in
the fields ``SemanticMap.fuse`` reads, with a language field that is each pixel's true class's
text embedding plus noise, labelled by the pipeline's own rule (``queries.classify_cosine``).
Each pixel's Gaussian carries that language feature itself as its language channels (a map of
``MapIdentity(language_dim=0)``: no expander).
The map's mechanics can then be checked against the world's truth, with no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.sim_rig import SimRig
from semanticsplat_ros.data.types import Views
from semanticsplat_ros.geometry import unproject_depth
from semanticsplat_ros.queries import classify_cosine, cosine_scores
from semanticsplat_ros.render.types import Gaussians


@dataclass
class TruthScene:
    """The fields of ``pipeline.EncodedScene`` that the map reads (``fusion.SceneLike``)."""

    stamp: float
    images: Float[Tensor, "v 3 h w"]
    K: Float[Tensor, "v 3 3"]
    c2w: Float[Tensor, "v 4 4"]
    depth: Float[Tensor, "v h w"]
    language: Float[Tensor, "v c h w"]
    """The noisy language field (also the Gaussians' language channels)."""
    labels: Tensor
    scores: Float[Tensor, "v h w"]
    classes: tuple[str, ...]
    gaussians: Gaussians
    class_cosine: Tensor | None
    seg_dim: int = 0


def class_embeddings(num_classes: int, feature_dim: int, seed: int = 0) -> Float[Tensor, "k c"]:
    """(k, c) random unit text embeddings (nearly orthogonal for c >> k), deterministic."""
    if num_classes < 1 or feature_dim < 2:
        raise ValueError("need num_classes >= 1 and feature_dim >= 2")
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_classes, feature_dim, generator=g), dim=1)


def truth_scene(
    views: Views,
    embeddings: Float[Tensor, "k c"],
    stamp: float = 0.0,
    classes: tuple[str, ...] = CLASS_NAMES,
    noise: float = 0.1,
    seed: int = 0,
    seg_dim: int = 4,
) -> TruthScene:
    """A scene of one rig instant (``views`` unbatched: images (v, 3, h, w), depth (v, h, w),
    labels (v, h, w) with -1 where the ray left the room). ``noise`` is the standard deviation
    of the Gaussian noise added to each channel of the language field; each pixel's Gaussian
    gets a random ``seg_dim``-d segmentation latent followed by its pixel's language feature."""
    if embeddings.shape[0] != len(classes):
        raise ValueError(f"got {embeddings.shape[0]} embeddings for {len(classes)} classes")
    if views.depth is None or views.labels is None or views.images.ndim != 4:
        raise ValueError("views must be unbatched and carry depth and labels")
    v, _, h, w = views.images.shape
    g = torch.Generator().manual_seed(seed)
    truth = views.labels.clamp(min=0)
    language = embeddings[truth].permute(0, 3, 1, 2)
    language = language + noise * torch.randn(language.shape, generator=g)
    cosine = cosine_scores(language, embeddings)
    labels, scores = classify_cosine(cosine)
    n = v * h * w
    gaussians = Gaussians(
        means=torch.zeros(1, n, 3),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(1, n, 4),
        scales=torch.full((1, n, 3), 0.01),
        opacities=torch.ones(1, n),
        colors=views.images.permute(0, 2, 3, 1).reshape(1, n, 3),
        features=torch.cat(
            [
                torch.randn(1, n, seg_dim, generator=g),
                language.permute(0, 2, 3, 1).reshape(1, n, -1),
            ],
            dim=2,
        ),
    )
    return TruthScene(
        stamp=float(stamp),
        images=views.images,
        K=views.K,
        c2w=views.c2w,
        depth=views.depth,
        language=language,
        labels=labels,
        scores=scores,
        classes=tuple(classes),
        gaussians=gaussians,
        class_cosine=cosine,
        seg_dim=seg_dim,
    )


def rig_views(rig: SimRig, t: float) -> Views:
    """Every camera of ``rig`` at scene time ``t`` with the truth (the world as changed by
    then), at the rig's image size: unbatched ``Views``."""
    c = rig.config
    c2w, K = rig.poses(t)
    with torch.no_grad():
        return render_views(
            rig.scene_at(t),
            torch.from_numpy(c2w).float(),
            torch.from_numpy(K).float(),
            c.height,
            c.width,
        )


@dataclass
class SurfaceTruth:
    """True surface points seen by a set of views, one per voxel (the mean of its points)."""

    points: Float[Tensor, "n 3"]
    instances: Tensor
    """(n,) int64 instance id of the voxel's points (the most frequent one)."""
    labels: Tensor
    """(n,) int64 class id of that instance."""


def observed_surface(
    views: list[Views], voxel_size: float, max_range_m: float = 6.0
) -> SurfaceTruth:
    """The true surfaces the views saw (true depth within ``max_range_m``), downsampled to one
    point per voxel of ``voxel_size``: what a map fused from them should cover."""
    points, instances, labels = [], [], []
    for v in views:
        if v.depth is None or v.instances is None or v.labels is None:
            raise ValueError("views must carry depth, instances and labels")
        p = unproject_depth(v.depth, v.K, v.c2w)
        ok = (v.depth > 0) & (v.depth <= max_range_m) & (v.instances >= 0)
        points.append(p[ok])
        instances.append(v.instances[ok])
        labels.append(v.labels[ok])
    xyz, inst, lab = torch.cat(points), torch.cat(instances), torch.cat(labels)
    keys = torch.floor(xyz / voxel_size).to(torch.int64)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    m = int(inverse.max()) + 1 if inverse.numel() else 0
    counts = torch.bincount(inverse, minlength=m).float()
    mean = torch.zeros(m, 3).index_add_(0, inverse, xyz) / counts[:, None]
    # The most frequent instance per voxel: count (voxel, instance) pairs, sort them by voxel
    # then count, and take each voxel's last pair.
    span = int(inst.max()) + 2
    values, pair_counts = torch.unique(inverse * span + inst + 1, return_counts=True)
    voxel_of = values // span
    order = torch.argsort(voxel_of * (int(pair_counts.max()) + 1) + pair_counts)
    last = torch.ones(order.numel(), dtype=torch.bool)
    last[:-1] = voxel_of[order][1:] != voxel_of[order][:-1]
    best = values[order][last] % span - 1
    label_of = torch.full((int(inst.max()) + 1,), -1, dtype=torch.int64)
    label_of[inst] = lab
    return SurfaceTruth(points=mean, instances=best, labels=label_of[best])
