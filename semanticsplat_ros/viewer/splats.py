"""What the viewer draws, as plain numpy: splats, colour modes, camera frustums, click picking.

Everything here is a pure function of a scene (``pipeline.EncodedScene``), a PLY of semantic
Gaussians (``ply.PlyGaussians``) or the map (``mapping.MapCloud``), so it is tested without a
browser and runs on the viewer's own thread (never on the caller's). World frame, metres;
cameras in the OpenCV frame (x right, y down, z forward), as viser's frustums are too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import matplotlib
import numpy as np
import torch

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.geometry.quaternions import quat_to_rotmat, rotmat_to_quat
from semanticsplat_ros.mapping import MapCloud
from semanticsplat_ros.pipeline import EncodedScene
from semanticsplat_ros.ply import PlyGaussians
from semanticsplat_ros.render.projection import covariances_3d
from semanticsplat_ros.visualize import labels_to_rgb, pca_rgb

ColorMode = Literal["rgb", "class", "segmentation", "language", "query"]
"""How splats are coloured: their colour, their class, a PCA of the segmentation feature, a PCA
of the language feature, or the latest text query's relevance."""
COLOR_MODES: tuple[str, ...] = get_args(ColorMode)
MODE_LABELS: dict[str, str] = {
    "rgb": "RGB",
    "class": "class",
    "segmentation": "segmentation feature (PCA)",
    "language": "language feature (PCA)",
    "query": "query heat",
}
"""What the GUI's colour dropdown shows for each mode."""
UNKNOWN_RGB = (90, 90, 90)
"""Splats without a value in the chosen mode (no label, no feature, no query yet)."""
HEAT_CMAP = "inferno"


def check_mode(mode: str) -> ColorMode:
    if mode not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}; got {mode!r}")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True)
class SplatSet:
    """n Gaussians to draw (numpy, float32 unless noted), world frame, metres."""

    centers: np.ndarray
    """(n, 3)."""
    covariances: np.ndarray
    """(n, 3, 3) ``R diag(s²) Rᵀ``."""
    radii: np.ndarray
    """(n,) largest standard deviation (picking tolerance)."""
    rgb: np.ndarray
    """(n, 3) in [0, 1]."""
    opacities: np.ndarray
    """(n,) in [0, 1]."""
    labels: np.ndarray | None
    """(n,) int64 class ids into ``classes``, or None."""
    seg_features: np.ndarray
    """(n, s) low-dimensional segmentation feature (s may be 0)."""
    lang_features: np.ndarray
    """(n, l) low-dimensional language feature (l may be 0)."""
    classes: tuple[str, ...] = CLASS_NAMES

    @property
    def num_splats(self) -> int:
        return int(self.centers.shape[0])


@dataclass(frozen=True)
class CameraView:
    """A camera frustum with its image: what ``add_camera_frustum`` takes."""

    name: str
    fov_y: float
    """Vertical field of view, radians."""
    aspect: float
    """Width / height."""
    wxyz: np.ndarray
    """(4,) camera-to-world rotation."""
    position: np.ndarray
    """(3,) camera centre."""
    image: np.ndarray
    """(h, w, 3) uint8."""


def _np32(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _splats(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    labels: np.ndarray | None,
    seg: torch.Tensor,
    lang: torch.Tensor,
    classes: Sequence[str],
) -> SplatSet:
    scales = scales.float().clamp_min(1e-6)
    return SplatSet(
        centers=_np32(means),
        covariances=_np32(covariances_3d(quats.float(), scales)),
        radii=_np32(scales.max(dim=-1).values),
        rgb=np.clip(_np32(colors), 0.0, 1.0),
        opacities=np.clip(_np32(opacities), 0.0, 1.0),
        labels=labels,
        seg_features=_np32(seg),
        lang_features=_np32(lang),
        classes=tuple(classes),
    )


def scene_splats(scene: EncodedScene) -> SplatSet:
    """The scene's Gaussians (batch 0). Labels come from ``scene.labels`` when there is one
    Gaussian per input pixel (view-major, row-major, as ``export.scene_ply_gaussians``)."""
    g = scene.gaussians
    if g.batch_size != 1:
        raise ValueError(f"expected the Gaussians of one scene (batch 1), got {g.batch_size}")
    labels = None
    if scene.labels.numel() == g.num_gaussians:
        labels = scene.labels.reshape(-1).cpu().numpy().astype(np.int64)
    return _splats(
        g.means[0],
        g.quats[0],
        g.scales[0],
        g.colors[0],
        g.opacities[0],
        labels,
        scene.seg_features,
        scene.lang_features,
        scene.classes,
    )


def ply_splats(g: PlyGaussians, classes: Sequence[str] = CLASS_NAMES) -> SplatSet:
    """Gaussians read from a scene PLY (``ply.read_ply``)."""
    return _splats(
        torch.from_numpy(g.means),
        torch.from_numpy(g.quats),
        torch.from_numpy(g.scales),
        torch.from_numpy(g.colors),
        torch.from_numpy(g.opacities),
        None if g.labels is None else g.labels.astype(np.int64),
        torch.from_numpy(g.seg_features),
        torch.from_numpy(g.lang_features),
        classes,
    )


def scene_cameras(scene: EncodedScene) -> list[CameraView]:
    """Each camera of the scene with its (model-resolution) image."""
    h, w = scene.images.shape[-2:]
    quats = rotmat_to_quat(scene.c2w[:, :3, :3].double()).cpu().numpy()
    images = (scene.images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    K = scene.K.double().cpu().numpy()
    centres = scene.c2w[:, :3, 3].double().cpu().numpy()
    out = []
    for i, name in enumerate(scene.names):
        fov_y = 2.0 * math.atan(0.5 * h / float(K[i, 1, 1]))
        out.append(CameraView(name, fov_y, w / h, quats[i], centres[i], images[i].cpu().numpy()))
    return out


def _pca(features: np.ndarray) -> np.ndarray:
    """(n, c) -> (n, 3) uint8 with ``visualize.pca_rgb`` (the splats as one (c, n, 1) map)."""
    return pca_rgb([features.T[:, :, None]])[0][:, 0]


def heat_rgb(heat: np.ndarray) -> np.ndarray:
    """(n,) relevance in [0, 1] -> (n, 3) uint8 through the heat colour map (hot = relevant)."""
    cmap = matplotlib.colormaps[HEAT_CMAP]
    values = np.clip(np.nan_to_num(np.asarray(heat, np.float64), nan=0.0), 0.0, 1.0)
    return np.round(cmap(values)[:, :3] * 255.0).astype(np.uint8)


def mode_colors(
    splats: SplatSet, mode: str, heat: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    """(n, 3) uint8 colours of ``splats`` in ``mode`` and a note ("" or why the mode shows
    grey: no labels, no such feature, no query yet)."""
    mode = check_mode(mode)
    n = splats.num_splats
    grey = np.tile(np.asarray(UNKNOWN_RGB, np.uint8), (n, 1))
    if mode == "rgb" or n == 0:
        return np.round(splats.rgb * 255.0).astype(np.uint8), ""
    if mode == "class":
        if splats.labels is None:
            return grey, "these splats carry no class labels"
        return labels_to_rgb(splats.labels[None], unknown_color=UNKNOWN_RGB)[0], ""
    if mode in ("segmentation", "language"):
        features = splats.seg_features if mode == "segmentation" else splats.lang_features
        if features.shape[1] == 0:
            return grey, f"these splats carry no {mode} feature"
        return _pca(features), ""
    if heat is None:
        return grey, "run a text query to see its heat"
    if heat.shape != (n,):
        return grey, f"the query heat has {heat.shape[0]} values for {n} splats"
    return heat_rgb(heat), ""


def map_colors(cloud: MapCloud, mode: str) -> np.ndarray:
    """(n, 3) uint8 colours of the map's voxels: their class in ``class`` mode, else RGB."""
    if check_mode(mode) == "class":
        return labels_to_rgb(cloud.label[None].astype(np.int64), unknown_color=UNKNOWN_RGB)[0]
    return np.asarray(cloud.rgb, np.uint8)


def pick_splat(
    splats: SplatSet,
    ray_origin: Sequence[float],
    ray_direction: Sequence[float],
    min_opacity: float = 0.2,
) -> int | None:
    """Index of the first splat a click's ray hits: the nearest along the ray among those
    within about two standard deviations (or 1 % of the distance) of it; None when the ray
    passes no splat."""
    o = np.asarray(ray_origin, np.float64)
    d = np.asarray(ray_direction, np.float64)
    norm = float(np.linalg.norm(d))
    if o.shape != (3,) or d.shape != (3,) or not np.isfinite(norm) or norm == 0:
        raise ValueError(f"need a 3D ray, got origin {ray_origin}, direction {ray_direction}")
    d = d / norm
    rel = splats.centers.astype(np.float64) - o
    t = rel @ d
    dist = np.linalg.norm(rel - t[:, None] * d, axis=1)
    tolerance = np.maximum(2.0 * splats.radii, 0.01 * t)
    hit = (t > 0) & (dist <= tolerance) & (splats.opacities >= min_opacity)
    if not hit.any():
        return None
    candidates = np.flatnonzero(hit)
    return int(candidates[np.argmin(t[candidates])])


def overview_camera(
    points: np.ndarray, cameras: Sequence[CameraView], up: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(position, look_at) of a first view: behind and above the first camera, looking at the
    (n, 3) points' median; without cameras, from above one side of the points."""
    target = np.median(points, axis=0) if len(points) else np.zeros(3)
    up = np.asarray(up, np.float64)
    if cameras:
        cam = cameras[0]
        R = quat_to_rotmat(torch.from_numpy(np.asarray(cam.wxyz, np.float64))).numpy()
        forward = R[:, 2]
        position = cam.position - 1.2 * forward + 0.8 * up
    else:
        extent = float(np.ptp(points, axis=0).max()) if len(points) else 2.0
        side = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        position = target + extent * (0.8 * side / np.linalg.norm(side) + 0.8 * up)
    return position.astype(np.float64), target.astype(np.float64)


def subsample(splats: SplatSet, max_splats: int) -> tuple[SplatSet, np.ndarray | None]:
    """At most ``max_splats`` splats (evenly strided) and the kept indices (None: all kept)."""
    n = splats.num_splats
    if n <= max_splats:
        return splats, None
    keep = np.linspace(0, n - 1, max_splats).round().astype(np.int64)
    return (
        SplatSet(
            centers=splats.centers[keep],
            covariances=splats.covariances[keep],
            radii=splats.radii[keep],
            rgb=splats.rgb[keep],
            opacities=splats.opacities[keep],
            labels=None if splats.labels is None else splats.labels[keep],
            seg_features=splats.seg_features[keep],
            lang_features=splats.lang_features[keep],
            classes=splats.classes,
        ),
        keep,
    )
