"""What ``semanticsplat_node`` publishes, as pure functions of an ``EncodedScene``: depth, label
and per-class mask images, the semantic point cloud and the Gaussians cloud (with feature PCA
colours), and the topic token of each class. No node state: the node calls these per camera set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from semanticsplat_ros.pipeline import EncodedScene, SemanticSplatPipeline
from semanticsplat_ros.ros.conversions import gaussians_cloud, numpy_to_image, semantic_cloud
from semanticsplat_ros.ros.services import label_dtype_for


def class_topic_names(classes: Sequence[str]) -> list[str]:
    """A valid, unique topic token per class name ("dining table" -> ``dining_table``)."""
    out: list[str] = []
    for i, name in enumerate(classes):
        token = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
        token = re.sub(r"__+", "_", token)
        if not token or token[0].isdigit():
            token = f"class_{token}" if token else f"class_{i}"
        base, k = token, 2
        while token in out:
            token, k = f"{base}_{k}", k + 1
        out.append(token)
    return out


def depth_msg(scene: EncodedScene, index: int, header: Header) -> Image:
    """``~/<camera>/depth``: 32FC1 metres at the camera's resolution, with the image's header."""
    return numpy_to_image(scene.depth_image(index), "32FC1", header)


def labels_msg(labels: np.ndarray, num_classes: int, header: Header) -> Image:
    """``~/<camera>/labels``: class ids, mono8 (<= 256 classes) or mono16."""
    if num_classes <= 256:
        return numpy_to_image(labels.astype(np.uint8), "mono8", header)
    return numpy_to_image(labels.astype(np.uint16), "mono16", header)


def class_mask_msg(labels: np.ndarray, class_id: int, header: Header) -> Image:
    """``~/<camera>/class_masks/<class>``: mono8, 255 where ``labels == class_id``."""
    return numpy_to_image(np.where(labels == class_id, 255, 0).astype(np.uint8), "mono8", header)


def _grid_keep(scene: EncodedScene, stride: int, min_opacity: float) -> torch.Tensor:
    """(v, h', w') bool: Gaussians (one per pixel, view-major) of the strided grid to keep."""
    return scene.gaussian_grid.strided(stride).opacities >= min_opacity


def semantic_cloud_msg(
    pipeline: SemanticSplatPipeline,
    scene: EncodedScene,
    header: Header,
    stride: int,
    min_opacity: float,
) -> PointCloud2:
    """``~/semantic_cloud`` (x y z rgb label score) in ``header.frame_id`` (the fixed frame)."""
    cloud = pipeline.semantic_cloud(scene, stride)
    valid = scene.depth[:, ::stride, ::stride] > 0
    keep = _grid_keep(scene, stride, min_opacity)[valid].cpu().numpy()
    keep &= np.all(np.isfinite(cloud.xyz), axis=1)
    return semantic_cloud(
        cloud.xyz[keep],
        cloud.rgb[keep],
        cloud.label[keep],
        cloud.score[keep],
        header,
        label_dtype=label_dtype_for(len(scene.classes)),
    )


def feature_pca_colors(features: np.ndarray) -> np.ndarray:
    """(n, c) features -> (n, 3) uint8: the first three principal components, each stretched
    between its 1st and 99th percentile (for showing a feature field in RViz)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must have shape (n, c), got {f.shape}")
    n, c = f.shape
    out = np.zeros((n, 3), dtype=np.uint8)
    if n < 2 or c == 0:
        return out
    f = np.where(np.isfinite(f), f, 0.0)
    centred = f - f.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[:: max(1, n // 4096)], full_matrices=False)
    k = min(3, vt.shape[0])
    proj = centred @ vt[:k].T
    for j in range(k):
        lo, hi = np.percentile(proj[:, j], [1, 99])
        if hi > lo:
            out[:, j] = np.clip((proj[:, j] - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(
                np.uint8
            )
    return out


def gaussians_msg(
    scene: EncodedScene, header: Header, stride: int, min_opacity: float
) -> PointCloud2:
    """``~/gaussians``: the strided Gaussians above ``min_opacity`` with feature PCA colours."""
    g = scene.gaussian_grid.strided(stride)
    keep = g.opacities >= min_opacity

    def pick(t: torch.Tensor) -> np.ndarray:
        return t[keep].detach().float().cpu().numpy()

    means = pick(g.means)
    finite = np.all(np.isfinite(means), axis=1)
    quats = pick(g.quats)
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = np.where(norms > 0, quats / np.maximum(norms, 1e-12), [1.0, 0.0, 0.0, 0.0])
    seg = pick(g.seg_features)
    return gaussians_cloud(
        means[finite],
        np.clip(pick(g.colors), 0.0, 1.0)[finite],
        np.clip(pick(g.opacities), 0.0, 1.0)[finite],
        pick(g.scales)[finite],
        quats[finite],
        feature_pca_colors(seg[finite]),
        header,
    )


@dataclass
class CameraOutputs:
    """One camera's image publishers: depth, labels and a mask per class."""

    depth: Any
    labels: Any
    class_masks: list[Any]

    def publish(
        self,
        scene: EncodedScene,
        index: int,
        header: Header,
        depth: bool,
        labels: bool,
        masks: bool,
    ) -> None:
        """Publish camera ``index``'s outputs that are enabled and subscribed (the label image
        is computed only when labels or a class mask are wanted); ``masks``: whether the class
        mask publishers match the scene's class list."""
        if depth and self.depth.get_subscription_count() > 0:
            self.depth.publish(depth_msg(scene, index, header))
        if not labels:
            return
        wanted = [
            (k, pub)
            for k, pub in enumerate(self.class_masks if masks else [])
            if pub.get_subscription_count() > 0
        ]
        want_labels = self.labels.get_subscription_count() > 0
        if not (want_labels or wanted):
            return
        image = scene.label_image(index)
        if want_labels:
            self.labels.publish(labels_msg(image, len(scene.classes), header))
        for k, pub in wanted:
            pub.publish(class_mask_msg(image, k, header))
