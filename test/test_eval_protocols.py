"""The evaluation protocols and the eval command's report, on a tiny random model (plumbing).

The figures of trained checkpoints come from `semanticsplat eval`; here we check the protocol
machinery: keys, ranges, the teacher columns, and that a perfect oracle scores 1.
"""

from __future__ import annotations

import pytest
import torch

from semanticsplat_ros.data.classes import NUM_CLASSES
from semanticsplat_ros.data.synthetic import SyntheticDataset
from semanticsplat_ros.eval.commands import markdown_tables
from semanticsplat_ros.eval.protocols import (
    ProtocolSettings,
    evaluate_model,
    flatten,
    promptable_view,
)
from semanticsplat_ros.model.semanticsplat import SemanticSplat
from semanticsplat_ros.model.testing import tiny_config
from semanticsplat_ros.teachers.lseg import LanguageTeacher, TinyLSeg
from semanticsplat_ros.teachers.sam import SamTeacher, build_tiny_sam
from semanticsplat_ros.teachers.text import shared_minilm


@pytest.fixture(scope="module")
def teachers():
    torch.manual_seed(0)
    sam = SamTeacher(build_tiny_sam().eval())
    lseg = TinyLSeg()
    lang = LanguageTeacher(lseg.eval(), shared_minilm(), lseg.config.image_size)
    return sam, lang


def test_evaluate_model_reports_every_table(teachers):
    sam, lang = teachers
    torch.manual_seed(0)
    config = tiny_config()
    config.language_dim = 384
    config.sam_dim = 256
    model = SemanticSplat(config)
    dataset = SyntheticDataset(range(200000, 200001), height=32, width=32)
    class_emb = torch.nn.functional.normalize(torch.randn(NUM_CLASSES, 384), dim=1)
    settings = ProtocolSettings(grid=4, prompt_chunk=16)
    res = evaluate_model(model, dataset, sam, lang, class_emb, settings, progress=False)
    flat = flatten(res)
    for key in (
        "nvs.psnr",
        "nvs.ssim",
        "depth.abs_rel",
        "language.target.ours.miou",
        "language.target.teacher.miou",
        "language.source.ours.acc",
        "language.consistency.ours",
        "language.consistency.teacher",
        "promptable.target.ours.miou",
        "promptable.target.teacher.miou",
    ):
        assert key in flat, key
        assert flat[key] is not None
    assert 0.0 <= flat["language.target.ours.miou"] <= 1.0
    assert 0.0 <= flat["promptable.source.teacher.acc"] <= 1.0
    assert flat["promptable.target.ours.points"] > 0
    table = markdown_tables({**res, "rows": {"ours": res}}, ["ours"])
    assert "Table 1" in table and "Table 2" in table and "Table 3" in table
    assert "2D teacher (per view)" in table


def testpromptable_view_protocol_scores_an_oracle_decoder_one():
    class Oracle:
        """Returns the ground-truth instance mask under each prompt as its third mask."""

        def __init__(self, instances):
            self.instances = instances

        def predict_masks(self, emb, points, size, chunk):
            pts = points[0] + 0.5
            ids = self.instances[pts[:, 1].long(), pts[:, 0].long()]
            gt = (self.instances[None] == ids[:, None, None]).float() * 20 - 10
            logits = torch.stack([-gt, -gt, gt], dim=1)[None]
            return type("P", (), {"logits": logits})()

        def predict_masks_at(self, emb, points, size, chunk):
            return self.predict_masks(emb, points - 0.5, size, chunk)

    inst = torch.zeros(16, 16, dtype=torch.long)
    inst[4:12, 4:12] = 1
    ious, accs = promptable_view(Oracle(inst), torch.zeros(256, 4, 4), inst, grid=4, chunk=16)
    assert len(ious) == 16
    assert ious == pytest.approx([1.0] * 16)
    assert accs == pytest.approx([1.0] * 16)


def test_per_scene_baseline_improves_with_its_budget(teachers):
    from semanticsplat_ros.eval.baseline import (
        BaselineConfig,
        evaluate_baseline,
        optimise_scene,
        time_to_match,
    )

    sam, lang = teachers
    dataset = SyntheticDataset(range(200000, 200001), height=32, width=32)
    class_emb = torch.nn.functional.normalize(torch.randn(NUM_CLASSES, 384), dim=1)
    config = BaselineConfig(checkpoints=(0.05, 1.0))
    records = optimise_scene(dataset[0], sam, lang, class_emb, budget_s=4.0, config=config)
    assert [r["fraction"] for r in records] == [0.05, 1.0]
    assert records[1]["steps"] > records[0]["steps"]
    assert records[1]["psnr"] > records[0]["psnr"]  # optimising the context views helps targets
    summary = evaluate_baseline(dataset, sam, lang, class_emb, 1.0, config, progress=False)
    assert len(summary["curve"]) == 2 and summary["curve"][0]["language_target_miou"] is not None
    assert time_to_match(summary["curve"], "psnr", -1.0) == summary["curve"][0]["seconds"]
    assert time_to_match(summary["curve"], "psnr", 1e9) is None
    with pytest.raises(ValueError):
        optimise_scene(dataset[0], sam, lang, class_emb, budget_s=0.0)


@pytest.mark.slow
def test_eval_baseline_on_fewer_scenes_is_compared_with_ours_on_the_same_scenes(tmp_path):
    """`eval --baseline --baseline-scenes 1` over 2 scenes: the time-to-equal targets are ours on
    the baseline's one scene, not ours' mean over both."""
    import json

    from semanticsplat_ros.cli import main

    out = tmp_path / "eval.json"
    argv = [
        "eval", "--seeds", "200000:200002", "--baseline", "--baseline-scenes", "1",
        "--baseline-factor", "3", "--protocols", "nvs,language", "--height", "32", "--width", "32",
        "--num-target", "1", "--no-progress", "--device", "cpu", "--json", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    same = result["rows"]["ours"]["on_baseline_scenes"]
    assert same["num_examples"] == 1 and result["rows"]["ours"]["num_examples"] == 2
    base = result["baseline"]
    assert base["num_examples"] == 1
    assert base["ours_psnr"] == pytest.approx(same["nvs"]["psnr"])
    assert base["ours_language_target_miou"] == pytest.approx(
        same["language"]["target"]["ours"]["miou"]
    )
    assert base["ours_psnr"] != pytest.approx(result["nvs"]["psnr"])  # different scenes


def test_eval_rig_takes_the_rigs_cameras_at_one_instant_as_context(capsys):
    import argparse

    from semanticsplat_ros.cli import main
    from semanticsplat_ros.data.rigs import get_rig
    from semanticsplat_ros.eval.commands import _dataset, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--rig", "stereo", "--seeds", "200000:200001"])
    ex = _dataset(args, range(200000, 200001), 32, 32)[0]
    rig = get_rig("stereo")
    centres = ex.context.c2w[:, :3, 3]
    offsets = torch.tensor([c.offset for c in rig.cameras], dtype=torch.float32)
    assert ex.context.num_views == len(rig.cameras)
    assert torch.linalg.norm(centres[0] - centres[1]) == pytest.approx(
        float(torch.linalg.norm(offsets[0] - offsets[1])), abs=1e-4
    )
    moving = _dataset(parser.parse_args([]), range(200000, 200001), 32, 32)[0]
    assert torch.linalg.norm(moving.context.c2w[0, :3, 3] - moving.context.c2w[1, :3, 3]) > 0.05
    assert main(["eval", "--rig", "stereo", "--data", "anywhere", "--no-progress"]) == 1
    assert "--rig renders synthetic scenes" in capsys.readouterr().err
    assert len(_dataset(args, range(200000, 200002), 32, 32)) == 2  # one example per scene
    more = parser.parse_args(["--rig", "stereo", "--examples-per-scene", "3"])
    examples = _dataset(more, range(200000, 200002), 32, 32)
    assert len(examples) == 6
    assert not torch.equal(examples[0].context.c2w, examples[1].context.c2w)
    with pytest.raises(ValueError, match="num_context must be 4"):
        _dataset(parser.parse_args(["--rig", "ring4"]), range(200000, 200001), 32, 32)
