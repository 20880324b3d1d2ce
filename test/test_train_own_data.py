"""Training and evaluating on one's own data: a folder of ScanNet-layout scenes (``--data``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semanticsplat_ros.cli import main
from semanticsplat_ros.model import load_model


@pytest.fixture(scope="module")
def scannet_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own_data") / "scenes"
    code = main(
        ["make-data", "--out", str(out), "--seeds", "0:2", "--height", "32", "--width", "32",
         "--views-per-scene", "6", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return out


def test_train_then_eval_on_a_scannet_folder(scannet_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(
        ["train", "--config", "small", "--stage", "0", "--data", str(scannet_folder),
         "--steps", "2", "--batch-size", "2", "--height", "32", "--width", "32",
         "--out", str(run), "--set", "examples_per_scene=3", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    _, meta = load_model(run / "model.pt")
    assert meta["train_config"]["data"] == str(scannet_folder) and meta["step"] == 2
    out = tmp_path / "eval.json"
    code = main(
        ["eval", "--checkpoint", str(run / "model.pt"), "--data", str(scannet_folder),
         "--examples-per-scene", "1", "--protocols", "nvs,language", "--json", str(out),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert results["data"] == str(scannet_folder) and results["num_examples"] == 2
    assert results["nvs"]["psnr"] > 0 and "target" in results["language"]


def test_eval_refuses_the_synthetic_only_options_with_data(scannet_folder: Path, capsys) -> None:
    assert main(["eval", "--data", str(scannet_folder), "--baseline"]) != 0
    assert "not --data" in capsys.readouterr().err
