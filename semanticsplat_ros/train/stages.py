"""The two distillation stages as trainer losses, and ``build_loss`` for every stage.

Stage 1 (segmentation): render the target views, expand the rendered segmentation feature to the
SAM width, and distil the SAM teacher's embedding of the same image: ``1 - cos`` at the teacher's
grid + 0.2 × (focal + dice / 20) between SAM's mask decoder run on our embedding and on the
teacher's, for random point prompts. Photometric L1 keeps geometry and appearance.

Stage 2 (language): the segmentation branch (segmentation head and its expander) is frozen;
``1 - cos`` between our expanded language field and the language teacher's features after HCAM
pooling inside the SAM teacher's small / medium / large masks. The stage-1 cosine term on the
(frozen-head) segmentation output and the photometric term stay on, so the shared trunk keeps
serving both fields.

Teacher features of the context views are also fed to the network as conditions when its
fusion config uses them (method step 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semanticsplat_ros.checkpoint import dataclass_from_dict
from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.data.types import Example
from semanticsplat_ros.geometry import invert_pose
from semanticsplat_ros.metrics import psnr
from semanticsplat_ros.model import SemanticSplat
from semanticsplat_ros.teachers.base import Teacher, TextEncoder
from semanticsplat_ros.teachers.frame_cache import CachedExample, TeacherFeatures
from semanticsplat_ros.teachers.sam import MaskGenerationConfig, SamTeacher
from semanticsplat_ros.teachers.spec import (
    TINY_LSEG,
    TINY_SAM,
    LanguageSpec,
    SamSpec,
    load_language_teacher,
    load_sam_teacher,
    spec_to_checkpoint_dict,
)
from semanticsplat_ros.train.distillation import (
    MASK_LOSS_WEIGHT,
    class_balance_weights,
    cosine_distillation_loss,
    hcam_language_target,
    hcam_language_target_from_masks,
    label_distillation_loss,
    mask_loss,
)
from semanticsplat_ros.train.losses import (
    DEPTH_LOSSES,
    LossOutput,
    PhotometricLoss,
    PhotometricLossConfig,
    StageLoss,
    check_depth_loss,
    l1_loss,
)


@dataclass
class DistillationLossConfig:
    """Options of the stage-1/2 losses (the ``loss`` mapping of the training config)."""

    photometric_weight: float = 1.0
    """Weight of L1 on the rendered target colours."""
    seg_weight: float = 1.0
    """Weight of ``1 - cos`` of the segmentation embedding (stage 1; regulariser in stage 2)."""
    mask_points: int = 4
    """Random point prompts per target view for the mask loss (stage 1; 0 disables it)."""
    language_weight: float = 1.0
    """Weight of ``1 - cos`` of the language field (stage 2)."""
    hcam: bool = True
    """Pool the language teacher inside SAM's three mask levels (stage 2); off = raw features."""
    hcam_points_per_side: int = 8
    """Point grid of the automatic mask generation used for HCAM pooling."""
    class_balance: float = 0.0
    """Stage 2: weigh pixels by ``freq ** -class_balance`` of the teacher's own class labels
    (0: the paper's plain mean; 0.5: rare classes count more; ``class_balance_weights``)."""
    label_weight: float = 0.0
    """Stage 2: weight of the KL between the teacher's and our class distributions over the
    class names (``label_distillation_loss``; 0 = the paper's cosine alone)."""
    label_temperature: float = 0.07
    """Stage 2: softmax temperature of that term (the cosine scale of ``queries.classify``)."""
    depth_weight: float = 0.0
    """Depth supervision of the context views where the data has depth, as in stage 0
    (``PhotometricLossConfig.depth_weight``): stages 1 and 2 train the whole trunk at a high
    learning rate, and this keeps a depth-supervised stage-0 geometry from drifting. 0 = off."""
    depth_loss: str = "log_l1"
    """``inverse_l1`` or ``log_l1`` (``semanticsplat_ros.train.losses.DEPTH_LOSSES``)."""
    autoencoder_steps: int = 0
    """Stage 2: steps of the language autoencoder warm start before distillation
    (``DistillationLoss.warm_start``; needs the model's language skip). 0 = none."""
    autoencoder_batches: int = 16
    """Training batches whose images' teacher features the warm start fits."""
    autoencoder_images: int = 16
    """Images per warm-start step."""
    autoencoder_lr: float = 3e-3
    """Adam learning rate of the warm start (cosine decay to 0)."""
    sam_teacher: str = TINY_SAM
    """SAM teacher spec (``teachers.spec``): ``tiny``, ``tiny:PATH``, ``vit_b:PATH``, ..."""
    language_teacher: str = TINY_LSEG
    """Language teacher spec: ``tiny_lseg``, ``tiny_lseg:PATH`` or ``open_clip:ARCH:PATH``."""
    sam_checkpoint: str = ""
    """Tiny SAM teacher checkpoint (the older spelling of ``sam_teacher: tiny:PATH``); "" =
    the shipped one."""
    language_checkpoint: str = ""
    """Tiny LSeg teacher checkpoint (``language_teacher: tiny_lseg:PATH``); "" = shipped."""

    def __post_init__(self) -> None:
        check_depth_loss(self.depth_loss)
        if self.depth_weight < 0:
            raise ValueError(f"depth_weight must be >= 0, got {self.depth_weight}")
        for name, low in (
            ("autoencoder_steps", 0),
            ("autoencoder_batches", 1),
            ("autoencoder_images", 1),
        ):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        self.teacher_specs()  # bad specs fail when the config is read, not at the first step

    def teacher_specs(self) -> tuple[SamSpec, LanguageSpec]:
        """The SAM and language teachers these options name."""
        sam, language = SamSpec.parse(self.sam_teacher), LanguageSpec.parse(self.language_teacher)
        for old, spec, tiny in (
            (self.sam_checkpoint, sam, TINY_SAM),
            (self.language_checkpoint, language, TINY_LSEG),
        ):
            if old and spec.to_string() != tiny:
                raise ValueError(
                    f"give the teacher {spec.to_string()!r} or the tiny checkpoint {old!r}, "
                    "not both"
                )
        if self.sam_checkpoint:
            sam = SamSpec(TINY_SAM, Path(self.sam_checkpoint))
        if self.language_checkpoint:
            language = LanguageSpec(TINY_LSEG, None, Path(self.language_checkpoint))
        return sam, language


class _Teachers:
    """Frozen teachers on the model's device, each loaded on first use (with a teacher cache
    the trainer may never need one)."""

    def __init__(self, config: DistillationLossConfig) -> None:
        self.specs = config.teacher_specs()
        self.generation = MaskGenerationConfig(points_per_side=config.hcam_points_per_side)
        self.device = torch.device("cpu")
        self._sam: SamTeacher | None = None
        self._language: Teacher | None = None
        self._text: TextEncoder | None = None
        self._class_embeddings: Tensor | None = None

    @property
    def sam(self) -> SamTeacher:
        if self._sam is None:
            # Building a model draws random initial weights: loading a teacher (lazily, at its
            # first use) must not move the global RNG that the training's random draws follow.
            with torch.random.fork_rng(devices=[]):
                self._sam = load_sam_teacher(self.specs[0], self.device).requires_grad_(False)
            self._sam.generation = self.generation
        return self._sam

    def _load_language(self) -> tuple[Teacher, TextEncoder]:
        if self._language is None or self._text is None:
            with torch.random.fork_rng(devices=[]):
                loaded = load_language_teacher(self.specs[1], self.device)
            if isinstance(loaded.teacher, nn.Module):
                loaded.teacher.requires_grad_(False)
            self._language, self._text = loaded.teacher, loaded.text_encoder
        return self._language, self._text

    @property
    def language(self) -> Teacher:
        return self._load_language()[0]

    def class_embeddings(self, device: torch.device) -> Tensor:
        """Text embeddings of the class names (for the class-balanced stage-2 weights)."""
        if self._class_embeddings is None:
            self._class_embeddings = self._load_language()[1].encode(list(CLASS_NAMES))
        return self._class_embeddings.to(device)

    def to(self, device: torch.device) -> _Teachers:
        if self.device != device:
            for teacher in (self._sam, self._language):
                if isinstance(teacher, nn.Module):
                    teacher.to(device)
            self.device = device
        return self


class DistillationLoss:
    """Stage 1 (``stage=1``) or stage 2 (``stage=2``) loss; see the module docstring."""

    def __init__(self, stage: int, config: DistillationLossConfig | None = None) -> None:
        if stage not in (1, 2):
            raise ValueError(f"distillation stages are 1 and 2, got {stage}")
        self.stage = stage
        self.config = config or DistillationLossConfig()
        self._teachers: _Teachers | None = None

    def teacher_record(self) -> dict[str, Any]:
        """The teachers of this loss as a model checkpoint records them (``meta["teachers"]``)."""
        return spec_to_checkpoint_dict(*self.config.teacher_specs())

    def teachers(self, device: torch.device) -> _Teachers:
        if self._teachers is None:
            self._teachers = _Teachers(self.config)
        return self._teachers.to(device)

    def trainable_parameters(self, model: SemanticSplat) -> Iterable[nn.Parameter]:
        if self.stage == 1:
            return [p for p in model.parameters() if p.requires_grad]
        frozen = {id(p) for p in model.semantic_heads.seg.parameters()}
        frozen |= {id(p) for p in model.seg_expander.parameters()}
        for p in model.parameters():
            if id(p) in frozen:
                p.requires_grad_(False)
        return [p for p in model.parameters() if p.requires_grad]

    def _language_terms(
        self, ours: Tensor, teacher: Tensor, t: _Teachers
    ) -> tuple[Tensor, dict[str, float]]:
        """Stage 2's language loss at the teacher's grid: ``1 - cos`` (+ the label KL), with the
        class-balance weights of the teacher's own labels."""
        cfg = self.config
        needs_text = cfg.class_balance > 0 or cfg.label_weight > 0
        embeddings = t.class_embeddings(teacher.device) if needs_text else None
        weights = None
        if embeddings is not None and cfg.class_balance > 0:
            weights = class_balance_weights(teacher, embeddings, cfg.class_balance)
        lang_cos = cosine_distillation_loss(ours, teacher, weights)
        total = cfg.language_weight * lang_cos
        terms = {"lang_cos": float(lang_cos.detach())}
        if embeddings is not None and cfg.label_weight > 0:
            lang_kl = label_distillation_loss(
                ours, teacher, embeddings, cfg.label_temperature, weights
            )
            total = total + cfg.label_weight * lang_kl
            terms["lang_kl"] = float(lang_kl.detach())
        return total, terms

    def warm_start(
        self,
        model: SemanticSplat,
        batches: Iterator[Example],
        device: torch.device,
        log: Callable[[str, float, int], None] | None = None,
        progress: bool = False,
    ) -> dict[str, float]:
        """Stage 2 with ``loss.autoencoder_steps``: fit the language path as an autoencoder of
        the teacher's features before the distillation proper (as LangSplat compresses CLIP
        features to a few dimensions, here with the network's own encoder and decoder).

        The encoder is the model's language skip (teacher features → the rendered width), the
        decoder its language expander; they are fitted with stage 2's own language loss on the
        teacher features of ``autoencoder_batches`` training batches (context and target
        images), ``autoencoder_steps`` steps of ``autoencoder_images`` images each, at the
        teacher's grid. The language head's output is zeroed first, so the field starts as the
        encoded teacher (rendered from the context views) and stage 2 trains the head from
        there. Returns the last terms.
        """
        cfg = self.config
        if cfg.autoencoder_steps <= 0:
            return {}
        if self.stage != 2:
            raise ValueError("loss.autoencoder_steps is a stage-2 option")
        if model.language_skip is None:
            raise ValueError(
                "loss.autoencoder_steps needs the model's language skip (--set language_skip=true)"
            )
        t = self.teachers(device)
        with torch.no_grad():
            feats = []
            for _ in range(cfg.autoencoder_batches):
                batch = next(batches).to(device)
                if isinstance(batch, CachedExample):
                    both = [_views_features(batch, which).lang for which in ("context", "target")]
                    feats.append(torch.cat(both, dim=1).flatten(0, 1))
                    continue
                images = torch.cat([batch.context.images, batch.target.images], dim=1)
                feats.append(t.language.embed(images.flatten(0, 1)))
            teacher = torch.cat(feats)
            nn.init.zeros_(model.semantic_heads.language.weight)
            nn.init.zeros_(model.semantic_heads.language.bias)
        params = [*model.language_skip.parameters(), *model.language_expander.parameters()]
        optimizer = torch.optim.Adam(params, lr=cfg.autoencoder_lr)
        generator = torch.Generator().manual_seed(0)
        terms: dict[str, float] = {}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.autoencoder_steps, desc="stage 2 warm start", dynamic_ncols=True)
        try:
            for step in range(cfg.autoencoder_steps):
                lr = (
                    cfg.autoencoder_lr
                    * 0.5
                    * (1 + math.cos(math.pi * step / cfg.autoencoder_steps))
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                idx = torch.randint(len(teacher), (cfg.autoencoder_images,), generator=generator)
                target = teacher[idx.to(teacher.device)]
                # At the teacher's grid (the skip is per pixel): 4x cheaper than at full size.
                decoded = model.language_expander(model.language_skip(target)[:, None])[:, 0]
                total, terms = self._language_terms(decoded, target, t)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                if log is not None and (step + 1) % 20 == 0:
                    for k, v in terms.items():
                        log(f"warm_start/{k}", v, step + 1)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items()})
        finally:
            if bar is not None:
                bar.close()
        return terms

    @torch.no_grad()
    def _conditions(
        self, model: SemanticSplat, t: _Teachers, batch: Example
    ) -> tuple[Tensor | None, ...]:
        ctx = batch.context
        fusion = model.config.fusion
        if isinstance(batch, CachedExample):
            cached = _views_features(batch, "context")
            return (
                cached.sam if fusion.use_sam else None,
                cached.lang if fusion.use_language else None,
            )
        b, v = ctx.images.shape[:2]
        flat = ctx.images.flatten(0, 1)
        sam = t.sam.embed(flat).unflatten(0, (b, v)) if fusion.use_sam else None
        lang = t.language.embed(flat).unflatten(0, (b, v)) if fusion.use_language else None
        return sam, lang

    def __call__(self, batch: Example, model: SemanticSplat, forward: nn.Module) -> LossOutput:
        cfg = self.config
        ctx, tgt = batch.context, batch.target
        device = ctx.images.device
        t = self.teachers(device)
        sam_cond, lang_cond = self._conditions(model, t, batch)
        cached = _views_features(batch, "target") if isinstance(batch, CachedExample) else None
        out = forward(ctx, sam_cond, lang_cond)
        rendered = model.render(out, invert_pose(tgt.c2w), tgt.K, tgt.width, tgt.height)
        seg, lang = model.decode_features(rendered)
        images_t = tgt.images.flatten(0, 1)
        n, _, H, W = images_t.shape
        terms: dict[str, float] = {}

        l1 = l1_loss(rendered.color, tgt.images)
        total = cfg.photometric_weight * l1
        terms["l1_target"] = float(l1.detach())
        terms["psnr_target"] = float(psnr(rendered.color.detach(), tgt.images).mean())
        if cfg.depth_weight > 0 and ctx.depth is not None:
            depth = DEPTH_LOSSES[cfg.depth_loss](out.depth, ctx.depth, ctx.near, ctx.far)
            total = total + cfg.depth_weight * depth
            terms[f"depth_{cfg.depth_loss}"] = float(depth.detach())

        if cached is not None:
            teacher_seg = cached.sam.flatten(0, 1)
        else:
            with torch.no_grad():
                teacher_seg = t.sam.embed(images_t)
        ours_seg = F.adaptive_avg_pool2d(seg.flatten(0, 1), teacher_seg.shape[-2:])
        seg_cos = cosine_distillation_loss(ours_seg, teacher_seg)
        total = total + cfg.seg_weight * seg_cos
        terms["seg_cos"] = float(seg_cos.detach())

        if self.stage == 1 and cfg.mask_points > 0:
            pts = torch.rand(n, cfg.mask_points, 2, device=device)
            pts = pts * torch.tensor([W, H], device=device, dtype=pts.dtype)
            ours = t.sam.predict_masks_at(ours_seg, pts, (H, W)).logits
            with torch.no_grad():
                teacher = t.sam.predict_masks_at(teacher_seg, pts, (H, W)).logits
            masks = mask_loss(ours, teacher)
            total = total + cfg.seg_weight * MASK_LOSS_WEIGHT * masks
            terms["seg_mask"] = float(masks.detach())

        if self.stage == 2:
            with torch.no_grad():
                if cached is not None:
                    teacher_lang = cached.lang.flatten(0, 1)
                    if cfg.hcam:
                        levels = [
                            m.flatten(0, 1) for m in (cached.small, cached.medium, cached.large)
                        ]
                        teacher_lang = hcam_language_target_from_masks(teacher_lang, levels)
                else:
                    teacher_lang = t.language.embed(images_t)
                    if cfg.hcam:
                        teacher_lang = hcam_language_target(teacher_lang, t.sam, images_t)
            ours_lang = F.adaptive_avg_pool2d(lang.flatten(0, 1), teacher_lang.shape[-2:])
            lang_total, lang_terms = self._language_terms(ours_lang, teacher_lang, t)
            total = total + lang_total
            terms |= lang_terms

        terms["loss"] = float(total.detach())
        images = {
            "target/pred": rendered.color[0, 0].detach(),
            "target/gt": tgt.images[0, 0],
        }
        return LossOutput(total=total, terms=terms, images=images)


def _views_features(batch: CachedExample, which: str) -> TeacherFeatures:
    """The cached teacher features of a batch's context or target views (b, v, ...)."""
    features = batch.context_features if which == "context" else batch.target_features
    if features is None:
        raise ValueError(f"the batch carries no cached teacher features of its {which} views")
    return features


def build_loss(stage: int, options: dict | None = None) -> StageLoss:
    """The loss of ``stage`` built from ``options`` (the training config's ``loss`` mapping):
    stage 0 is ``PhotometricLoss``, stages 1 and 2 are ``DistillationLoss``."""
    options = dict(options or {})
    if stage == 0:
        return PhotometricLoss(dataclass_from_dict(PhotometricLossConfig, options))
    if stage in (1, 2):
        return DistillationLoss(stage, dataclass_from_dict(DistillationLossConfig, options))
    raise ValueError(f"no loss registered for stage {stage} (stages with a loss: [0, 1, 2])")
