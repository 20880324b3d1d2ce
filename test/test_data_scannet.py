"""ScanNet-format writer / loader: round trip, make-data command, bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semanticsplat_ros.cli import main as cli_main
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.commands import write_synthetic_scene
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import rig_cameras
from semanticsplat_ros.data.scannet import (
    NYU40_TO_CLASS,
    ScanNetDataset,
    ScanNetScene,
    read_intrinsics,
    write_scene,
)
from semanticsplat_ros.data.world import make_scene


def _render(seed: int = 2, n: int = 6, h: int = 40, w: int = 48):
    scene = make_scene(seed)
    cams = [rig_cameras(scene, "mono", 0.4 * k, h, w) for k in range(n)]
    return render_views(scene, torch.cat([c[0] for c in cams]), torch.cat([c[1] for c in cams]),
                        h, w)  # fmt: skip


def test_round_trip_returns_the_same_arrays(tmp_path: Path):
    views = _render()
    write_scene(tmp_path, "scene_a", views)
    loaded = ScanNetScene(tmp_path / "scene_a").load_views(list(range(6)))
    assert torch.allclose(loaded.images, views.images, atol=0.5 / 255 + 1e-6)
    assert torch.allclose(loaded.depth, views.depth, atol=0.5e-3 + 1e-6)
    assert torch.allclose(loaded.K, views.K, atol=1e-5)
    assert torch.allclose(loaded.c2w, views.c2w, atol=1e-6)
    for name in ("labels", "instances", "parts", "groups"):
        assert torch.equal(getattr(loaded, name), getattr(views, name)), name
    assert torch.allclose(loaded.near, views.near) and torch.allclose(loaded.far, views.far)
    # ScanNet's intrinsic convention on disk: integer pixel centres (ours - 0.5)
    on_disk = np.loadtxt(tmp_path / "scene_a" / "intrinsic" / "intrinsic_color.txt")
    assert on_disk[0, 2] == pytest.approx(float(views.K[0, 0, 2]) - 0.5)


def test_jpeg_accepted_and_resize_scales_intrinsics(tmp_path: Path):
    views = _render(n=4)
    write_scene(tmp_path, "s", views, image_format="jpg")
    ds = ScanNetDataset(tmp_path, height=20, width=24, num_context=2, num_target=1)
    ex = ds[0]
    assert ex.context.images.shape == (2, 3, 20, 24) and ex.target.images.shape == (1, 3, 20, 24)
    assert ex.context.depth.shape == (2, 20, 24) and ex.context.labels.dtype == torch.int64
    assert torch.allclose(ex.context.K[0, :2], views.K[0, :2] / 2, atol=1e-4)
    assert float((ex.context.images - 0.5).abs().mean()) > 0.01


def test_view_sampling_targets_between_context(tmp_path: Path):
    write_scene(tmp_path, "s", _render(n=12, h=16, w=16))
    ds = ScanNetDataset(tmp_path, 16, 16, num_context=3, num_target=2, examples_per_scene=5)
    scene = ds.scenes[0]
    for i in range(len(ds)):
        context, targets = ds.sample_frames(scene, np.random.default_rng([0, i]))
        assert len(context) == 3 and len(set(context)) == 3 and len(targets) == 2
        assert all(min(context) < t < max(context) for t in targets)
        assert not set(context) & set(targets)


def test_make_data_command_writes_loadable_scenes(tmp_path: Path, capsys):
    out = tmp_path / "ds"
    rc = cli_main(["make-data", "--out", str(out), "--seeds", "3:5", "--height", "24",
                   "--width", "32", "--views-per-scene", "4", "--no-progress"])  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["scene_000003", "scene_000004"]
    for sub in ("color", "depth", "pose", "intrinsic", "label", "instance"):
        assert (out / "scene_000003" / sub).is_dir()
    ds = ScanNetDataset(out, 24, 32)
    assert len(ds) == 2 and ds[1].scene_id == "scene_000004"
    assert cli_main(["make-data", "--out", str(out), "--seeds", "5:2"]) == 1
    assert "bad seeds" in capsys.readouterr().err


def test_multi_camera_rig_writes_a_scene_per_camera(tmp_path: Path):
    dirs = write_synthetic_scene(tmp_path, 1, 16, 16, views_per_scene=3, rig="head_wrist")
    assert [d.name for d in dirs] == ["scene_000001_head", "scene_000001_wrist"]
    k_head = read_intrinsics(dirs[0] / "intrinsic" / "intrinsic_color.txt")
    k_wrist = read_intrinsics(dirs[1] / "intrinsic" / "intrinsic_color.txt")
    assert k_wrist[0, 0] < k_head[0, 0]  # wider wrist lens


@pytest.fixture
def scene_dir(tmp_path: Path) -> Path:
    write_scene(tmp_path, "s", _render(n=4, h=16, w=16))
    return tmp_path / "s"


def test_missing_file_is_named(scene_dir: Path):
    (scene_dir / "pose" / "2.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"pose/2\.txt"):
        ScanNetScene(scene_dir)


def test_missing_depth_is_named(scene_dir: Path):
    (scene_dir / "depth" / "1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"depth/1\.png"):
        ScanNetScene(scene_dir)


def test_missing_intrinsics_is_named(scene_dir: Path):
    (scene_dir / "intrinsic" / "intrinsic_color.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"intrinsic_color\.txt"):
        ScanNetScene(scene_dir)


def test_mismatched_image_size_is_named(scene_dir: Path):
    Image.new("RGB", (20, 16)).save(scene_dir / "color" / "3.png")
    with pytest.raises(ValueError, match=r"color/3\.png.*differs"):
        ScanNetScene(scene_dir).load_views([3])
    Image.fromarray(np.zeros((16, 30), np.uint16)).save(scene_dir / "label" / "1.png")
    with pytest.raises(ValueError, match=r"label/1\.png.*aspect"):
        ScanNetScene(scene_dir).load_views([1])


def test_non_invertible_pose_is_named(scene_dir: Path):
    (scene_dir / "pose" / "1.txt").write_text("0 0 0 0\n0 0 0 0\n0 0 0 0\n0 0 0 1\n")
    with pytest.raises(ValueError, match=r"pose/1\.txt"):
        ScanNetScene(scene_dir)
    # ScanNet's lost-tracking frames (-inf) can be skipped on request
    (scene_dir / "pose" / "1.txt").write_text("-inf -inf -inf -inf\n" * 4)
    assert len(ScanNetScene(scene_dir, skip_invalid_poses=True)) == 3


def test_garbage_pose_and_empty_root(tmp_path: Path, scene_dir: Path):
    (scene_dir / "pose" / "0.txt").write_text("not a matrix\n")
    with pytest.raises(ValueError, match=r"pose/0\.txt"):
        ScanNetScene(scene_dir)
    with pytest.raises(FileNotFoundError, match="missing dataset folder"):
        ScanNetDataset(tmp_path / "nope", 8, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no scene folders"):
        ScanNetDataset(tmp_path / "empty", 8, 8)


def test_nyu40_label_map(scene_dir: Path):
    Image.fromarray(np.full((16, 16), 5, np.uint16)).save(scene_dir / "label" / "0.png")
    views = ScanNetScene(scene_dir).load_views([0], label_map=NYU40_TO_CLASS)
    assert (views.labels == CLASS_ID["chair"]).all()
