"""The paper-scale recipe end to end on the released teacher architectures (random weights): a
synthetic ScanNet-layout scene, ``cache-teachers`` with segment_anything vit_b and open_clip
ViT-B-16, three steps each of the ``paper_stage1`` and ``paper_stage2`` configs (the ``paper``
model, 256-d SAM and 512-d CLIP features) reading that cache, then ``eval`` of the result with
the same teachers, each through the CLI.

The images are 64², not the configs' 256²: the recipe and the model are the same, and a 256²
step takes about two minutes on two CPU cores (``semanticsplat bench train`` measures it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from semanticsplat_ros.cli import main
from semanticsplat_ros.model import load_model
from semanticsplat_ros.teachers.frame_cache import FrameFeatureCache
from semanticsplat_ros.teachers.spec import recorded_teachers

SIZE = 64


def _train(stage: int, work: Path, sam: str, language: str, *extra: str) -> Path:
    out = work / f"stage{stage}"
    code = main(
        ["train", "--config", f"paper_stage{stage}", "--data", str(work / "data"),
         "--teacher-cache", str(work / "cache"), "--out", str(out), "--steps", "3",
         "--height", str(SIZE), "--width", str(SIZE), "--device", "cpu", "--no-progress",
         "--set", "batch_size=1", "--set", "num_target=1", "--set", "num_workers=0",
         "--set", "warmup_steps=1", "--set", "examples_per_scene=3", "--set", "precision=fp32",
         "--set", "loss.hcam_points_per_side=2", "--set", f"loss.sam_teacher={sam}",
         "--set", f"loss.language_teacher={language}", *extra]
    )  # fmt: skip
    assert code == 0
    return out / "model.pt"


@pytest.mark.real_architectures
def test_paper_recipe_caches_trains_and_evaluates_with_vit_b_and_clip(
    released: dict[str, Path], tmp_path: Path, capsys
) -> None:
    sam, language = f"vit_b:{released['sam']}", f"open_clip:ViT-B-16:{released['clip']}"
    data, cache = tmp_path / "data", tmp_path / "cache"
    assert main(["make-data", "--out", str(data), "--seeds", "0:1", "--height", str(SIZE),
                 "--width", str(SIZE), "--views-per-scene", "3", "--no-progress"]) == 0  # fmt: skip
    assert main(["cache-teachers", "--data", str(data), "--out", str(cache), "--sam", sam,
                 "--language", language, "--height", str(SIZE), "--width", str(SIZE),
                 "--hcam-points-per-side", "2", "--batch-size", "3", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "sam [256, 64, 64], language [512, 14, 14] per frame" in printed
    assert "cache complete" in printed
    assert FrameFeatureCache(cache).manifest["teachers"]["language"]["feature_dim"] == 512

    stage1 = _train(1, tmp_path, sam, language)
    stage2 = _train(2, tmp_path, sam, language, "--init", str(stage1))
    model, meta = load_model(stage2)
    assert (model.config.name, model.config.sam_dim, model.config.language_dim) == (
        "paper",
        256,
        512,
    )
    assert meta["stage"] == 2 and meta["step"] == 3
    recorded = recorded_teachers(meta)
    assert recorded is not None
    assert (recorded["sam"]["kind"], recorded["language"]["kind"]) == (
        "vit_b",
        "open_clip:ViT-B-16",
    )
    capsys.readouterr()

    # Eval takes the teachers the checkpoint records (their files are still where they were),
    # reading their features of these frames from the cache.
    figures = tmp_path / "eval.json"
    code = main(
        ["eval", "--checkpoint", str(stage2), "--data", str(data), "--teacher-cache", str(cache),
         "--examples-per-scene", "1",
         "--num-target", "1", "--protocols", "nvs,language,promptable", "--grid", "2",
         "--device", "cpu", "--json", str(figures), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    results = json.loads(figures.read_text())
    assert results["teacher_specs"] == {"sam": sam, "language": language}
    assert results["resolution"] == [SIZE, SIZE] and results["num_examples"] == 1
    assert math.isfinite(results["nvs"]["psnr"]) and results["nvs"]["psnr"] > 5
    for protocol in ("language", "promptable"):
        for column in ("ours", "teacher"):
            miou = results[protocol]["target"][column]["miou"]
            assert 0.0 <= miou <= 1.0, (protocol, column, miou)

    # A tiny-teacher evaluation of this model is refused before any teacher is loaded.
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(stage2), "--data", str(data), "--sam", "tiny",
                 "--language", "tiny_lseg", "--device", "cpu", "--no-progress"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "distilled from sam teacher vit_b" in err
