"""Training of the tiny default teachers on the synthetic world (``semanticsplat train-teachers``).

Both teachers train on a pool of views rendered once from SyntheticDataset scenes (rendering is
the slow part on a CPU), with random horizontal flips.

* Tiny SAM: point prompts sampled on the image (half uniformly over pixels, half uniformly over
  instances so small objects count); the three multimask outputs are supervised with the part
  (small), instance (medium) and group (large) mask containing the point — BCE + dice — and the
  IoU head regresses the IoU actually reached.
* Tiny LSeg: per-pixel softmax over the cosine similarities (× a fixed logit scale, as LSeg) to
  one text embedding (MiniLM) per class, class-balanced, plus a cosine pull towards a per-class
  target so that features sit in MiniLM's space (which is what lets words never seen in training
  work). ``vocabulary="names"``: the prototype and the pull target are the canonical class
  name's embedding. ``vocabulary="open"`` (``assets/class_vocabulary.yaml``): every step each
  class's prototype is the (normalized mean) embedding of ``texts_per_step`` random train texts
  of that class, so features must be close to every text of the class, and the pull target is
  the normalized mean of the normalized embeddings of all its train texts (and the name).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.data.classes import CLASS_NAMES, NUM_CLASSES
from semanticsplat_ros.data.styled import WorldStyle
from semanticsplat_ros.data.synthetic import SyntheticDataset, ViewSampling
from semanticsplat_ros.teachers.base import TextEncoder
from semanticsplat_ros.teachers.lseg import TinyLSeg, TinyLSegConfig
from semanticsplat_ros.teachers.sam import SamTeacher, TinySamConfig, build_tiny_sam
from semanticsplat_ros.teachers.vocabulary import DEFAULT_VOCABULARY, load_vocabulary

LSegVocabulary = Literal["names", "open"]
"""What the tiny LSeg trains against: the class names, or the open class vocabulary."""
LSEG_VOCABULARIES: tuple[str, ...] = get_args(LSegVocabulary)

Progress = Callable[[int, dict[str, float]], None]


@dataclass
class ViewPool:
    """Rendered training views with their label maps, all (n, ...) on the CPU."""

    images: Float[Tensor, "n 3 h w"]
    labels: Int[Tensor, "n h w"]
    parts: Int[Tensor, "n h w"]
    instances: Int[Tensor, "n h w"]
    groups: Int[Tensor, "n h w"]

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, size: int, generator: torch.Generator) -> ViewPool:
        """``size`` random views, each flipped horizontally with probability 1/2."""
        idx = torch.randint(len(self), (size,), generator=generator)
        flip = torch.rand(size, generator=generator) < 0.5
        out = []
        for t in (self.images, self.labels, self.parts, self.instances, self.groups):
            x = t[idx].clone()
            x[flip] = x[flip].flip(-1)
            out.append(x)
        return ViewPool(*out)


def render_pool(
    seeds: range,
    height: int,
    width: int,
    views_per_scene: int = 2,
    progress: Progress | None = None,
    styles: Sequence[WorldStyle] = ("classic",),
) -> ViewPool:
    """Render ``views_per_scene`` context views of every scene in ``seeds``, in each world
    style of ``styles`` (``data.styled``)."""
    parts: dict[str, list[Tensor]] = {k: [] for k in ViewPool.__dataclass_fields__}
    done = 0
    for style in styles:
        dataset = SyntheticDataset(
            seeds, height=height, width=width, num_context=views_per_scene, num_target=0,
            sampling=ViewSampling(style=style),
        )  # fmt: skip
        for i in range(len(dataset)):
            views = dataset[i].context
            for key in parts:
                parts[key].append(getattr(views, key))
            if progress is not None:
                progress(done, {})
            done += 1
    return ViewPool(**{k: torch.cat(v) for k, v in parts.items()})


def sample_points(
    instances: Int[Tensor, "b h w"], num_points: int, generator: torch.Generator
) -> Int[Tensor, "b p 2"]:
    """(x, y) prompts: the first half uniform over pixels, the rest uniform over instances."""
    b, h, w = instances.shape
    out = torch.empty(b, num_points, 2, dtype=torch.long)
    n_uniform = num_points // 2
    for i in range(b):
        flat = torch.randint(h * w, (n_uniform,), generator=generator)
        ids = torch.unique(instances[i])
        ids = ids[ids >= 0]
        picks = ids[torch.randint(len(ids), (num_points - n_uniform,), generator=generator)]
        extra = []
        for inst in picks.tolist():
            where = torch.nonzero((instances[i] == inst).flatten()).squeeze(1)
            extra.append(where[torch.randint(len(where), (1,), generator=generator)])
        flat = torch.cat([flat, *extra])
        out[i, :, 0] = flat % w
        out[i, :, 1] = flat // w
    return out


def masks_at_points(
    id_maps: Int[Tensor, "b h w"], points: Int[Tensor, "b p 2"]
) -> Float[Tensor, "b p h w"]:
    """For every point, the mask of the id found under it (empty where the id is < 0)."""
    b = id_maps.shape[0]
    at = id_maps[torch.arange(b)[:, None], points[..., 1], points[..., 0]]  # (b, p)
    return ((id_maps[:, None] == at[..., None, None]) & (at[..., None, None] >= 0)).float()


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU over the last two dims of boolean/0-1 masks (0 where both are empty)."""
    pred, target = pred.bool(), target.bool()
    inter = (pred & target).flatten(-2).sum(-1).float()
    union = (pred | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))


@dataclass
class TinySamTraining:
    """Optimisation settings of the tiny SAM."""

    steps: int = 1200
    """Optimizer steps."""
    batch_size: int = 8
    """Images per step."""
    points_per_image: int = 8
    """Point prompts per image per step."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 5% of it)."""
    seed: int = 0
    """Seed of the initialisation and the batch / prompt sampling."""


def train_tiny_sam(
    pool: ViewPool,
    config: TinySamConfig | None = None,
    training: TinySamTraining | None = None,
    progress: Progress | None = None,
    init: SamTeacher | None = None,
) -> tuple[SamTeacher, dict[str, float]]:
    """Train the tiny SAM on ``pool`` (from ``init``'s weights if given, e.g. to continue a run).

    Returns the teacher and the final smoothed losses.
    """
    config, training = config or TinySamConfig(), training or TinySamTraining()
    torch.manual_seed(training.seed)
    gen = torch.Generator().manual_seed(training.seed)
    teacher = SamTeacher(build_tiny_sam(config)).train()
    if init is not None:
        teacher.sam.load_state_dict(init.sam.state_dict())
    optim = torch.optim.AdamW(teacher.parameters(), lr=training.lr, weight_decay=1e-4)
    sched = _cosine(optim, training.steps)
    smooth: dict[str, float] = {}
    start = time.time()
    for step in range(training.steps):
        batch = pool.batch(training.batch_size, gen)
        points = sample_points(batch.instances, training.points_per_image, gen)
        targets = torch.stack(
            [masks_at_points(m, points) for m in (batch.parts, batch.instances, batch.groups)],
            dim=2,
        )  # (b, p, 3, h, w)
        emb = teacher.embed(batch.images)
        pred = teacher.predict_masks(emb, points.float(), tuple(batch.images.shape[-2:]))
        bce = F.binary_cross_entropy_with_logits(pred.logits, targets)
        prob = pred.logits.sigmoid().flatten(-2)
        t = targets.flatten(-2)
        dice = 1 - (2 * (prob * t).sum(-1) + 1) / (prob.sum(-1) + t.sum(-1) + 1)
        iou_true = mask_iou(pred.logits.detach() > 0, targets)
        iou_loss = F.mse_loss(pred.iou, iou_true)
        loss = bce + dice.mean() + iou_loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(teacher.parameters(), 1.0)
        optim.step()
        sched.step()
        _smooth(smooth, {"loss": loss.item(), "iou": iou_true[:, :, 1].mean().item()})
        if progress is not None:
            progress(step, smooth)
    smooth["seconds"] = time.time() - start
    return teacher.eval(), smooth


@dataclass
class TinyLSegTraining:
    """Optimisation settings of the tiny LSeg."""

    steps: int = 1200
    """Optimizer steps."""
    batch_size: int = 16
    """Images per step."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 5% of it)."""
    logit_scale: float = 1 / 0.07
    """Fixed inverse temperature of the per-pixel softmax (CLIP's initial value)."""
    alignment_weight: float = 1.0
    """Weight of 1 - cos(feature, text embedding of the true class)."""
    seed: int = 0
    """Seed of the initialisation and the batch sampling."""
    vocabulary: LSegVocabulary = "names"
    """``names``: the class names only (the original objective, the default: ``open`` did not
    measure better on unseen words at 400 steps); ``open``: many train texts per class from
    ``vocabulary_file`` (see the module docstring)."""
    vocabulary_file: str = str(DEFAULT_VOCABULARY)
    """The class vocabulary YAML read by ``vocabulary="open"``."""
    texts_per_step: int = 1
    """``open``: train texts sampled per class per step (their normalized mean is the
    class's prototype in that step's softmax)."""

    def __post_init__(self) -> None:
        if self.vocabulary not in LSEG_VOCABULARIES:
            raise ValueError(
                f"vocabulary must be one of {LSEG_VOCABULARIES}, got {self.vocabulary!r}"
            )
        if self.texts_per_step < 1:
            raise ValueError(f"texts_per_step must be >= 1, got {self.texts_per_step}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}"
            )


def class_prompts_for_training() -> list[str]:
    """The texts the ``names`` objective trains with: the canonical class names, nothing else."""
    return list(CLASS_NAMES)


class LSegTextTargets:
    """The text side of the tiny LSeg objective: per step, one prototype per class for the
    softmax and one pull target per class; every text is encoded once, up front."""

    def __init__(self, text_encoder: TextEncoder, training: TinyLSegTraining) -> None:
        self.vocabulary, self.texts_per_step = training.vocabulary, training.texts_per_step
        names = text_encoder.encode(class_prompts_for_training()).float()  # (k, d)
        if self.vocabulary == "names":
            self.align = names
            self.texts: list[Tensor] = [names[i : i + 1] for i in range(NUM_CLASSES)]
            return
        vocab = load_vocabulary(training.vocabulary_file)
        per_class = [
            list(dict.fromkeys((n, *t))) for n, t in zip(CLASS_NAMES, vocab.train, strict=True)
        ]
        flat = text_encoder.encode([t for texts in per_class for t in texts]).float()
        self.texts = list(F.normalize(flat, dim=-1).split([len(t) for t in per_class]))
        self.align = F.normalize(torch.stack([t.mean(0) for t in self.texts]), dim=-1)

    @property
    def num_texts(self) -> int:
        return sum(len(t) for t in self.texts)

    def prototypes(self, generator: torch.Generator) -> Float[Tensor, "k d"]:
        """This step's class prototypes (``names``: the class names, no random draw)."""
        if self.vocabulary == "names":
            return self.align
        rows = []
        for texts in self.texts:
            pick = torch.randint(len(texts), (self.texts_per_step,), generator=generator)
            rows.append(texts[pick].mean(0))
        return F.normalize(torch.stack(rows), dim=-1)


def train_tiny_lseg(
    pool: ViewPool,
    text_encoder: TextEncoder,
    config: TinyLSegConfig | None = None,
    training: TinyLSegTraining | None = None,
    progress: Progress | None = None,
) -> tuple[TinyLSeg, dict[str, float]]:
    """Train the tiny LSeg against ``text_encoder``'s embeddings of the class names or of the
    class vocabulary (``training.vocabulary``)."""
    config, training = config or TinyLSegConfig(), training or TinyLSegTraining()
    if text_encoder.dim != config.feature_dim:
        raise ValueError(
            f"text encoder width {text_encoder.dim} != feature_dim {config.feature_dim}"
        )
    torch.manual_seed(training.seed)
    gen = torch.Generator().manual_seed(training.seed)
    model = TinyLSeg(config).train()
    targets = LSegTextTargets(text_encoder, training)
    counts = torch.bincount(pool.labels[pool.labels >= 0], minlength=NUM_CLASSES).float()
    weight = (counts.sum() / counts.clamp(min=1)).sqrt()
    weight = weight / weight[counts > 0].mean()
    optim = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=1e-4)
    sched = _cosine(optim, training.steps)
    smooth: dict[str, float] = {}
    start = time.time()
    for step in range(training.steps):
        batch = pool.batch(training.batch_size, gen)
        if tuple(batch.images.shape[-2:]) != (config.image_size, config.image_size):
            raise ValueError(f"pool images must be {config.image_size}² for the tiny LSeg")
        loss, stats = _lseg_loss(model(batch.images), batch.labels, targets, gen, weight, training)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        _smooth(smooth, stats)
        if progress is not None:
            progress(step, smooth)
    smooth["seconds"] = time.time() - start
    return model.eval(), smooth


def _lseg_loss(
    features: Float[Tensor, "b d hf wf"],
    labels: Int[Tensor, "b h w"],
    targets: LSegTextTargets,
    generator: torch.Generator,
    weight: Float[Tensor, " k"],
    training: TinyLSegTraining,
) -> tuple[Tensor, dict[str, float]]:
    """Class-balanced softmax over the step's prototypes + the cosine pull; (loss, stats)."""
    protos = targets.prototypes(generator)
    same = targets.vocabulary == "names"
    text = protos if same else torch.cat([protos, targets.align])
    # Cosines at the feature resolution, then upsampled: k maps instead of d channels.
    cos = torch.einsum("bdhw,kd->bkhw", features, text)
    cos = F.interpolate(cos, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    cos_proto, cos_align = (cos, cos) if same else cos.split(NUM_CLASSES, dim=1)
    ce = F.cross_entropy(training.logit_scale * cos_proto, labels, weight=weight, ignore_index=-1)
    valid = labels >= 0
    cos_true = cos_align.gather(1, labels.clamp(min=0)[:, None])[:, 0]
    align = (1 - cos_true)[valid].mean()
    loss = ce + training.alignment_weight * align
    acc = (cos_proto.argmax(1) == labels)[valid].float().mean().item()
    return loss, {"loss": loss.item(), "acc": acc, "cos": cos_true[valid].mean().item()}


def _cosine(optim: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, min(50, steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optim, factor)


def _smooth(state: dict[str, float], values: dict[str, float], beta: float = 0.95) -> None:
    for k, v in values.items():
        state[k] = v if k not in state else beta * state[k] + (1 - beta) * v


def save_pool(pool: ViewPool, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: getattr(pool, k) for k in ViewPool.__dataclass_fields__}, path)


def load_pool(path: Path) -> ViewPool:
    return ViewPool(**torch.load(path, map_location="cpu", weights_only=True))
