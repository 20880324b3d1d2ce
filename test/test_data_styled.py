"""World styles: classic unchanged, varied / held-out examples deterministic and well formed."""

from __future__ import annotations

import pytest
import torch

from semanticsplat_ros.data.contact_sheet import contact_sheet
from semanticsplat_ros.data.styled import WORLD_STYLES, styled_scene
from semanticsplat_ros.data.synthetic import SyntheticDataset, ViewSampling, make_example
from semanticsplat_ros.data.world import make_scene
from semanticsplat_ros.train.trainer import TrainConfig

VAL = range(100_000, 100_006)


def test_classic_style_is_the_embedded_world():
    assert styled_scene(5, "classic").primitives == make_scene(5).primitives
    a = make_example(5, 32, 40)
    b = make_example(5, 32, 40, sampling=ViewSampling(style="classic"))
    assert torch.equal(a.context.images, b.context.images)
    assert a.scene_id == "synthetic_000005_0"


@pytest.mark.parametrize("style", ["varied", "held-out"])
def test_styled_examples_are_deterministic_and_complete(style):
    sampling = ViewSampling(style=style)
    for seed in VAL:
        a = make_example(seed, 48, 64, num_context=2, num_target=2, index=1, sampling=sampling)
        b = make_example(seed, 48, 64, num_context=2, num_target=2, index=1, sampling=sampling)
        assert torch.equal(a.context.images, b.context.images)
        assert torch.equal(a.target.images, b.target.images)
        for views in (a.context, b.target):
            assert views.images.shape[-2:] == (48, 64)
            assert float(views.images.min()) >= 0.0 and float(views.images.max()) <= 1.0
            assert float((views.depth > 0).float().mean()) > 0.99
            assert int((views.labels >= 0).all()) == 1
        assert a.scene_id.startswith("varied_" if style == "varied" else "heldout_")


def test_varied_scenes_are_lit_and_differ_from_classic():
    scene = styled_scene(VAL[0], "varied")
    assert scene.ao_strength > 0 and scene.exposure != 1.0
    assert scene.primitives != make_scene(VAL[0]).primitives
    held = styled_scene(VAL[0], "held-out")
    assert held.primitives != scene.primitives


def test_varied_examples_draw_their_own_cameras():
    sampling = ViewSampling(style="varied")
    fx = set()
    baselines = []
    for i in range(12):
        ex = make_example(VAL[1], 32, 32, num_context=2, num_target=1, index=i, sampling=sampling)
        fx.add(round(float(ex.context.K[0, 0, 0]), 3))
        centres = ex.context.c2w[:, :3, 3]
        baselines.append(float((centres[0] - centres[1]).norm()))
    assert len(fx) > 6  # a random FOV per example
    assert max(baselines) > 0.05 and min(baselines) < max(baselines)


def test_rig_instant_keeps_the_named_rig_in_a_varied_world():
    sampling = ViewSampling(rig="stereo", rig_instant=True, style="varied")
    ex = make_example(VAL[2], 32, 32, num_context=2, num_target=1, sampling=sampling)
    centres = ex.context.c2w[:, :3, 3]
    assert float((centres[0] - centres[1]).norm()) == pytest.approx(0.11, abs=1e-4)


def test_dataset_and_config_take_the_style():
    ds = SyntheticDataset(VAL, 32, 32, sampling=ViewSampling(style="held-out"))
    assert ds[0].scene_id.startswith("heldout_")
    with pytest.raises(ValueError, match="unknown world style"):
        ViewSampling(style="photoreal")
    with pytest.raises(ValueError, match="held-out is the evaluation's"):
        TrainConfig(style="held-out")
    assert TrainConfig(style="varied").style == "varied"


def test_contact_sheet_of_each_style():
    for style in WORLD_STYLES:
        sheet = contact_sheet(range(100_000, 100_002), size=32, style=style)
        assert sheet.size[0] > 2 * 32
    with pytest.raises(ValueError, match="unknown world style"):
        contact_sheet(range(0, 1), size=32, style="nope")


def test_teacher_pool_renders_each_style():
    from semanticsplat_ros.teachers.train import render_pool

    classic = render_pool(range(100_000, 100_002), 32, 32, 1)
    both = render_pool(range(100_000, 100_002), 32, 32, 1, styles=("classic", "varied"))
    assert len(classic) == 2 and len(both) == 4
    assert torch.equal(both.images[:2], classic.images)
    assert not torch.equal(both.images[2:], classic.images)


def test_eval_style_cli(tmp_path, capsys):
    import json

    from semanticsplat_ros.cli import main

    out = tmp_path / "t.json"
    argv = ["eval", "--teachers", "--style", "held-out", "--seeds", "100000:100001"]
    argv += ["--height", "32", "--width", "32", "--no-progress"]
    assert main([*argv, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["style"] == "held-out" and "lseg" in results["teachers"]
    assert main(["eval", "--style", "varied", "--data", str(tmp_path)]) == 1
    assert "--style picks synthetic scenes" in capsys.readouterr().err
