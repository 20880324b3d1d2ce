"""Tiny LSeg teacher, MiniLM text encoder, and the training loops (a few steps)."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from semanticsplat_ros.teachers.base import Teacher, TextEncoder
from semanticsplat_ros.teachers.lseg import (
    LanguageTeacher,
    TinyLSeg,
    TinyLSegConfig,
    load_tiny_lseg,
    save_tiny_lseg,
)
from semanticsplat_ros.teachers.sam import TinySamConfig
from semanticsplat_ros.teachers.train import (
    TinyLSegTraining,
    TinySamTraining,
    ViewPool,
    mask_iou,
    masks_at_points,
    sample_points,
    train_tiny_lseg,
    train_tiny_sam,
)


class HashTextEncoder:
    """Deterministic random unit vectors per string (no language model needed)."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def encode(self, texts):
        rows = []
        for t in texts:
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return F.normalize(torch.stack(rows), dim=-1)


def random_pool(n: int = 4, size: int = 64) -> ViewPool:
    g = torch.Generator().manual_seed(0)
    ids = torch.zeros(n, size, size, dtype=torch.long)
    ids[:, size // 2 :] = 1
    ids[:, :, : size // 4] += 2  # four rectangles
    return ViewPool(
        images=torch.rand(n, 3, size, size, generator=g),
        labels=ids.clone(),
        parts=ids.clone(),
        instances=ids.clone(),
        groups=(ids >= 2).long(),
    )


def test_tiny_lseg_features_are_unit_norm_at_stride_2():
    model = TinyLSeg(TinyLSegConfig())
    feats = model(torch.rand(2, 3, 64, 64))
    assert feats.shape == (2, 384, 32, 32)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(2, 32, 32))


def test_tiny_lseg_config_is_validated():
    with pytest.raises(ValueError, match="output_stride"):
        TinyLSeg(TinyLSegConfig(output_stride=3))


def test_language_teacher_embeds_any_size_and_segments():
    teacher = LanguageTeacher(TinyLSeg().eval(), HashTextEncoder(), 64)
    assert isinstance(teacher, Teacher)
    assert teacher.embed(torch.rand(1, 3, 48, 80)).shape == (1, 384, 32, 32)
    labels = teacher.segment(torch.rand(2, 3, 48, 80), ["wall", "floor", "chair"])
    assert labels.shape == (2, 48, 80)
    assert labels.min() >= 0 and labels.max() <= 2


def test_tiny_lseg_checkpoint_round_trip_and_width_check(tmp_path):
    model = TinyLSeg().eval()
    path = save_tiny_lseg(tmp_path / "lseg.pt", model, {"step": 1})
    teacher = load_tiny_lseg(path, text_encoder=HashTextEncoder())
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(teacher.embed(x), model(x), atol=2e-2, rtol=2e-2)
    with pytest.raises(ValueError, match="width"):
        load_tiny_lseg(path, text_encoder=HashTextEncoder(dim=512))
    with pytest.raises(ValueError, match="does not exist"):
        load_tiny_lseg(tmp_path / "missing.pt", text_encoder=HashTextEncoder())
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_tiny_lseg(tmp_path / "garbage.pt", text_encoder=HashTextEncoder())


def test_point_sampling_and_masks_at_points():
    pool = random_pool(2)
    points = sample_points(pool.instances, 6, torch.Generator().manual_seed(1))
    assert points.shape == (2, 6, 2)
    assert points.min() >= 0 and points.max() < 64
    masks = masks_at_points(pool.instances, points)
    for i in range(2):
        for j in range(6):
            x, y = points[i, j].tolist()
            expected = pool.instances[i] == pool.instances[i, y, x]
            assert torch.equal(masks[i, j].bool(), expected)
    assert mask_iou(masks, masks).min() == 1.0


def test_train_loops_run_and_reduce_lseg_loss():
    pool = random_pool(4, size=32)
    model, stats = train_tiny_lseg(
        pool,
        HashTextEncoder(),
        TinyLSegConfig(image_size=32),
        TinyLSegTraining(steps=10, batch_size=2),
    )
    assert stats["acc"] > 0.25  # 4 region classes: better than chance after a few steps
    assert not model.training
    teacher, sam_stats = train_tiny_sam(
        pool,
        TinySamConfig(image_size=32),
        TinySamTraining(steps=1, batch_size=1, points_per_image=2),
    )
    assert torch.isfinite(torch.tensor(sam_stats["loss"]))
    assert not teacher.training


@pytest.fixture(scope="module")
def minilm():
    from semanticsplat_ros.teachers.text import MiniLMTextEncoder

    return MiniLMTextEncoder()


def test_minilm_is_an_offline_384d_unit_text_encoder(minilm):
    assert isinstance(minilm, TextEncoder)
    emb = minilm.encode(["sofa", "couch", "ceiling", "sofa"])
    assert emb.shape == (4, 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(emb[0], emb[3])
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2  # a real language model: synonyms are close


def test_text_encoders_reject_bad_input(minilm):
    with pytest.raises(TypeError, match="single string"):
        minilm.encode("sofa")
    with pytest.raises(ValueError, match="empty"):
        minilm.encode([])
    with pytest.raises(ValueError, match="empty strings"):
        minilm.encode(["sofa", " "])
