"""Teacher records in model checkpoints, and the teacher feature cache (``cache-teachers``) read
by the trainer, all with the shipped tiny teachers on a small ScanNet-layout folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from semanticsplat_ros.cli import main
from semanticsplat_ros.data.scannet import ScanNetScene
from semanticsplat_ros.model import SemanticSplat, load_model, save_model
from semanticsplat_ros.model.testing import tiny_config
from semanticsplat_ros.teachers.frame_cache import FrameFeatureCache
from semanticsplat_ros.teachers.lseg import load_tiny_lseg
from semanticsplat_ros.teachers.sam import load_tiny_sam
from semanticsplat_ros.teachers.spec import spec_to_checkpoint_dict
from semanticsplat_ros.train.trainer import TrainConfig, Trainer

SIZE = 32
TINY_PAIR = spec_to_checkpoint_dict("tiny", "tiny_lseg")


def _model() -> SemanticSplat:
    config = tiny_config()
    config.sam_dim, config.language_dim = 256, 384  # the tiny teachers' widths
    torch.manual_seed(0)
    return SemanticSplat(config)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache_data") / "scenes"
    code = main(
        ["make-data", "--out", str(out), "--seeds", "0:2", "--height", str(SIZE), "--width",
         str(SIZE), "--views-per-scene", "6", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return out


def _cache_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["cache-teachers", "--data", str(data), "--out", str(out), "--height", str(SIZE),
            "--width", str(SIZE), "--frames-per-shard", "4", "--hcam-points-per-side", "4",
            "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def cache(scenes: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "teachers"
    assert main(_cache_args(scenes, out)) == 0
    return out


def _config(out: Path, stage: int, **kw) -> TrainConfig:
    loss = {"hcam_points_per_side": 4, "mask_points": 2} if stage else {}
    loss |= kw.pop("loss", {})
    return TrainConfig(
        stage=stage, steps=2, batch_size=2, height=SIZE, width=SIZE, num_context=2,
        num_target=1, examples_per_scene=2, num_workers=0, out=str(out), warmup_steps=1,
        log_every=1000, image_every=1000, checkpoint_every=1000, device="cpu", threads=2,
        loss=loss, **kw,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the cache


def test_cache_holds_each_frame_teacher_features(cache: Path, scenes: Path) -> None:
    reader = FrameFeatureCache(cache)
    manifest = reader.manifest
    assert manifest["teachers"] == TINY_PAIR
    assert (manifest["height"], manifest["width"]) == (SIZE, SIZE)
    assert sorted(manifest["scenes"]) == sorted(p.name for p in scenes.iterdir())
    assert len(list(cache.glob("*/*.pt"))) == 4  # 2 scenes × ceil(6 / 4) shards
    scene = ScanNetScene(scenes / sorted(manifest["scenes"])[1])
    frames = [0, 5]
    views = scene.load_views(frames, SIZE, SIZE)
    got = reader.features(scene.name, [scene.color_files[k].stem for k in frames])
    with torch.no_grad():
        sam = load_tiny_sam().eval().embed(views.images)
        lang = load_tiny_lseg().eval().embed(views.images)
    torch.testing.assert_close(got.sam, sam, atol=2e-2, rtol=1e-2)  # float16 on disk
    torch.testing.assert_close(got.lang, lang, atol=2e-3, rtol=1e-2)
    assert got.small.shape == (2, SIZE, SIZE) and got.large.dtype == torch.int64
    assert int(got.medium.max()) >= 0  # SAM found segments


def test_interrupted_cache_resumes_to_the_same_files(
    cache: Path, scenes: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "partial"
    assert main(_cache_args(scenes, out, "--max-shards", "1")) == 0
    printed = capsys.readouterr().out
    assert "4 shards (4 to write)" in printed and "MiB in all" in printed
    assert "3 shards left" in printed
    with pytest.raises(ValueError, match="incomplete"):
        FrameFeatureCache(out)
    # A shard cut short by a crash leaves only its temporary file behind.
    scene = sorted(json.loads((out / "manifest.json").read_text())["scenes"])[0]
    (out / scene / "00001.pt.tmp").write_bytes(b"half a shard")
    assert main(_cache_args(scenes, out)) == 0
    printed = capsys.readouterr().out
    assert "(3 to write)" in printed and "cache complete" in printed
    for shard in sorted(cache.glob("*/*.pt")):
        ref = torch.load(shard, weights_only=True)
        new = torch.load(out / shard.relative_to(cache), weights_only=True)
        assert ref.keys() == new.keys()
        for key in ref:
            assert torch.equal(ref[key], new[key]), (shard, key)


def test_cache_of_other_settings_is_refused_in_one_line(
    cache: Path, scenes: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(cache, out)
    assert main(_cache_args(scenes, out, "--hcam-points-per-side", "8")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hcam_points_per_side 4, not 8" in err
    assert main(_cache_args(tmp_path / "nowhere", out)) == 2
    assert "missing dataset folder" in capsys.readouterr().err
    assert main(_cache_args(scenes, out, "--sam", "vit_b:/no/such.pth")) == 2
    assert "/no/such.pth does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("stage", [1, 2])
def test_training_from_the_cache_equals_running_the_teachers(
    stage: int, scenes: Path, cache: Path, tmp_path: Path
) -> None:
    loss = {"hcam": True, "class_balance": 0.5} if stage == 2 else {}
    results = []
    for name, teacher_cache in (("live", None), ("cached", str(cache))):
        config = _config(
            tmp_path / name, stage, data=str(scenes), teacher_cache=teacher_cache, loss=loss
        )
        trainer = Trainer(config, model=_model())
        results.append(trainer.train(progress=False))
    live, cached = results
    assert live.step == cached.step == 2
    assert live.last_terms.keys() == cached.last_terms.keys()
    for key, value in live.last_terms.items():
        assert cached.last_terms[key] == pytest.approx(value, rel=2e-2, abs=2e-3), key
    _, meta = load_model(tmp_path / "cached" / "model.pt")
    assert meta["teachers"] == TINY_PAIR and meta["train_config"]["teacher_cache"] == str(cache)


def test_training_refuses_a_cache_of_other_teachers_or_size(
    scenes: Path, cache: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(cache, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["teachers"] = spec_to_checkpoint_dict("vit_b:/w/sam.pth", "tiny_lseg")
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"teacher cache .* was distilled from sam teacher vit_b"):
        Trainer(_config(tmp_path / "a", 1, data=str(scenes), teacher_cache=str(other)), _model())
    config = _config(tmp_path / "b", 1, data=str(scenes), teacher_cache=str(cache))
    config.height = config.width = 2 * SIZE
    with pytest.raises(ValueError, match="is at 32x32"):
        Trainer(config, _model())
    with pytest.raises(ValueError, match="stages 1 and 2 on data"):
        _config(tmp_path / "c", 0, data=str(scenes), teacher_cache=str(cache))


# ----------------------------------------------------------------------------- teacher records


def test_checkpoints_record_their_teachers_and_init_checks_them(
    scenes: Path, tmp_path: Path
) -> None:
    stage0 = Trainer(_config(tmp_path / "s0", 0, data=str(scenes)), _model())
    stage0.config.steps = 1
    stage0.train(progress=False)
    _, meta = load_model(tmp_path / "s0" / "model.pt")
    assert meta["teachers"] is None  # stage 0 distils no teacher
    # A stage-0 model fits any teacher pair; a stage-1 run records its own.
    init = str(tmp_path / "s0" / "model.pt")
    config = _config(tmp_path / "s1", 1, data=str(scenes), init=init)
    config.steps = 1
    Trainer(config).train(progress=False)
    model, meta = load_model(tmp_path / "s1" / "model.pt")
    assert meta["teachers"] == TINY_PAIR
    latest = torch.load(tmp_path / "s1" / "checkpoints" / "latest.pt", weights_only=False)
    assert latest["meta"]["teachers"] == TINY_PAIR
    # A model distilled from other teachers is refused, naming the teacher that differs.
    vit = tmp_path / "vit.pt"
    save_model(
        vit, model, {**meta, "teachers": spec_to_checkpoint_dict("vit_b:/w/s.pth", "tiny_lseg")}
    )
    with pytest.raises(ValueError) as info:
        Trainer(_config(tmp_path / "s2", 2, data=str(scenes), init=str(vit)))
    message = str(info.value)
    assert message.startswith(f"init checkpoint {vit} was distilled from sam teacher vit_b")
    assert "language" not in message.split(";")[0].split("but")[0]


def test_a_checkpoint_without_a_record_counts_as_the_tiny_pair(
    scenes: Path, tmp_path: Path
) -> None:
    model = _model()
    legacy = save_model(tmp_path / "legacy.pt", model, {"step": 5, "stage": 2})
    # The tiny pair, so configured by default, fits (the shipped models are such checkpoints).
    Trainer(_config(tmp_path / "ok", 2, data=str(scenes), init=str(legacy)))
    config = _config(
        tmp_path / "no", 2, data=str(scenes), init=str(legacy),
        loss={"language_teacher": "open_clip:ViT-B-16:/w/clip.bin"},
    )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"from language teacher tiny_lseg .* is open_clip:ViT-B-16"
    ):
        Trainer(config)


def test_model_widths_must_be_the_teachers(scenes: Path, tmp_path: Path) -> None:
    config = _config(
        tmp_path / "w",
        1,
        data=str(scenes),
        loss={"language_teacher": "open_clip:ViT-B-16:/w/c.bin"},
    )
    with pytest.raises(ValueError, match=r"language_dim is 384 .* 512-d .*arch.language_dim=512"):
        Trainer(config, _model())


# ----------------------------------------------------------------------------- evaluation


def test_eval_from_the_cache_equals_running_the_teachers(
    scenes: Path, cache: Path, tmp_path: Path, capsys
) -> None:
    model = tmp_path / "model.pt"
    save_model(model, _model(), {"step": 0, "stage": 2, "teachers": TINY_PAIR})
    runs = {}
    for name, extra in (("live", []), ("cached", ["--teacher-cache", str(cache)])):
        out = tmp_path / f"{name}.json"
        code = main(
            ["eval", "--checkpoint", str(model), "--data", str(scenes), "--height", str(SIZE),
             "--width", str(SIZE), "--examples-per-scene", "1", "--num-target", "1",
             "--protocols", "language,promptable", "--grid", "4", "--device", "cpu",
             "--json", str(out), "--no-progress", *extra]
        )  # fmt: skip
        assert code == 0
        runs[name] = json.loads(out.read_text())
    live, cached = runs["live"], runs["cached"]
    assert (
        live["teacher_specs"] == cached["teacher_specs"] == {"sam": "tiny", "language": "tiny_lseg"}
    )
    for protocol in ("language", "promptable"):
        for split in ("source", "target"):
            for column in ("ours", "teacher"):
                a = live[protocol][split][column]["miou"]
                b = cached[protocol][split][column]["miou"]
                assert b == pytest.approx(a, abs=0.02), (protocol, split, column)
    # The cache must be of the evaluation's teachers and resolution.
    capsys.readouterr()
    args = ["eval", "--checkpoint", str(model), "--data", str(scenes), "--teacher-cache",
            str(cache), "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main([*args, "--height", str(2 * SIZE), "--width", str(2 * SIZE)]) == 1
    assert "is at 32x32" in capsys.readouterr().err
    assert main(["eval", "--teacher-cache", str(cache), "--no-progress"]) == 1
    assert "give --data" in capsys.readouterr().err
