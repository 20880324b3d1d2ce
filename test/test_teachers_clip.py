"""Dense CLIP teacher (MaskCLIP) and the open_clip text tower, with a tiny random-weight config."""

from __future__ import annotations

import json

import pytest
import torch

from semanticsplat_ros.teachers.base import Teacher, TextEncoder
from semanticsplat_ros.teachers.clip import DenseClipTeacher, load_clip

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    root = tmp_path_factory.mktemp("clip")
    config = root / "tiny-test-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-test-clip", pretrained=None)
    weights = root / "open_clip_model.bin"
    torch.save(model.state_dict(), weights)
    return model.eval(), config, weights


def test_dense_clip_round_trip_through_the_user_loading_path(tiny_clip):
    model, config, weights = tiny_clip
    teacher = load_clip(weights, config_file=config)
    assert isinstance(teacher, Teacher) and isinstance(teacher.text_encoder, TextEncoder)
    images = torch.rand(2, 3, 48, 48)  # resized to the model's 32×32
    feats = teacher.embed(images)
    assert feats.shape == (2, 32, 4, 4)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(2, 4, 4))
    import open_clip

    reference = DenseClipTeacher(model, open_clip.get_tokenizer("tiny-test-clip"))
    torch.testing.assert_close(feats, reference.embed(images))
    text = teacher.text_encoder.encode(["a chair", "a wall"])
    assert text.shape == (2, 32)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))


def test_dense_features_are_local(tiny_clip):
    """The value path keeps patches separate: changing one patch barely moves far patches."""
    _, config, weights = tiny_clip
    teacher = load_clip(weights, config_file=config)
    images = torch.rand(1, 3, 32, 32)
    edited = images.clone()
    edited[..., :8, :8] = 1 - edited[..., :8, :8]
    a, b = teacher.embed(images), teacher.embed(edited)
    change = (a - b).norm(dim=1)[0]
    assert change[0, 0] > 0
    assert change[0, 0] > change[3, 3]


def test_clip_loading_errors_are_clear(tiny_clip, tmp_path):
    _, config, weights = tiny_clip
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "missing.bin", config_file=config)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_clip(bad, config_file=config)
    other = dict(TINY_CLIP, embed_dim=16)
    other_config = tmp_path / "tiny-test-clip-16.json"
    other_config.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="does not fit"):
        load_clip(weights, config_file=other_config)
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_clip(weights, model_name="no-such-model")
