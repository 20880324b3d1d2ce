"""SAM teacher: tiny SAM shapes and gradients, mask hierarchy, real-checkpoint loading path."""

from __future__ import annotations

import pytest
import torch

from semanticsplat_ros.teachers.base import Teacher
from semanticsplat_ros.teachers.defaults import DEFAULT_TINY_LSEG, DEFAULT_TINY_SAM
from semanticsplat_ros.teachers.sam import (
    MaskGenerationConfig,
    SamArchitecture,
    SamTeacher,
    TinySamConfig,
    build_sam,
    build_tiny_sam,
    grid_points,
    load_sam,
    load_tiny_sam,
    paint_segments,
    save_tiny_sam,
)

SMALL_VIT = SamArchitecture(32, 2, 2, (1,), image_size=64, patch_size=16, window_size=2)


@pytest.fixture(scope="module")
def tiny() -> SamTeacher:
    torch.manual_seed(0)
    return SamTeacher(build_tiny_sam(TinySamConfig()).eval())


def test_tiny_sam_is_a_teacher_with_256_channel_embeddings(tiny):
    assert isinstance(tiny, Teacher)
    emb = tiny.embed(torch.rand(2, 3, 64, 64))
    assert emb.shape == (2, 256, 8, 8)
    assert tiny.embedding_size == (8, 8)


def test_predict_masks_shapes_any_embedding_and_gradients(tiny):
    emb = torch.randn(2, 256, 16, 16, requires_grad=True)  # not the decoder grid: resized
    points = torch.tensor([[[3.0, 5.0], [40.0, 20.0], [0.0, 0.0]], [[10.0, 10.0]] * 3])
    logits, iou = tiny.predict_masks(emb, points, (48, 80))
    assert logits.shape == (2, 3, 3, 48, 80)
    assert iou.shape == (2, 3, 3)
    logits.sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_predict_masks_chunking_matches_unchunked(tiny):
    emb = tiny.embed(torch.rand(1, 3, 64, 64))
    points = torch.rand(1, 7, 2) * 63
    a = tiny.predict_masks(emb, points, (64, 64))
    b = tiny.predict_masks(emb, points, (64, 64), points_chunk=3)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.iou, b.iou, atol=1e-5, rtol=1e-5)


def test_predict_masks_at_takes_pixel_centres_at_half(tiny):
    emb = tiny.embed(torch.rand(1, 3, 64, 64))
    ours = torch.tensor([[[0.5, 0.5], [10.5, 30.5]]])  # centres of pixels (0, 0) and (10, 30)
    a = tiny.predict_masks_at(emb, ours, (64, 64))
    b = tiny.predict_masks(emb, torch.tensor([[[0.0, 0.0], [10.0, 30.0]]]), (64, 64))
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.iou, b.iou)


@pytest.mark.parametrize(
    ("emb", "points", "message"),
    [
        (torch.randn(1, 128, 8, 8), torch.zeros(1, 2, 2), "256 channels"),
        (torch.randn(1, 256, 8, 8), torch.zeros(1, 2, 3), "shape"),
        (torch.randn(2, 256, 8, 8), torch.zeros(1, 2, 2), "batch"),
    ],
)
def test_predict_masks_rejects_bad_inputs(tiny, emb, points, message):
    with pytest.raises(ValueError, match=message):
        tiny.predict_masks(emb, points, (64, 64))


def test_embed_rejects_non_images(tiny):
    with pytest.raises(ValueError, match=r"\(n, 3, h, w\)"):
        tiny.embed(torch.rand(3, 64, 64))


def test_grid_points_cover_the_image_row_major():
    pts = grid_points(64, 32, 4)
    assert pts.shape == (16, 2)
    assert torch.allclose(pts[0], torch.tensor([3.5, 7.5]))
    assert torch.allclose(pts[1], torch.tensor([11.5, 7.5]))  # x varies fastest
    assert pts[:, 0].max() < 32 and pts[:, 1].max() < 64


def test_paint_segments_is_greedy_and_non_overlapping():
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, :, :2] = True  # left half, best score
    masks[1, :, 1:] = True  # overlaps the left half in column 1
    masks[2, 0, 3] = True  # too small
    ids = paint_segments(masks, torch.tensor([0.9, 0.8, 0.95]), MaskGenerationConfig(), min_area=2)
    assert (ids[:, :2] == 0).all()
    assert (ids[:, 2:] == 1).all()


def test_hierarchical_masks_from_images_and_embeddings(tiny):
    tiny.generation = MaskGenerationConfig(points_per_side=3, min_predicted_iou=-1.0)
    images = torch.rand(2, 3, 32, 32)
    masks = tiny.hierarchical_masks(images)
    for level in masks.levels():
        assert level.shape == (2, 32, 32) and level.dtype == torch.int64
        assert level.min() >= -1
    assert (masks.medium >= 0).any()  # random weights still give some confident segments
    with pytest.raises(ValueError, match="image_size"):
        tiny.hierarchical_masks(tiny.embed(images))
    from_emb = tiny.hierarchical_masks(tiny.embed(images), image_size=(32, 32))
    assert torch.equal(from_emb.large, masks.large)


def test_real_sam_loading_path_round_trips_small_vit(tmp_path):
    torch.manual_seed(1)
    sam = build_sam(SMALL_VIT)
    path = tmp_path / "sam_small.pth"
    torch.save(sam.state_dict(), path)  # the released checkpoints are plain state dicts
    teacher = load_sam(path, SMALL_VIT)
    images = torch.rand(1, 3, 40, 64)
    emb = teacher.embed(images)
    assert emb.shape == (1, 256, 4, 4)
    torch.testing.assert_close(emb, SamTeacher(sam).embed(images))
    logits, _ = teacher.predict_masks(emb, torch.tensor([[[10.0, 20.0]]]), (40, 64))
    assert logits.shape == (1, 1, 3, 40, 64)


def test_sam_loading_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sam(tmp_path / "nope.pth", SMALL_VIT)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_sam(corrupt, SMALL_VIT)
    other = tmp_path / "other.pth"
    torch.save(build_sam(SamArchitecture(32, 3, 2, (1,), 64, 16, 2)).state_dict(), other)
    with pytest.raises(ValueError, match="unexpected"):
        load_sam(other, SMALL_VIT)
    with pytest.raises(ValueError, match="unknown SAM model type"):
        load_sam(other, "vit_tiny")


@pytest.mark.slow
def test_registry_name_goes_through_segment_anything_and_rejects_mismatch(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(build_sam(SMALL_VIT).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit 'vit_b'"):
        load_sam(path, "vit_b")


def test_tiny_sam_checkpoint_round_trip_and_kind_check(tmp_path, tiny):
    path = save_tiny_sam(tmp_path / "tiny_sam.pt", tiny.sam, TinySamConfig(), {"step": 3})
    loaded = load_tiny_sam(path)
    images = torch.rand(1, 3, 64, 64)
    # Weights are stored in float16.
    torch.testing.assert_close(loaded.embed(images), tiny.embed(images), atol=5e-2, rtol=5e-2)
    torch.save({"format": "semanticsplat-ckpt"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError):
        load_tiny_sam(tmp_path / "bad.pt")


def test_shipped_teacher_checkpoints_load_and_fit_the_budget():
    assert DEFAULT_TINY_SAM.is_file() and DEFAULT_TINY_LSEG.is_file(), "shipped teachers missing"
    total = DEFAULT_TINY_SAM.stat().st_size + DEFAULT_TINY_LSEG.stat().st_size
    assert total <= 10e6
    teacher = load_tiny_sam()
    assert teacher.embed(torch.rand(1, 3, 64, 64)).shape == (1, 256, 8, 8)
