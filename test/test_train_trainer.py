"""Trainer, stage-0 loss, training command config and metrics on tiny inputs."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from semanticsplat_ros.data.types import Example, collate
from semanticsplat_ros.metrics import depth_abs_rel, psnr, ssim
from semanticsplat_ros.model import SemanticSplat, SemanticSplatConfig, load_model
from semanticsplat_ros.model.testing import textured_plane_views, tiny_config
from semanticsplat_ros.train import commands
from semanticsplat_ros.train.losses import (
    PhotometricLoss,
    PhotometricLossConfig,
    log_depth_loss,
    smoothness_loss,
)
from semanticsplat_ros.train.stages import build_loss
from semanticsplat_ros.train.trainer import TrainConfig, Trainer, cosine_lr


class PlaneDataset(Dataset):
    """3 views of a textured plane per item: views 0 and 2 are context, view 1 the target."""

    def __init__(self, n: int = 4, size: int = 16) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Example:
        v = textured_plane_views(1.5 + 0.2 * i, self.size, self.size, num_views=3, seed=i)
        v = v.index_views([0, 1, 2])
        unbatched = type(v)(
            **{k: getattr(v, k)[0] for k in ("images", "K", "c2w", "near", "far", "depth")}
        )
        return Example(unbatched.index_views([0, 2]), unbatched.index_views([1]), f"plane{i}")


def tiny_train_config(tmp_path: Path, steps: int) -> TrainConfig:
    return TrainConfig(
        steps=steps, lr=3e-3, warmup_steps=1, batch_size=2, num_workers=0, out=str(tmp_path),
        log_every=1, image_every=2, checkpoint_every=2, device="cpu",
    )  # fmt: skip


def test_config_validation_and_schedule() -> None:
    with pytest.raises(ValueError, match="stage"):
        TrainConfig(stage=3)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(ValueError, match="unknown rig"):
        TrainConfig(rig="octopus")
    with pytest.raises(ValueError, match="num_context must be 4"):
        TrainConfig(rig="ring4", num_context=2)
    with pytest.raises(ValueError, match="synthetic world"):
        TrainConfig(rig="stereo", data="/data/scannet")
    c = TrainConfig(steps=100, warmup_steps=10, lr_final_ratio=0.1)
    assert cosine_lr(0, c) == pytest.approx(0.1)
    assert cosine_lr(10, c) == pytest.approx(1.0)
    assert cosine_lr(100, c) == pytest.approx(0.1)
    assert cosine_lr(55, c) == pytest.approx(0.55)


def test_stage_losses_registry() -> None:
    assert isinstance(build_loss(0, {"depth_weight": 0.5}), PhotometricLoss)
    # Stages 1 and 2 are the distillation losses (train/stages.py).
    assert type(build_loss(1)).__name__ == "DistillationLoss"
    assert build_loss(2).stage == 2
    with pytest.raises(ValueError, match="no loss registered for stage 3"):
        build_loss(3)
    with pytest.raises(ValueError, match="unknown PhotometricLossConfig field"):
        build_loss(0, {"l2_weight": 1.0})
    loss = PhotometricLoss(PhotometricLossConfig(lpips_weights="/nonexistent/lpips.pth"))
    assert not loss.uses_lpips


def test_photometric_loss_fits_a_batch_and_depth_flag_adds_a_term() -> None:
    torch.manual_seed(0)
    model = SemanticSplat(tiny_config())
    batch = collate([PlaneDataset()[i] for i in range(2)])
    loss = PhotometricLoss()
    first = loss(batch, model, model)
    assert set(first.terms) >= {"l1_target", "psnr_target", "depth_l1_inv", "loss"}
    assert first.images["target/pred"].shape == (3, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        out = loss(batch, model, model)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    assert out.terms["l1_target"] < 0.8 * first.terms["l1_target"]
    with_depth = PhotometricLoss(PhotometricLossConfig(depth_weight=2.0))(batch, model, model)
    plain = loss(batch, model, model)
    expected = plain.terms["loss"] + 2.0 * with_depth.terms["depth_l1_inv"]
    assert with_depth.terms["loss"] == pytest.approx(expected, rel=1e-4)
    log_cfg = PhotometricLossConfig(depth_weight=0.5, depth_loss="log_l1")
    with_log = PhotometricLoss(log_cfg)(batch, model, model)
    expected = plain.terms["loss"] + 0.5 * with_log.terms["depth_log_l1"]
    assert with_log.terms["loss"] == pytest.approx(expected, rel=1e-4)
    coarse_cfg = PhotometricLossConfig(
        depth_weight=0.5, depth_loss="log_l1", depth_coarse_weight=2.0
    )
    with_coarse = PhotometricLoss(coarse_cfg)(batch, model, model)
    coarse_term = with_coarse.terms["depth_coarse_log_l1"]
    assert coarse_term > 0
    expected = plain.terms["loss"] + 0.5 * (with_coarse.terms["depth_log_l1"] + 2.0 * coarse_term)
    assert with_coarse.terms["loss"] == pytest.approx(expected, rel=1e-4)
    smooth = PhotometricLoss(PhotometricLossConfig(smoothness_weight=0.3))(batch, model, model)
    expected = plain.terms["loss"] + 0.3 * smooth.terms["smoothness"]
    assert smooth.terms["loss"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="depth_loss must be one of"):
        PhotometricLossConfig(depth_loss="l2")


def test_smoothness_prior_is_zero_on_planes_and_spares_image_edges() -> None:
    h, w = 24, 32
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    plane = 1.0 / (0.2 + 0.01 * xs + 0.02 * ys)  # inverse depth affine in pixels: a plane
    depth = plane.expand(1, 2, h, w).clone()
    flat = torch.full((1, 2, 3, h, w), 0.5)
    assert float(smoothness_loss(depth, flat)) == pytest.approx(0.0, abs=1e-5)
    bumpy = depth * (1 + 0.1 * torch.rand(depth.shape, generator=torch.Generator().manual_seed(0)))
    assert float(smoothness_loss(bumpy, flat)) > 0.01
    # A depth step costs less where the image has an edge at the same place.
    step = depth.clone()
    step[..., :, w // 2 :] *= 2.0
    edge = flat.clone()
    edge[..., :, w // 2 :] = 1.0
    assert float(smoothness_loss(step, edge)) < 0.1 * float(smoothness_loss(step, flat))
    # The prior is scale-free (depth and its inverse are normalised by their mean).
    assert float(smoothness_loss(bumpy * 3.0, flat)) == pytest.approx(
        float(smoothness_loss(bumpy, flat)), rel=1e-4
    )
    with pytest.raises(ValueError, match="smoothness_weight"):
        PhotometricLossConfig(smoothness_weight=-1.0)


def test_log_depth_loss_is_the_mean_relative_error_in_log_space() -> None:
    target = torch.tensor([[[[1.0, 4.0], [0.0, 2.0]]]])
    pred = target * torch.tensor([[[[1.1, 0.9], [5.0, 1.0]]]])
    near, far = torch.tensor([[0.25]]), torch.tensor([[10.0]])
    expected = (math.log(1.1) + abs(math.log(0.9)) + 0.0) / 3  # the 0-depth pixel is unknown
    assert float(log_depth_loss(pred, target, near, far)) == pytest.approx(expected, rel=1e-5)


def test_trainer_writes_checkpoints_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trainer = Trainer(tiny_train_config(tmp_path, 2), SemanticSplat(tiny_config()), PlaneDataset())
    result = trainer.train(progress=False)
    assert result.step == 2 and math.isfinite(result.last_terms["loss"])
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()
    assert (tmp_path / "config.yaml").is_file()
    assert any((tmp_path / "tb").iterdir())
    model, meta = load_model(result.model_path)
    assert model.config == trainer.model.config
    assert meta["step"] == 2 and meta["stage"] == 0
    # The near plane of the training views goes with the weights (inference uses it).
    assert meta["depth_near"] == pytest.approx(float(PlaneDataset()[0].context.near.min()))
    # Resume: a new trainer picks up the optimiser state and step, and runs to the new end.
    config = tiny_train_config(tmp_path, 4)
    config.resume = True
    resumed = Trainer(config, SemanticSplat(tiny_config()), PlaneDataset())
    assert resumed.restore() == 2
    assert resumed.optimizer.state_dict()["state"]
    for a, b in zip(resumed.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.train(progress=False).step == 4
    # A checkpoint of another model config is refused with a clear message.
    other = tiny_config()
    other.cost_volume.num_depths = 6
    mismatched = Trainer(tiny_train_config(tmp_path, 4), SemanticSplat(other), PlaneDataset())
    with pytest.raises(ValueError, match="another model config"):
        mismatched.restore()


def test_bf16_mixed_precision_trains_float32_weights(tmp_path: Path) -> None:
    """precision bf16 runs the forward and losses under autocast (here on the CPU); weights,
    gradients and optimiser state stay float32, and the loss stays close to fp32's."""
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        config = tiny_train_config(tmp_path / precision, 2)
        config.precision = precision
        trainer = Trainer(config, SemanticSplat(tiny_config()), PlaneDataset())
        result = trainer.train(progress=False)
        assert len(result.step_seconds) == 2 and min(result.step_seconds) > 0
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        state = trainer.optimizer.state_dict()["state"]
        assert state and all(s["exp_avg"].dtype == torch.float32 for s in state.values())
        losses[precision] = result.last_terms["loss"]
    assert math.isfinite(losses["bf16"])
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.1)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        config = tiny_train_config(tmp_path / "fp16", 1)
        config.precision, config.device = "fp16", "cpu"
        Trainer(config, SemanticSplat(tiny_config()), PlaneDataset())


def test_train_command_config_overrides() -> None:
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    args = parser.parse_args(
        ["--config", "small", "--steps", "7", "--seeds", "0:10", "--set", "loss.depth_weight=0.5",
         "--set", "height=32", "--set", "lr=1e-3", "--set", "conditions=sam"]
    )  # fmt: skip
    config = commands.build_config(args)
    assert (config.steps, config.seeds, config.height) == (7, "0:10", 32)
    assert config.loss["depth_weight"] == 0.5 and config.model == "small"
    assert config.lr == 1e-3  # YAML 1.1 alone would read "1e-3" as a string
    assert config.conditions == "sam"
    with pytest.raises(ValueError, match="conditions must be one of"):
        commands.build_config(parser.parse_args(["--set", "conditions=clip"]))
    assert "paper" in commands.available_configs()
    with pytest.raises(ValueError, match="not found"):
        commands.load_config_file("nonexistent")
    bad = parser.parse_args(["--set", "stpes=3"])
    with pytest.raises(ValueError, match="stpes"):
        commands.build_config(bad)


def test_arch_overrides_change_the_preset_model(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    args = parser.parse_args(
        ["--config", "small", "--set", "arch.cost_volume.num_depths=48",
         "--set", "arch.depth.refine_candidates=4", "--set", f"out={tmp_path}"]
    )  # fmt: skip
    config = commands.build_config(args)
    assert config.arch == {"cost_volume": {"num_depths": 48}, "depth": {"refine_candidates": 4}}
    model = Trainer(dataclasses.replace(config, num_workers=0)).model
    assert model.config.cost_volume.num_depths == 48
    assert model.config.depth.refine_candidates == 4
    assert model.config.backbone == SemanticSplatConfig.small().backbone  # the rest is the preset
    with pytest.raises(ValueError, match=r"arch\.cost_volume\.num_dpeths"):
        Trainer(TrainConfig(arch={"cost_volume": {"num_dpeths": 8}}, out=str(tmp_path)))
    with pytest.raises(ValueError, match="init"):
        TrainConfig(arch={"cost_volume": {"num_depths": 8}}, init="model.pt")
    with pytest.raises(ValueError, match="not a group"):
        commands.build_config(parser.parse_args(["--set", "lr.x=1"]))


def test_metrics_known_values() -> None:
    a = torch.zeros(2, 3, 16, 16)
    b = torch.full_like(a, 0.1)
    assert torch.allclose(psnr(a, b), torch.tensor([20.0, 20.0]))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(1), atol=1e-5)
    assert ssim(x, x.flip(-1)).item() < 0.5
    gt = torch.tensor([[[2.0, 4.0], [0.0, 1.0]]])
    pred = torch.tensor([[[2.2, 3.0], [5.0, 1.0]]])
    assert depth_abs_rel(pred, gt).item() == pytest.approx((0.1 + 0.25 + 0.0) / 3)
    assert torch.isnan(depth_abs_rel(pred, torch.zeros_like(gt))).all()
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:, :2])


def test_language_skip_option_adds_the_skip_to_an_init_model(tmp_path: Path) -> None:
    from semanticsplat_ros.model import save_model

    torch.manual_seed(0)
    plain = SemanticSplat(tiny_config())
    init = save_model(tmp_path / "stage1.pt", plain)
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    args = parser.parse_args(["--set", "language_skip=true", "--set", f"init={init}"])
    config = commands.build_config(args)
    assert config.language_skip is True
    model = Trainer(dataclasses.replace(config, num_workers=0, out=str(tmp_path / "run"))).model
    assert model.language_skip is not None and model.config.semantic.language_skip
    # The stage-1 weights are carried over and the skip starts at zero.
    for name, p in plain.state_dict().items():
        assert torch.equal(model.state_dict()[name], p), name
    assert model.language_skip.net[2].weight.abs().sum() == 0
    # Without init, the preset model is built with it.
    fresh = commands.build_config(parser.parse_args(["--set", "language_skip=true"]))
    fresh = dataclasses.replace(fresh, num_workers=0, out=str(tmp_path / "fresh"))
    assert Trainer(fresh).model.config.semantic.language_skip


def test_surface_distance_ratio_measures_distance_to_the_surface_not_along_the_ray() -> None:
    from semanticsplat_ros.metrics import surface_distance_ratio

    x, y = torch.meshgrid(torch.arange(0, 5, 0.01), torch.arange(-1, 1, 0.01), indexing="ij")
    floor = torch.stack([x, y, torch.zeros_like(x)], -1).reshape(-1, 3).numpy()
    camera = torch.tensor([0.0, 0.0, 1.5]).numpy()
    true = torch.tensor([3.0, 0.0, 0.0]).numpy()
    # 10% too far along the ray at a slant: 0.15 m below the floor, 3.69 m from the camera
    far = camera + 1.1 * (true - camera)
    ratio = surface_distance_ratio(far[None], camera, floor)
    assert ratio[0] == pytest.approx(0.15 / float(((far - camera) ** 2).sum() ** 0.5), abs=1e-3)
    assert ratio[0] < 0.05  # while the depth error along the ray is 10%
    # two cameras: the distance to the camera is to the nearer one; on the surface -> 0
    near_cam = torch.tensor([3.0, 0.0, 0.5]).numpy()
    both = surface_distance_ratio(far[None], [camera, near_cam], floor)
    assert both[0] == pytest.approx(0.15 / float(((far - near_cam) ** 2).sum() ** 0.5), abs=1e-3)
    assert surface_distance_ratio(true[None], camera, floor)[0] == pytest.approx(0.0, abs=1e-6)
    assert surface_distance_ratio(floor[:0], camera, floor).shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        surface_distance_ratio([[float("nan"), 0.0, 0.0]], camera, floor)
    with pytest.raises(ValueError, match="surface samples"):
        surface_distance_ratio(true[None], camera, floor[:0])
