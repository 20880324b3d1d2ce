"""Checkpoint format: round trip, and a clear ValueError for every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semanticsplat_ros.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_checkpoint,
    save_checkpoint,
)
from semanticsplat_ros.model import SemanticSplat, load_model, save_model
from semanticsplat_ros.model.testing import random_views, tiny_config


@pytest.fixture(scope="module")
def model() -> SemanticSplat:
    torch.manual_seed(0)
    return SemanticSplat(tiny_config()).eval()


def test_model_round_trip(tmp_path: Path, model: SemanticSplat) -> None:
    path = save_model(tmp_path / "m.pt", model, {"step": 7})
    raw = torch.load(path, weights_only=False)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == CHECKPOINT_VERSION
    assert raw["kind"] == "semanticsplat_model" and raw["config"] == model.config.to_dict()
    loaded, meta = load_model(path)
    assert meta["step"] == 7 and "package_version" in meta
    assert loaded.config == model.config
    views = random_views(1, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(views).gaussians.means, model(views).gaussians.means)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a semanticsplat checkpoint"):
        load_checkpoint(other)


def test_wrong_kind_and_version(tmp_path: Path, model: SemanticSplat) -> None:
    path = save_checkpoint(tmp_path / "t.pt", model, model.config, kind="tiny_sam_teacher")
    with pytest.raises(ValueError, match="'tiny_sam_teacher', expected a 'semanticsplat_model'"):
        load_model(path)
    assert load_checkpoint(path, expected_kind="tiny_sam_teacher").kind == "tiny_sam_teacher"
    raw = torch.load(path, weights_only=False)
    raw["version"] = 99
    torch.save(raw, path)
    with pytest.raises(ValueError, match="version 99"):
        load_checkpoint(path, expected_kind=None)


def test_weights_that_do_not_fit_name_the_keys(tmp_path: Path, model: SemanticSplat) -> None:
    state = dict(model.state_dict())
    state.pop("backbone.stem.0.weight")
    state["extra.weight"] = torch.zeros(1)
    state["depth_head.refine.4.bias"] = torch.zeros(5)
    path = save_checkpoint(tmp_path / "m.pt", state, model.config)
    with pytest.raises(ValueError) as info:
        load_model(path)
    msg = str(info.value)
    assert "missing: backbone.stem.0.weight" in msg
    assert "unexpected: extra.weight" in msg
    assert "depth_head.refine.4.bias: checkpoint (5,)" in msg


def test_unknown_config_field_is_reported(tmp_path: Path, model: SemanticSplat) -> None:
    config = model.config.to_dict()
    config["backbone"]["width_multiplier"] = 2
    path = save_checkpoint(tmp_path / "m.pt", model, config)
    with pytest.raises(ValueError, match="width_multiplier"):
        load_model(path)
