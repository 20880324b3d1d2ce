"""The trainer shared by all stages: data, Adam + cosine decay (by step or wall clock), logging, checkpoints, resume, DDP.

Output layout under ``TrainConfig.out``::

    checkpoints/latest.pt   model + optimiser state + step + elapsed time (resume from here)
    model.pt                the final model only (what eval / the pipeline load)
    tb/                     TensorBoard scalars and images
    config.yaml             the resolved training config

Distributed: when ``WORLD_SIZE`` > 1 (set by ``torchrun``) the model is wrapped in
DistributedDataParallel, the data go through a DistributedSampler, and rank 0 alone logs and
writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from semanticsplat_ros.checkpoint import (
    dataclass_from_dict,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from semanticsplat_ros.data.scannet import ScanNetDataset
from semanticsplat_ros.data.splits import parse_seeds
from semanticsplat_ros.data.styled import WorldStyle, check_style
from semanticsplat_ros.data.synthetic import SyntheticDataset, ViewSampling, check_sampling
from semanticsplat_ros.data.types import Example, collate
from semanticsplat_ros.device import resolve_device
from semanticsplat_ros.model import (
    CONDITION_CHOICES,
    MODEL_KIND,
    SemanticSplat,
    SemanticSplatConfig,
    load_model,
    save_model,
    with_conditions,
    with_language_skip,
)
from semanticsplat_ros.model.semanticsplat import trained_near
from semanticsplat_ros.teachers.frame_cache import CachedTeacherDataset, FrameFeatureCache
from semanticsplat_ros.teachers.spec import (
    TEACHERS_META_KEY,
    check_checkpoint_teachers,
    recorded_teachers,
)
from semanticsplat_ros.train.losses import LossOutput, StageLoss
from semanticsplat_ros.train.stages import build_loss

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""``TrainConfig.precision`` -> the autocast dtype (None: no autocast)."""


@dataclass
class TrainConfig:
    """Everything one training run needs (stored with its checkpoints)."""

    stage: int = 0
    """0: geometry and appearance; 1: segmentation distillation; 2: language distillation."""

    model: str = "small"
    """Model config preset (``small`` or ``paper``); ignored when ``init`` names a checkpoint."""

    arch: dict[str, Any] = field(default_factory=dict)
    """Overrides of the preset's model config, nested as in ``SemanticSplatConfig`` (e.g.
    ``{"cost_volume": {"num_depths": 64}}``; ``--set arch.cost_volume.num_depths=64``); not
    allowed with ``init``, whose checkpoint fixes the architecture."""

    init: str | None = None
    """Checkpoint to start from (e.g. stage 1 starts from the stage-0 model)."""

    conditions: str | None = None
    """Teacher conditions of the fusion: both, sam, language or none (the ablation rows);
    None keeps the preset's / the ``init`` checkpoint's. With ``init``, the stage-0 weights are
    carried over (``model.semanticsplat.with_conditions``)."""

    language_skip: bool = False
    """Give the model the full-resolution skip of the language teacher's features into the
    language attribute (``semantic.language_skip``); with ``init``, added to the checkpoint's
    model at zero (``model.semanticsplat.with_language_skip``), so stage 2 can start from a
    stage-1 model trained without it."""

    steps: int = 6000
    """Optimiser steps."""

    max_minutes: float | None = None
    """Wall-clock budget: training stops after this many minutes, and the cosine decay follows
    whichever of step count or elapsed time is further along (so the run ends decayed)."""

    lr: float = 1e-4
    """Adam learning rate at the end of warm-up."""

    lr_final_ratio: float = 0.01
    """Cosine decay ends at ``lr * lr_final_ratio``."""

    warmup_steps: int = 100
    """Linear warm-up steps."""

    weight_decay: float = 0.0
    """Adam(W) weight decay."""

    grad_clip: float = 1.0
    """Gradient-norm clipping (0 disables)."""

    batch_size: int = 4
    """Examples per step (per process under DDP)."""

    height: int = 64
    """Training resolution: image height in pixels."""

    width: int = 64
    """Training resolution: image width in pixels."""

    num_context: int = 2
    """Context views per example."""

    num_target: int = 2
    """Target views per example."""

    context_span_s: tuple[float, float] = (0.5, 1.4)
    """Range of the time between the first and last context frame on the synthetic trajectory,
    seconds (longer = wider baselines; targets lie between the context frames)."""

    rig: str = "mono"
    """Synthetic camera rig (``data.rigs``). ``mono``: the head camera's frames along its
    trajectory, ``context_span_s`` apart. A multi-camera rig (``stereo``, ``head_wrist``,
    ``ring4``): the context views are all its cameras at one instant, as the ROS node gets them
    (``num_context`` = its camera count), the targets its cameras within ``context_span_s[1] / 2``
    of that instant; fine-tune a model for a robot's rig with it."""

    seeds: str = "0:5000"
    """Synthetic scenes to train on (``START:END`` or a split name)."""

    style: WorldStyle = "classic"
    """Synthetic world style (``data.styled``): ``classic`` (the embedded world) or ``varied``
    (random rooms, lights, cameras and sensors). ``held-out`` is for evaluation only."""

    data: str | None = None
    """A folder of ScanNet-layout scenes to train on instead of the synthetic world (``seeds``
    is then ignored); e.g. what ``semanticsplat_record`` writes."""

    teacher_cache: str | None = None
    """Stages 1 and 2 with ``data``: a teacher feature cache of that folder written by
    ``semanticsplat cache-teachers`` (same teachers and resolution), read instead of running
    the teachers at every step."""

    examples_per_scene: int = 100
    """With ``data``: examples (random context/target frame choices) drawn per scene and epoch."""

    num_workers: int = 1
    """DataLoader worker processes (0: load in the training process)."""

    out: str = "runs/stage0"
    """Output folder (checkpoints, TensorBoard logs, final model)."""

    resume: bool = False
    """Continue from ``out/checkpoints/latest.pt`` if it exists."""

    seed: int = 0
    """Random seed (model initialisation, data order)."""

    device: str = "auto"
    """``auto`` (CUDA if available), ``cpu`` or ``cuda``."""

    threads: int | None = None
    """torch CPU threads (None: torch's default)."""

    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Mixed precision of the forward pass and losses (``torch.autocast``): ``bf16`` (CUDA with
    bfloat16, or the CPU), ``fp16`` (CUDA only, with a gradient scaler); weights, optimiser state
    and gradients stay float32."""

    log_every: int = 20
    """Steps between TensorBoard scalar logs."""

    image_every: int = 500
    """Steps between TensorBoard image logs."""

    checkpoint_every: int = 500
    """Steps between checkpoints (also written at the end)."""

    loss: dict[str, Any] = field(default_factory=dict)
    """Options of the stage's loss (stage 0: fields of ``PhotometricLossConfig``)."""

    def __post_init__(self) -> None:
        if self.stage not in (0, 1, 2):
            raise ValueError(f"stage must be 0, 1 or 2, got {self.stage}")
        for name in (
            "steps", "batch_size", "height", "width", "num_context", "num_target",
            "examples_per_scene",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.conditions is not None and self.conditions not in CONDITION_CHOICES:
            raise ValueError(
                f"conditions must be one of {sorted(CONDITION_CHOICES)}, got {self.conditions!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.arch and self.init:
            raise ValueError("arch overrides need a fresh model; init's checkpoint fixes it")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.teacher_cache and (self.stage == 0 or not self.data):
            raise ValueError(
                "teacher_cache is for stages 1 and 2 on data=... (the folder it was made of)"
            )
        if check_style(self.style) == "held-out":
            raise ValueError("style held-out is the evaluation's: train on classic or varied")
        if self.rig != "mono":
            if self.data:
                raise ValueError("rig applies to the synthetic world, not to data=...")
            lo, hi = self.context_span_s
            check_sampling(ViewSampling(lo, hi, rig=self.rig, rig_instant=True), self.num_context)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        return dataclass_from_dict(TrainConfig, data)


@dataclass
class TrainResult:
    """Where a run ended."""

    step: int
    model_path: Path | None
    last_terms: dict[str, float]
    seconds: float
    step_seconds: list[float] = field(default_factory=list)
    """Wall time of each optimiser step of this run (data, forward, backward, update)."""


def cosine_lr(step: int, config: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``lr_final_ratio``.

    Progress is by step, or by elapsed time when ``max_minutes`` is set and time is further on.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(config.steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    if config.max_minutes:
        progress = max(progress, min(elapsed_s / (60.0 * config.max_minutes), 1.0))
    r = config.lr_final_ratio
    return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Runs one training stage. Model, dataset and loss may be injected (tests, distillation)."""

    def __init__(
        self,
        config: TrainConfig,
        model: SemanticSplat | None = None,
        dataset: Dataset | None = None,
        loss: StageLoss | None = None,
    ) -> None:
        self.config = config
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.distributed = self.world_size > 1
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.device = resolve_device(config.device)
        if self.distributed and self.device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed + self.rank)

        self.out = Path(config.out)
        self.init_near: float | None = None  # the --init model's near plane (_build_model)
        self.loss = loss if loss is not None else build_loss(config.stage, config.loss)
        # The teachers this run distils (None: stage 0, or a loss that names none).
        record = getattr(self.loss, "teacher_record", None)
        self.teachers: dict[str, Any] | None = record() if callable(record) else None
        self.model = (model if model is not None else self._build_model()).to(self.device)
        self._check_model_widths()
        self.dataset = dataset if dataset is not None else self._build_dataset()
        params = list(self.loss.trainable_parameters(self.model))
        if not params:
            raise ValueError(f"stage {config.stage}'s loss selects no trainable parameters")
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.autocast_dtype = PRECISIONS[config.precision]
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs CUDA; use bf16 on the CPU")
        # fp16 gradients underflow without loss scaling; bf16 has float32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
        self.step = 0
        self.elapsed_s = 0.0  # training time so far, carried across resumes
        # The near plane of the training views (the cost volume's range); saved with the weights
        # so that inference uses the depth candidates the model learned on.
        self.depth_near: float | None = None
        # The whole loss runs inside one module's forward, so that DistributedDataParallel sees
        # every parameter use (the stage losses also render and expand features outside the
        # network's own forward, which DDP would otherwise count twice).
        self.step_module: nn.Module = _LossStep(self.model, self.loss)
        if self.distributed:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # The stage's loss may leave heads unused (e.g. semantic heads in stage 0).
                find_unused_parameters=True,
            )

    def _agreed_elapsed(self, elapsed_s: float) -> float:
        """The training time all ranks go by (rank clocks differ; the time budget and the
        clock-driven learning rate must not)."""
        if not self.distributed:
            return elapsed_s
        t = torch.tensor([elapsed_s], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoints" / "latest.pt"

    def _check_teachers(self, meta: dict[str, Any], source: str) -> None:
        """ValueError naming each teacher that differs unless the checkpoint whose ``meta`` this
        is was distilled from this run's teachers (or from none)."""
        if self.teachers is not None:
            recorded = recorded_teachers(meta)
            if recorded is not None:
                check_checkpoint_teachers(recorded, self.teachers, source)

    def _check_model_widths(self) -> None:
        """The model's teacher widths must be those of this run's teachers."""
        if self.teachers is None:
            return
        c = self.model.config
        for role, name, width in (
            ("sam", "sam_dim", c.sam_dim),
            ("language", "language_dim", c.language_dim),
        ):
            want = self.teachers[role]["feature_dim"]
            if width != want:
                raise ValueError(
                    f"the model's {name} is {width} but the {role} teacher "
                    f"{self.teachers[role]['spec']!r} gives {want}-d features"
                    + ("" if self.config.init else f" (--set arch.{name}={want})")
                )

    def _build_model(self) -> SemanticSplat:
        conditions = self.config.conditions
        if self.config.init:
            model, meta = load_model(self.config.init)
            self._check_teachers(meta, f"init checkpoint {self.config.init}")
            # Later stages keep the near plane the initial model learned its depth on.
            self.init_near = trained_near(meta)
            if conditions:
                model = with_conditions(model, conditions)
            if self.config.language_skip:
                model = with_language_skip(model)
            return model.train()
        config = SemanticSplatConfig.preset(self.config.model)
        if self.config.arch:
            config = SemanticSplatConfig.from_dict(_merged(config.to_dict(), self.config.arch))
        if conditions:
            config.fusion.use_sam, config.fusion.use_language = CONDITION_CHOICES[conditions]
        if self.config.language_skip:
            config.semantic.language_skip = True
        return SemanticSplat(config)

    def _build_dataset(self) -> Dataset:

        c = self.config
        if c.data:
            dataset = ScanNetDataset(
                c.data, c.height, c.width, num_context=c.num_context, num_target=c.num_target,
                examples_per_scene=c.examples_per_scene, seed=c.seed, skip_invalid_poses=True,
            )  # fmt: skip
            if not c.teacher_cache:
                return dataset
            if self.teachers is None:
                raise ValueError(f"stage {c.stage}'s loss uses no teachers to read from a cache")
            cache = FrameFeatureCache(c.teacher_cache)
            loss_config = getattr(self.loss, "config", None)
            points = None
            if c.stage == 2 and getattr(loss_config, "hcam", False):
                points = int(getattr(loss_config, "hcam_points_per_side", 8))
            cache.check(self.teachers, c.height, c.width, points)
            return CachedTeacherDataset(dataset, cache)

        lo, hi = c.context_span_s
        sampling = ViewSampling(
            min_span_s=lo, max_span_s=hi, rig=c.rig, rig_instant=c.rig != "mono", style=c.style
        )
        return SyntheticDataset(
            parse_seeds(c.seeds), c.height, c.width, num_context=c.num_context,
            num_target=c.num_target, sampling=sampling, near=self.init_near,
        )  # fmt: skip

    def _batches(self) -> Iterator[Example]:
        c = self.config
        if self.distributed:
            sampler = DistributedSampler(self.dataset, shuffle=True, seed=c.seed, drop_last=True)
        else:
            generator = torch.Generator().manual_seed(c.seed)
            sampler = RandomSampler(self.dataset, generator=generator)
        loader = DataLoader(
            self.dataset,
            batch_size=c.batch_size,
            sampler=sampler,
            collate_fn=getattr(self.dataset, "collate_fn", collate),
            num_workers=c.num_workers,
            drop_last=len(self.dataset) >= c.batch_size,
            persistent_workers=c.num_workers > 0,
        )
        epoch = 0
        while True:
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    def _forward(self, batch: Example) -> LossOutput:
        """The stage's loss on ``batch``, under autocast at ``config.precision``."""
        if self.autocast_dtype is None:
            return self.step_module(batch)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            out: LossOutput = self.step_module(batch)
        return dataclasses.replace(out, total=out.total.float())

    def save(self, path: Path | None = None) -> Path:
        """Write model + optimiser state + step + elapsed time (rank 0 only)."""
        path = path or self.checkpoint_path
        return save_checkpoint(
            path,
            self.model,
            self.model.config.to_dict(),
            {
                "step": self.step,
                "stage": self.config.stage,
                "train_config": dataclasses.asdict(self.config),
                "optimizer": self.optimizer.state_dict(),
                "grad_scaler": self.scaler.state_dict(),
                "elapsed_s": self.elapsed_s,
                "depth_near": self.depth_near,
                TEACHERS_META_KEY: self.teachers,
            },
            kind=MODEL_KIND,
        )

    def restore(self, path: Path | None = None) -> int:
        """Load a ``save``d state; returns the step to continue from."""
        path = path or self.checkpoint_path
        ckpt = load_checkpoint(path, expected_kind=MODEL_KIND)
        if ckpt.config != self.model.config.to_dict():
            raise ValueError(f"checkpoint {path} was written for another model config")
        self._check_teachers(ckpt.meta, f"checkpoint {path}")
        load_state_dict_strict(self.model, ckpt.state_dict)
        for key in ("optimizer", "step"):
            if key not in ckpt.meta:
                raise ValueError(f"checkpoint {path} has no {key!r}: it cannot be resumed")
        self.optimizer.load_state_dict(ckpt.meta["optimizer"])
        if ckpt.meta.get("grad_scaler"):
            self.scaler.load_state_dict(ckpt.meta["grad_scaler"])
        self.step = int(ckpt.meta["step"])
        self.elapsed_s = float(ckpt.meta.get("elapsed_s", 0.0))
        self.depth_near = ckpt.meta.get("depth_near")
        return self.step

    def train(self, progress: bool = True) -> TrainResult:
        """Run until ``config.steps``; returns where it ended and the last loss terms."""
        c = self.config
        if c.resume and self.checkpoint_path.is_file():
            self.restore()
        writer = None
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_yaml(self.out / "config.yaml", dataclasses.asdict(c))
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb"))
        bar = None
        if progress and self.is_main:
            from tqdm import tqdm

            bar = tqdm(
                total=c.steps, initial=self.step, desc=f"stage {c.stage}", dynamic_ncols=True
            )
        start = time.time()
        elapsed_before = self.elapsed_s
        terms: dict[str, float] = {}
        step_seconds: list[float] = []
        self.model.train()
        batches = self._batches()
        try:
            warm_start = getattr(self.loss, "warm_start", None)
            if warm_start is not None and self.step == 0:
                # Inside the run's clock: the warm start counts towards max_minutes.
                log = writer.add_scalar if writer is not None else None
                warm_start(self.model, batches, self.device, log, progress and self.is_main)
                if self.distributed:
                    for p in self.model.parameters():
                        dist.broadcast(p.data, src=0)
            while self.step < c.steps:
                t0 = time.time()
                self.elapsed_s = self._agreed_elapsed(elapsed_before + (t0 - start))
                if c.max_minutes and self.elapsed_s >= 60.0 * c.max_minutes:
                    break
                lr = c.lr * cosine_lr(self.step, c, self.elapsed_s)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch = next(batches).to(self.device)
                if self.depth_near is None:
                    self.depth_near = float(batch.context.near.min())
                out = self._forward(batch)
                if not torch.isfinite(out.total):
                    raise ValueError(f"loss became {float(out.total)} at step {self.step}")
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(out.total).backward()
                if c.grad_clip > 0:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.step += 1
                step_seconds.append(time.time() - t0)
                terms = out.terms
                if writer is not None:
                    if self.step % c.log_every == 0 or self.step == c.steps:
                        for k, val in terms.items():
                            writer.add_scalar(f"train/{k}", val, self.step)
                        writer.add_scalar("train/lr", lr, self.step)
                        writer.add_scalar("train/step_seconds", step_seconds[-1], self.step)
                    if self.step % c.image_every == 0 or self.step == c.steps:
                        for k, img in out.images.items():
                            writer.add_image(k, img.float().clamp(0, 1).cpu(), self.step)
                if self.is_main and (self.step % c.checkpoint_every == 0 or self.step == c.steps):
                    self.elapsed_s = elapsed_before + (time.time() - start)
                    self.save()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if k in _SHOWN})
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        self.elapsed_s = elapsed_before + (time.time() - start)
        model_path = None
        if self.is_main:
            self.save()
            model_path = save_model(
                self.out / "model.pt",
                self.model,
                {
                    "step": self.step,
                    "stage": c.stage,
                    "train_config": dataclasses.asdict(c),
                    "depth_near": self.depth_near,
                    TEACHERS_META_KEY: self.teachers,
                },
            )
        if self.distributed:
            dist.barrier()
        return TrainResult(self.step, model_path, terms, time.time() - start, step_seconds)


def close_distributed() -> None:
    """Destroy the process group a distributed run (torchrun) initialised, if any. A rank that
    exits with it alive can abort in gloo's threads at interpreter shutdown (SIGABRT)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _merged(base: dict[str, Any], overrides: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``base`` with ``overrides`` applied key by key (nested dicts merged; unknown keys raise)."""
    out = dict(base)
    for key, value in overrides.items():
        where = f"{path}.{key}" if path else key
        if key not in base:
            raise ValueError(f"unknown model config key arch.{where}; known: {sorted(base)}")
        if isinstance(value, dict) and isinstance(base[key], dict):
            out[key] = _merged(base[key], value, where)
        else:
            out[key] = value
    return out


class _LossStep(nn.Module):
    """``forward(batch)`` = the stage's loss on ``model`` (what DDP wraps)."""

    def __init__(self, model: SemanticSplat, loss: StageLoss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Example) -> LossOutput:
        return self.loss(batch, self.model, self.model)


_SHOWN = ("loss", "psnr_target", "depth_l1_inv")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
