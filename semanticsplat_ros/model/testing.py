"""Small synthetic posed views for tests and benchmarks (no dataset needed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from semanticsplat_ros.data.types import Views
from semanticsplat_ros.geometry import pixel_centers, transform_points, unproject
from semanticsplat_ros.model.backbone import BackboneConfig
from semanticsplat_ros.model.cost_volume import CostVolumeConfig
from semanticsplat_ros.model.fusion import FusionConfig
from semanticsplat_ros.model.layers import UNetConfig
from semanticsplat_ros.model.semantic_heads import SemanticHeadsConfig
from semanticsplat_ros.model.semanticsplat import SemanticSplatConfig
from semanticsplat_ros.model.transformer import TransformerConfig


def _intrinsics(height: int, width: int, focal: float) -> torch.Tensor:
    return torch.tensor(
        [[focal * width, 0.0, width / 2], [0.0, focal * width, height / 2], [0.0, 0.0, 1.0]]
    )


def random_views(
    batch: int,
    num_views: int,
    height: int,
    width: int,
    seed: int = 0,
    near: float = 0.5,
    far: float = 10.0,
) -> Views:
    """Random images on a row of cameras 0.2 m apart looking along +z (shape tests, timing)."""
    g = torch.Generator().manual_seed(seed)
    K = _intrinsics(height, width, 1.0).expand(batch, num_views, 3, 3).clone()
    c2w = torch.eye(4).expand(batch, num_views, 4, 4).clone()
    c2w[..., 0, 3] = torch.arange(num_views, dtype=torch.float32) * 0.2
    c2w[..., 1, 3] = torch.rand(batch, num_views, generator=g) * 0.05
    return Views(
        images=torch.rand(batch, num_views, 3, height, width, generator=g),
        K=K,
        c2w=c2w,
        near=torch.full((batch, num_views), near),
        far=torch.full((batch, num_views), far),
    )


def textured_plane_views(
    plane_depth: float,
    height: int = 32,
    width: int = 32,
    num_views: int = 2,
    baseline: float = 0.3,
    near: float = 1.0,
    far: float = 8.0,
    seed: int = 0,
) -> Views:
    """Cameras on the x axis (``baseline`` apart, looking along +z) seeing a fronto-parallel plane
    z = ``plane_depth`` covered by a random smooth texture. Batched (b = 1), exact depth given."""
    g = torch.Generator().manual_seed(seed)
    texture = torch.rand(1, 3, 24, 24, generator=g)
    K = _intrinsics(height, width, 1.0)
    uv = pixel_centers(height, width).reshape(-1, 2)
    images, poses = [], []
    for i in range(num_views):
        c2w = torch.eye(4)
        c2w[0, 3] = (i - (num_views - 1) / 2) * baseline
        pts = transform_points(c2w, unproject(uv, torch.full((uv.shape[0],), plane_depth), K))
        # The texture spans [-3, 3] m in x and y on the plane.
        grid = (pts[:, :2] / 3.0).reshape(1, height, width, 2)
        images.append(F.grid_sample(texture, grid, mode="bilinear", align_corners=False)[0])
        poses.append(c2w)
    c2w = torch.stack(poses)
    depth = torch.full((num_views, height, width), plane_depth)
    return Views(
        images=torch.stack(images)[None],
        K=K.expand(1, num_views, 3, 3).clone(),
        c2w=c2w[None],
        near=torch.full((1, num_views), near),
        far=torch.full((1, num_views), far),
        depth=depth[None],
    )


def tiny_config(use_sam: bool = True, use_language: bool = True) -> SemanticSplatConfig:
    """A few-thousand-parameter config for fast tests (sam_dim 12, language_dim 10, D = 8)."""
    return SemanticSplatConfig(
        sam_dim=12,
        language_dim=10,
        backbone=BackboneConfig(full_channels=8, half_channels=8, channels=16),
        transformer=TransformerConfig(blocks=1, heads=2),
        cost_volume=CostVolumeConfig(num_depths=8),
        fusion=FusionConfig(
            use_sam=use_sam,
            use_language=use_language,
            condition_dim=4,
            latent_dim=8,
            unet=UNetConfig(channels=8),
        ),
        semantic=SemanticHeadsConfig(
            latent_dim=8, seg_render_dim=3, language_render_dim=2, expand_hidden=8
        ),
    )
