"""The pure-Python pipeline: encode -> outputs and queries, plumbing and input validation.

Random weights (``PipelineConfig(random_weights=True)``) exercise shapes, frames and errors; the
quality of trained checkpoints is measured by `semanticsplat eval` and the node tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import rig_cameras
from semanticsplat_ros.data.world import make_scene
from semanticsplat_ros.pipeline import (
    CameraFrame,
    PipelineConfig,
    SemanticSplatPipeline,
    check_query_text,
)


@pytest.fixture(scope="module")
def pipeline() -> SemanticSplatPipeline:
    torch.manual_seed(0)
    return SemanticSplatPipeline(
        PipelineConfig(random_weights=True, input_width=64, input_height=48, device="cpu")
    )


def stereo_frames(stamp: float = 1.5) -> list[CameraFrame]:
    """The stereo rig's two 80x60 views of synthetic scene 200000, as camera frames."""
    scene = make_scene(200000)
    c2w, K = rig_cameras(scene, "stereo", 0.0, 60, 80)
    views = render_views(scene, c2w, K, 60, 80)
    out = []
    for i, name in enumerate(["left", "right"]):
        img = (views.images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        out.append(CameraFrame(name, img, K[i].numpy(), c2w[i].numpy(), stamp=stamp))
    return out


@pytest.fixture(scope="module")
def frames() -> list[CameraFrame]:
    return stereo_frames()


@pytest.fixture(scope="module")
def scene(pipeline, frames):
    return pipeline.encode(frames)


def test_encode_shapes_and_original_resolution_outputs(scene):
    assert scene.names == ["left", "right"]
    assert scene.depth.shape == (2, 48, 64)
    assert scene.seg_embeddings.shape == (2, 256, 48, 64)
    assert scene.language.shape[:2] == (2, 384)
    assert scene.stamp == 1.5
    assert scene.depth_image(0).shape == (60, 80) and scene.depth_image(0).dtype == np.float32
    assert scene.label_image(1).shape == (60, 80)
    assert (scene.depth > 0).all()
    assert {"teachers", "model", "render", "total"} <= set(scene.timings)


def test_semantic_cloud_points_lie_on_the_depth_rays(pipeline, scene):
    cloud = pipeline.semantic_cloud(scene, stride=2)
    n = 2 * 24 * 32
    assert cloud.xyz.shape == (n, 3) and cloud.rgb.dtype == np.uint8
    assert cloud.label.shape == (n,) and cloud.score.shape == (n,)
    # The first point is pixel (0, 0) of view 0: its distance along z equals the depth there.
    c2w = scene.c2w[0].numpy()
    p_cam = np.linalg.inv(c2w) @ np.append(cloud.xyz[0], 1.0)
    assert p_cam[2] == pytest.approx(float(scene.depth[0, 0, 0]), rel=1e-4)


def test_label_images_classify_at_the_camera_resolution(pipeline, scene):
    import dataclasses

    import torch.nn.functional as F

    from semanticsplat_ros.queries import cosine_scores

    labels = scene.label_image(0)
    scores = cosine_scores(scene.language[:1], pipeline.class_embeddings)
    expected = F.interpolate(scores, size=(60, 80), mode="bilinear", align_corners=False)
    assert np.array_equal(labels, expected[0].argmax(0).numpy())
    resized = scene.resize_to_camera(scene.labels[0], 0)
    assert (labels == resized).mean() > 0.8  # the same labels, boundaries smoother
    bare = dataclasses.replace(scene, class_cosine=None)  # labels resized instead
    assert np.array_equal(bare.label_image(0), resized)


def test_segment_pixel_returns_three_levels(pipeline, scene):
    results = pipeline.segment_pixel(scene, "left", 40.0, 30.0)
    assert [r.label for r in results] == ["small", "medium", "large"]
    for r in results:
        assert "left" in r.masks and r.masks["left"].shape == (60, 80)
        assert r.points.shape[1] == 3 and len(r.points) == len(r.colors)
        assert 0.0 <= r.score <= 1.0
    # numpy scalars (e.g. from an argmax) are pixels too
    again = pipeline.segment_pixel(scene, "left", np.float64(40.0), np.int64(30))
    assert all(
        np.array_equal(a.masks["left"], b.masks["left"])
        for a, b in zip(again, results, strict=True)
    )


def test_segment_refinements_keep_to_the_prompted_region(pipeline, scene, monkeypatch):
    from scipy import ndimage

    from semanticsplat_ros.pipeline_config import SEGMENT_REFINEMENTS
    from semanticsplat_ros.ros.params import NODE_PARAMETERS

    assert next(p for p in NODE_PARAMETERS if p.name == "segment_refinement").choices == (
        SEGMENT_REFINEMENTS
    )
    # pixel (40.5, 30.5) of the 80x60 camera is (32.4, 24.4) at the 64x48 input
    labels = scene.labels[0].numpy()
    regions, _ = ndimage.label(labels == labels[24, 32])
    at_input = torch.from_numpy(regions == regions[24, 32])
    region = scene.resize_to_camera(at_input.to(torch.uint8), 0).astype(bool)
    out = {}
    for refinement in SEGMENT_REFINEMENTS:
        monkeypatch.setattr(pipeline.config, "segment_refinement", refinement)
        out[refinement] = pipeline.segment_pixel(scene, "left", 40.5, 30.5)
    for raw, clipped, obj in zip(out["none"], out["class"], out["object"], strict=True):
        # clipping keeps the SAM mask's pixels inside the prompted pixel's connected region
        assert np.array_equal(clipped.masks["left"], raw.masks["left"] & region)
        assert clipped.score == raw.score  # SAM's predicted IoU, as decoded
        if obj.label == "large":  # the object level is the whole region, scored by its labels
            assert np.array_equal(obj.masks["left"], region)
            assert obj.score == pytest.approx(float(scene.scores[0][at_input].mean()), rel=1e-3)
        else:
            assert np.array_equal(obj.masks["left"], clipped.masks["left"])


def test_segment_refinement_is_checked():
    with pytest.raises(ValueError, match="segment_refinement must be one of none, class, object"):
        SemanticSplatPipeline(PipelineConfig(segment_refinement="objects", random_weights=True))


def test_segment_point_rejects_points_no_camera_sees(pipeline, scene):
    behind = scene.c2w[0, :3, 3] - 5 * scene.c2w[0, :3, 2]
    with pytest.raises(ValueError, match="not visible"):
        pipeline.segment_point(scene, behind.numpy())
    with pytest.raises(ValueError, match="finite"):
        pipeline.segment_point(scene, [np.nan, 0, 0])


def test_segment_pixel_errors(pipeline, scene):
    with pytest.raises(ValueError, match="unknown camera 'wrist'"):
        pipeline.segment_pixel(scene, "wrist", 1, 1)
    with pytest.raises(ValueError, match="outside"):
        pipeline.segment_pixel(scene, "left", 80.0, 3.0)


def test_query_text_and_its_errors(pipeline, scene):
    results = pipeline.query_text(scene, ["chair", "couch"])
    assert [r.label for r in results] == ["chair", "couch"]
    assert set(results[0].masks) == {"left", "right"}
    for bad, err in (([""], ValueError), (["x" * 10_000], ValueError), ([], ValueError)):
        with pytest.raises(err):
            pipeline.query_text(scene, bad)
    with pytest.raises(TypeError):
        pipeline.query_text(scene, "chair")
    with pytest.raises(ValueError, match="threshold"):
        pipeline.query_text(scene, ["chair"], threshold=2.0)


def test_set_classes_relabels(pipeline, scene):
    original = pipeline.classes
    try:
        pipeline.set_classes(["mug", "table"])
        relabelled = pipeline.relabel(scene)
        assert relabelled.classes == ("mug", "table")
        assert int(relabelled.labels.max()) <= 1
        assert scene.classes == original  # the cached scene is not modified
        with pytest.raises(ValueError, match="unique"):
            pipeline.set_classes(["a", "a"])
        with pytest.raises(ValueError, match="prompts"):
            pipeline.set_classes(["a", "b"], ["only one"])
    finally:
        pipeline.set_classes(original)


def test_bad_frames_name_the_camera(pipeline, frames):
    good = frames[0]
    nan_pose = good.c2w.copy()
    nan_pose[0, 3] = np.nan
    cases = [
        ([good], "at least 2"),
        ([good, CameraFrame("b", good.image[..., :2], good.K, good.c2w)], "'b'.*image"),
        ([good, CameraFrame("b", good.image.astype(np.float32), good.K, good.c2w)], "uint8"),
        ([good, CameraFrame("b", good.image, good.K, nan_pose)], "'b'.*NaN"),
        ([good, CameraFrame("b", good.image, np.eye(4), good.c2w)], "'b'.*K"),
        ([good, CameraFrame("left", good.image, good.K, good.c2w)], "unique"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            pipeline.encode(bad)


def test_check_query_text():
    assert check_query_text("  red mug ") == "red mug"
    with pytest.raises(ValueError, match="control"):
        check_query_text("mug\x00")
    with pytest.raises(TypeError):
        check_query_text(3)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model checkpoint"):
        SemanticSplatPipeline(PipelineConfig(model_checkpoint=str(tmp_path / "none.pt")))
    with pytest.raises(FileNotFoundError, match=r"bundled model's name .*small_stereo"):
        SemanticSplatPipeline(PipelineConfig(model_checkpoint="smal_stereo"))


def test_model_checkpoint_names_a_file_or_a_bundled_model(tmp_path, monkeypatch):
    from semanticsplat_ros.model.bundled import (
        BUNDLED_MODELS,
        DEFAULT_MODEL_CHECKPOINT,
        resolve_model_checkpoint,
    )

    assert BUNDLED_MODELS["small"] == DEFAULT_MODEL_CHECKPOINT
    for name, path in BUNDLED_MODELS.items():
        assert path.parent == DEFAULT_MODEL_CHECKPOINT.parent
        if path.is_file():
            assert resolve_model_checkpoint(name) == path
    if DEFAULT_MODEL_CHECKPOINT.is_file():
        assert resolve_model_checkpoint("") == DEFAULT_MODEL_CHECKPOINT
        assert resolve_model_checkpoint(None) == DEFAULT_MODEL_CHECKPOINT
    own = tmp_path / "own.pt"
    own.write_bytes(b"x")
    assert resolve_model_checkpoint(str(own)) == own
    # A file in the working directory called like a bundled model is that file.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small").write_bytes(b"x")
    assert resolve_model_checkpoint("small").resolve() == (tmp_path / "small").resolve()


def test_the_model_runs_at_the_near_plane_it_was_trained_with(tmp_path, frames):
    from semanticsplat_ros.data.types import DEFAULT_NEAR
    from semanticsplat_ros.model import SemanticSplat, SemanticSplatConfig, save_model
    from semanticsplat_ros.model.semanticsplat import LEGACY_NEAR, trained_near

    assert trained_near({"step": 10, "depth_near": 0.4}) == 0.4
    assert trained_near({"step": 10}) == LEGACY_NEAR  # a trainer checkpoint from before
    assert trained_near({"random_weights": True}) == DEFAULT_NEAR
    torch.manual_seed(0)
    model = SemanticSplat(SemanticSplatConfig.small())
    path = save_model(tmp_path / "m.pt", model, {"step": 1, "depth_near": 0.7})
    small = dict(input_width=64, input_height=48, device="cpu")
    own = SemanticSplatPipeline(PipelineConfig(model_checkpoint=str(path), **small))
    assert own.near == 0.7
    # Depth is clamped to [near, far]: the checkpoint's near plane was used.
    assert float(own.encode(frames).depth.min()) >= 0.7 - 1e-4
    # A near plane in the config wins over the checkpoint's.
    set_near = SemanticSplatPipeline(PipelineConfig(model_checkpoint=str(path), near=0.2, **small))
    assert set_near.near == 0.2
    with pytest.raises(ValueError, match="near"):
        SemanticSplatPipeline(PipelineConfig(model_checkpoint=str(path), near=-1.0, **small))
