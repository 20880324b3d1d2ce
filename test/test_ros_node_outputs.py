"""ros/node.py's pure builders: parameters -> pipeline config, scene -> published messages.

No running graph and no model: a hand-made EncodedScene with known depth, labels and Gaussians.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semanticsplat_ros.pipeline import EncodedScene, PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.queries import LanguageField
from semanticsplat_ros.render.types import Gaussians
from semanticsplat_ros.ros.conversions import (
    cloud_to_semantic,
    cloud_to_structured,
    image_to_numpy,
    make_header,
    unpack_rgb,
)
from semanticsplat_ros.ros.outputs import (
    class_mask_msg,
    class_topic_names,
    depth_msg,
    feature_pca_colors,
    gaussians_msg,
    labels_msg,
    semantic_cloud_msg,
)
from semanticsplat_ros.ros.params import validate_params

V, h, w = 2, 4, 6


@pytest.fixture
def scene() -> EncodedScene:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[5.0, 0, 3.0], [0, 5.0, 2.0], [0, 0, 1]]).expand(V, 3, 3).clone()
    c2w = torch.eye(4).expand(V, 4, 4).clone()
    c2w[1, 0, 3] = 1.0
    depth = torch.full((V, h, w), 2.0)
    depth[1] = 3.0
    n = V * h * w
    opacities = torch.linspace(0.0, 1.0, n)[None]
    labels = torch.arange(n).reshape(V, h, w) % 3
    return EncodedScene(
        names=["a", "b"],
        image_sizes=[(8, 12), (8, 12)],
        stamp=4.5,
        images=torch.rand(V, 3, h, w, generator=g),
        K=K,
        c2w=c2w,
        depth=depth,
        seg_rendered=torch.zeros(V, 3, h, w),
        seg_expander=lambda x: x.new_zeros(*x.shape[:2], 256, *x.shape[3:]),
        language_field=LanguageField(torch.zeros(V, 2, h, w), torch.zeros(4, 2), torch.zeros(4)),
        labels=labels,
        scores=torch.full((V, h, w), 0.75),
        classes=("wall", "floor", "chair"),
        gaussians=Gaussians(
            means=torch.randn(1, n, 3, generator=g),
            quats=torch.tensor([2.0, 0, 0, 0]).expand(1, n, 4).clone(),
            scales=torch.full((1, n, 3), 0.01),
            opacities=opacities,
            colors=torch.rand(1, n, 3, generator=g),
            features=torch.randn(1, n, 5, generator=g),
        ),
        seg_dim=3,
    )


def test_class_topic_names_are_valid_and_unique():
    names = class_topic_names(["Dining Table", "chair", "3d thing", "", "chair!", "a--b"])
    assert names == ["dining_table", "chair", "class_3d_thing", "class_3", "chair_2", "a_b"]


def test_pipeline_config_from_params():
    params = validate_params(
        {
            "cameras": ["l", "r"],
            "input_width": 64,
            "input_height": 48,
            "near": 0.5,
            "far": 8.0,
            "random_weights": True,
            "sam_checkpoint": "vit_b:/ckpt/sam_vit_b_01ec64.pth",
            "clip_checkpoint": "tiny_lseg:/ckpt/lseg.pt",
            "classes": ["mug", "table"],
            "query_threshold": 0.0,
        }
    )
    config = PipelineConfig.from_parameters(params)
    assert (config.input_width, config.input_height, config.near, config.far) == (64, 48, 0.5, 8)
    assert config.random_weights and config.sam_spec.architecture == "vit_b"
    assert config.language_checkpoint == "tiny_lseg:/ckpt/lseg.pt"
    assert config.text_encoder == "auto" and config.text_encoder_name == "minilm"
    assert config.classes == ("mug", "table")
    assert 0 < config.query_threshold < 1  # the pipeline needs (0, 1); params allow [0, 1]
    with pytest.raises(ValueError, match=r"sam_checkpoint .* is a bare path; write"):
        PipelineConfig.from_parameters({"sam_checkpoint": "/x/sam_vit_h.pth"})
    with pytest.raises(ValueError, match="input_width must be a multiple of 8"):
        PipelineConfig.from_parameters(validate_params({"cameras": ["l", "r"], "input_width": 60}))


def test_depth_labels_and_masks_at_camera_resolution(scene):
    header = make_header("a_optical_frame", 4.5)
    depth = depth_msg(scene, 1, header)
    assert depth.header == header and depth.encoding == "32FC1"
    np.testing.assert_allclose(image_to_numpy(depth), np.full((8, 12), 3.0, np.float32))
    labels = scene.label_image(0)
    msg = labels_msg(labels, 3, header)
    assert msg.encoding == "mono8" and (msg.width, msg.height) == (12, 8)
    np.testing.assert_array_equal(image_to_numpy(msg), labels)
    many = labels_msg(labels + 300, 400, header)
    assert many.encoding == "mono16"
    np.testing.assert_array_equal(image_to_numpy(many), labels + 300)
    mask = image_to_numpy(class_mask_msg(labels, 2, header))
    np.testing.assert_array_equal(mask == 255, labels == 2)
    assert set(np.unique(mask)) <= {0, 255}


def test_semantic_cloud_keeps_opaque_pixels_in_the_fixed_frame(scene):
    pipeline = object.__new__(SemanticSplatPipeline)  # semantic_cloud uses no model state
    header = make_header("world", 4.5)
    full = cloud_to_semantic(semantic_cloud_msg(pipeline, scene, header, 1, 0.0))
    assert len(full.xyz) == V * h * w
    msg = semantic_cloud_msg(pipeline, scene, header, 2, 0.5)
    assert msg.header.frame_id == "world"
    pts = cloud_to_semantic(msg)
    opac = scene.gaussians.opacities[0].reshape(V, h, w)[:, ::2, ::2]
    assert len(pts.xyz) == int((opac >= 0.5).sum()) > 0
    # Points are the pixels' depth along their rays: camera b sits 1 m along x at depth 3.
    assert set(np.round(pts.xyz[:, 2], 4)) <= {2.0, 3.0}
    assert set(pts.labels.tolist()) <= {0, 1, 2}
    np.testing.assert_allclose(pts.scores, 0.75)


def test_gaussians_cloud_has_feature_colours(scene):
    msg = gaussians_msg(scene, make_header("world", 4.5), 1, 0.25)
    pts = cloud_to_structured(msg)
    n_kept = int((scene.gaussians.opacities[0] >= 0.25).sum())
    assert len(pts) == n_kept
    assert pts["opacity"].min() >= 0.25
    np.testing.assert_allclose(pts["rot_0"], 1.0)  # quaternions normalised (w = 2 -> 1)
    feature_rgb = unpack_rgb(pts["feature_rgb"])
    assert feature_rgb.std() > 0


def test_feature_pca_colours_follow_the_main_axis():
    rng = np.random.default_rng(0)
    t = np.linspace(-1, 1, 200)
    feats = np.outer(t, [3.0, 0, 0, 0]) + rng.normal(0, 0.01, (200, 4))
    colors = feature_pca_colors(feats)
    assert colors.shape == (200, 3) and colors.dtype == np.uint8
    first = colors[:, 0].astype(float)
    assert abs(np.corrcoef(first, t)[0, 1]) > 0.99
    assert feature_pca_colors(np.zeros((1, 4))).tolist() == [[0, 0, 0]]
    with pytest.raises(ValueError, match=r"\(n, c\)"):
        feature_pca_colors(np.zeros(5))
