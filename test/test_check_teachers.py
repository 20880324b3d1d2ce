"""``semanticsplat check-teachers`` end to end, on the released architectures with random weights.

segment_anything ``vit_b`` and open_clip ``ViT-B-16`` are built with random weights (offline) and
saved once per session (the ``released`` fixture, test/conftest.py) as the plain state-dict files the released checkpoints are; the command
loads them from those files like any user's download. The success run is a real subprocess of
the CLI (one vit_b forward at 1024²: 30-110 s on two shared CPU cores); the failure modes go
through ``cli.main`` in-process. "A file of another architecture" is the same files given under
another released name (vit_b weights as ``vit_l:``, ViT-B-16 weights as ``open_clip:ViT-B-32:``,
SAM weights as open_clip): as much a mismatch as a vit_l file, without building a 1.2 GB vit_l.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from semanticsplat_ros.cli import main

PREFIX = "semanticsplat check-teachers: error: "


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "semanticsplat_ros.cli", "check-teachers", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=400)


def _one_line_failure(capsys, *args: str) -> str:
    """Run the command in-process; it must exit 2 with exactly one stderr line, no stdout."""
    assert main(["check-teachers", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(PREFIX) and "Traceback" not in err
    return err.strip()


@pytest.mark.real_architectures
def test_vit_b_sam_and_vit_b_16_clip_run_end_to_end(released):
    result = _cli(
        "--sam",
        f"vit_b:{released['sam']}",
        "--language",
        f"open_clip:ViT-B-16:{released['clip']}",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "No pretrained weights" not in result.stderr
    report = json.loads(result.stdout)
    assert report["view"] == {"seed": 0, "height": 240, "width": 320, "device": "cpu"}
    sam = report["sam"]
    assert (sam["kind"], sam["spec"]) == ("vit_b", f"vit_b:{released['sam']}")
    assert sam["input_size"] == 1024
    assert sam["embedding_shape"] == [1, 256, 64, 64]
    assert sam["masks_shape"] == [1, 1, 3, 240, 320]
    assert sam["point_xy"] == [160.5, 120.5]
    assert len(sam["predicted_iou"]) == 3
    assert all(0.0 <= f <= 1.0 for f in sam["mask_fraction"])
    assert 0.0 <= sam["best_iou_with_instance"] <= 1.0
    language = report["language"]
    assert language["kind"] == "open_clip:ViT-B-16"
    assert language["features_shape"] == [1, 512, 14, 14]  # 224 / patch 16, CLIP's joint width
    assert language["text_embedding_shape"] == [1, 512]
    low, high = language["cosine_range"]
    assert -1.0 <= low <= high <= 1.0
    assert language["cosine_inside"] is not None  # "floor" is in view
    assert low <= language["cosine_inside"] <= high
    for key in ("load_s", "embed_s", "decode_s"):
        assert sam[key] > 0, key
    for key in ("load_s", "embed_s", "text_s"):
        assert language[key] > 0, key


def test_tiny_defaults_run(capsys):
    assert main(["check-teachers", "--height", "96", "--width", "128", "--text", "wall"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["sam"]["spec"], report["language"]["spec"]) == ("tiny", "tiny_lseg")
    assert report["sam"]["embedding_shape"][:2] == [1, 256]
    assert report["sam"]["masks_shape"] == [1, 1, 3, 96, 128]
    assert report["language"]["features_shape"][:2] == [1, 384]
    assert report["language"]["text_embedding_shape"] == [1, 384]


def test_missing_files_fail_in_one_line(capsys, tmp_path):
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    line = _one_line_failure(capsys, "--sam", f"vit_b:{missing}")
    assert f"{missing} does not exist" in line
    missing = tmp_path / "open_clip_pytorch_model.bin"
    line = _one_line_failure(capsys, "--language", f"open_clip:ViT-B-16:{missing}")
    assert f"{missing} does not exist" in line


def test_bad_specs_fail_in_one_line(capsys):
    assert "needs a weights file" in _one_line_failure(capsys, "--sam", "vit_b")
    line = _one_line_failure(capsys, "--language", "open_clip:RN50:/w/rn50.bin")
    assert "need a ViT image tower" in line


@pytest.mark.real_architectures
def test_vit_b_weights_given_as_vit_l_fail_in_one_line(capsys, released):
    path = released["sam"]
    line = _one_line_failure(capsys, "--sam", f"vit_l:{path}")
    assert f"SAM checkpoint {path} holds vit_b weights and does not fit 'vit_l'" in line


@pytest.mark.real_architectures
def test_vit_b_16_weights_given_as_vit_b_32_fail_in_one_line(capsys, caplog, released):
    path = released["clip"]
    line = _one_line_failure(capsys, "--language", f"open_clip:ViT-B-32:{path}")
    assert f"open_clip checkpoint {path}" in line
    assert "of the sizes of ViT-B-16" in line and "does not fit 'ViT-B-32'" in line
    # open_clip's own "initialized randomly" warning (logged while the skeleton is built) must
    # not reach the user: a real process would print it to stderr as a second line.
    assert not [r for r in caplog.records if "No pretrained weights" in r.getMessage()]


@pytest.mark.real_architectures
def test_weights_of_the_other_family_fail_in_one_line(capsys, released):
    line = _one_line_failure(capsys, "--language", f"open_clip:ViT-B-16:{released['sam']}")
    assert f"open_clip checkpoint {released['sam']} holds no open_clip image tower" in line
    line = _one_line_failure(capsys, "--sam", f"vit_b:{released['clip']}")
    assert f"SAM checkpoint {released['clip']} does not fit 'vit_b'" in line


@pytest.mark.real_architectures
def test_corrupt_files_fail_in_one_line(capsys, released, tmp_path):
    truncated = tmp_path / "sam_vit_b_truncated.pth"  # a download cut short
    with released["sam"].open("rb") as f:
        truncated.write_bytes(f.read(4 << 20))
    line = _one_line_failure(capsys, "--sam", f"vit_b:{truncated}")
    assert f"SAM checkpoint {truncated} is corrupt or not a weights file" in line
    garbage = tmp_path / "open_clip_garbage.bin"
    garbage.write_bytes(b"<html>404 Not Found</html>" * 100)  # a failed download
    line = _one_line_failure(capsys, "--language", f"open_clip:ViT-B-16:{garbage}")
    assert f"open_clip checkpoint {garbage} is corrupt or not a weights file" in line
