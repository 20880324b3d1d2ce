"""A per-scene optimisation baseline in the spirit of Feature 3DGS.

For each scene, Gaussians are initialised from the same sparse context views the feed-forward
model sees (one Gaussian per pixel of a subsampled grid, unprojected at a fixed depth, coloured by
the pixel; there is no SfM point cloud with two views) and optimised *for that scene* with the
same rasterizer and the same kinds of losses: photometric L1 on the context views, ``1 - cos`` of
the rendered-and-decoded segmentation feature against the SAM teacher and of the language
feature against the language teacher (per-scene 1×1 decoders from low-dimensional rendered
features, as Feature 3DGS's speed-up module). Target views are then rendered and scored with the
protocol of ``eval/protocols.py``.

The optimisation is given a wall-clock budget (100× the feed-forward time per scene in
``semanticsplat eval --baseline``) and scored at several points along the way, so the report
can say how long it needs to match the feed-forward model, or that it does not within the budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semanticsplat_ros.data.classes import NUM_CLASSES
from semanticsplat_ros.data.types import Example, Views
from semanticsplat_ros.eval.segmentation import confusion_matrix, miou_acc
from semanticsplat_ros.geometry import invert_pose, pixel_centers, transform_points, unproject
from semanticsplat_ros.metrics import psnr
from semanticsplat_ros.queries import classify
from semanticsplat_ros.render import Gaussians, render
from semanticsplat_ros.train.distillation import cosine_distillation_loss


@dataclass
class BaselineConfig:
    """Per-scene optimisation settings."""

    init_depth: float = 2.5
    """Depth (metres) at which context pixels are unprojected to initialise the Gaussians."""
    stride: int = 2
    """One Gaussian per ``stride``×``stride`` pixels of each context view."""
    feature_dim: int = 16
    """Width of each rendered low-dimensional feature (segmentation, language)."""
    lr: float = 1e-2
    """Adam learning rate of colours, opacities, features and decoders."""
    lr_means: float = 2e-3
    """Adam learning rate of the centres (metres per step scale)."""
    lr_scales: float = 5e-3
    """Adam learning rate of the log-scales and rotations."""
    semantic_weight: float = 1.0
    """Weight of each of the two distillation terms."""
    checkpoints: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    """Fractions of the budget at which the scene is scored."""


class _SceneModel(nn.Module):
    def __init__(self, views: Views, config: BaselineConfig, sam_dim: int, lang_dim: int) -> None:
        super().__init__()
        s = config.stride
        v, _, h, w = views.images.shape
        uv = pixel_centers(h, w, device=views.images.device)[::s, ::s].reshape(-1, 2)
        depth = torch.full((uv.shape[0],), config.init_depth, device=uv.device)
        means, colors = [], []
        for i in range(v):
            cam = unproject(uv, depth, views.K[i])
            means.append(transform_points(views.c2w[i], cam))
            colors.append(views.images[i][:, ::s, ::s].reshape(3, -1).T)
        means_t = torch.cat(means)
        n = means_t.shape[0]
        focal = float(views.K[:, 0, 0].mean())
        self.means = nn.Parameter(means_t)
        self.log_scales = nn.Parameter(
            torch.full((n, 3), math.log(config.init_depth * s / focal), device=uv.device)
        )
        self.quats = nn.Parameter(torch.tensor([1.0, 0, 0, 0], device=uv.device).repeat(n, 1))
        self.opacity_logits = nn.Parameter(torch.full((n,), 1.0, device=uv.device))
        self.color_logits = nn.Parameter(torch.logit(torch.cat(colors).clamp(0.02, 0.98)))
        self.features = nn.Parameter(0.1 * torch.randn(n, 2 * config.feature_dim, device=uv.device))
        self.seg_decoder = nn.Conv2d(config.feature_dim, sam_dim, 1).to(uv.device)
        self.lang_decoder = nn.Conv2d(config.feature_dim, lang_dim, 1).to(uv.device)
        self.feature_dim = config.feature_dim

    def gaussians(self) -> Gaussians:
        return Gaussians(
            means=self.means[None],
            quats=self.quats[None],
            scales=self.log_scales.exp()[None],
            opacities=self.opacity_logits.sigmoid()[None],
            colors=self.color_logits.sigmoid()[None],
            features=self.features[None],
        )

    def render(self, views: Views) -> tuple[Tensor, Tensor, Tensor]:
        """Colour (v,3,h,w), segmentation (v,sam,h,w) and language (v,lang,h,w) of ``views``."""
        out = render(
            self.gaussians(), invert_pose(views.c2w)[None], views.K[None], views.width, views.height
        )
        f = out.features[0]
        d = self.feature_dim
        return out.color[0], self.seg_decoder(f[:, :d]), self.lang_decoder(f[:, d:])


def _score(
    scene: _SceneModel, target: Views, class_embeddings: Tensor
) -> tuple[float, Tensor | None]:
    with torch.no_grad():
        color, _, lang = scene.render(target)
        value = float(psnr(color, target.images).mean())
        conf = None
        if target.labels is not None:
            conf = confusion_matrix(classify(lang, class_embeddings)[0], target.labels, NUM_CLASSES)
    return value, conf


def optimise_scene(
    example: Example,
    sam_teacher,
    lang_teacher,
    class_embeddings: Tensor,
    budget_s: float,
    config: BaselineConfig | None = None,
) -> list[dict]:
    """Optimise one scene for ``budget_s`` seconds; returns one record per checkpoint fraction:
    {"fraction", "seconds", "steps", "psnr", "confusion" (target-view language confusion)}."""
    if budget_s <= 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    config = config or BaselineConfig()
    ctx, tgt = example.context, example.target
    with torch.no_grad():
        sam_target = sam_teacher.embed(ctx.images)
        lang_target = lang_teacher.embed(ctx.images)
    scene = _SceneModel(ctx, config, sam_target.shape[1], lang_target.shape[1])
    optim = torch.optim.Adam(
        [
            {"params": [scene.means], "lr": config.lr_means},
            {"params": [scene.log_scales, scene.quats], "lr": config.lr_scales},
            {
                "params": [scene.opacity_logits, scene.color_logits, scene.features],
                "lr": config.lr,
            },
            {
                "params": [*scene.seg_decoder.parameters(), *scene.lang_decoder.parameters()],
                "lr": config.lr,
            },
        ]
    )
    records: list[dict] = []
    marks = sorted(config.checkpoints)
    start = time.perf_counter()
    optimising = 0.0  # seconds spent optimising (scoring is not counted)
    steps = 0
    while marks:
        t0 = time.perf_counter()
        color, seg, lang = scene.render(ctx)
        loss = F.l1_loss(color, ctx.images)
        seg_small = F.adaptive_avg_pool2d(seg, sam_target.shape[-2:])
        lang_small = F.adaptive_avg_pool2d(lang, lang_target.shape[-2:])
        loss = loss + config.semantic_weight * (
            cosine_distillation_loss(seg_small, sam_target)
            + cosine_distillation_loss(lang_small, lang_target)
        )
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        with torch.no_grad():
            scene.log_scales.clamp_(max=math.log(1.0))
        steps += 1
        optimising += time.perf_counter() - t0
        while marks and optimising >= marks[0] * budget_s:
            value, conf = _score(scene, tgt, class_embeddings)
            records.append(
                {"fraction": marks.pop(0), "seconds": optimising, "steps": steps, "psnr": value,
                 "confusion": conf}
            )  # fmt: skip
        if time.perf_counter() - start > 20 * budget_s + 60:
            raise RuntimeError("per-scene optimisation overran its budget by far")  # safety net
    return records


def evaluate_baseline(
    dataset,
    sam_teacher,
    lang_teacher,
    class_embeddings: Tensor,
    budget_s: float,
    config: BaselineConfig | None = None,
    progress: bool = True,
) -> dict:
    """Optimise every scene of ``dataset`` for ``budget_s`` and average per checkpoint fraction.

    Returns {"budget_s", "curve": [{"fraction", "seconds", "steps", "psnr",
    "language_target_miou"}], "num_examples"}.
    """
    from tqdm import tqdm

    config = config or BaselineConfig()
    sums: dict[float, dict] = {}
    for idx in tqdm(range(len(dataset)), desc="per-scene baseline", disable=not progress):
        for rec in optimise_scene(
            dataset[idx], sam_teacher, lang_teacher, class_embeddings, budget_s, config
        ):
            acc = sums.setdefault(
                rec["fraction"], {"seconds": 0.0, "steps": 0, "psnr": 0.0, "n": 0, "conf": None}
            )
            acc["seconds"] += rec["seconds"]
            acc["steps"] += rec["steps"]
            acc["psnr"] += rec["psnr"]
            acc["n"] += 1
            if rec["confusion"] is not None:
                acc["conf"] = (
                    rec["confusion"] if acc["conf"] is None else acc["conf"] + rec["confusion"]
                )
    curve = []
    for fraction in sorted(sums):
        acc = sums[fraction]
        n = max(acc["n"], 1)
        curve.append(
            {
                "fraction": fraction,
                "seconds": acc["seconds"] / n,
                "steps": acc["steps"] / n,
                "psnr": acc["psnr"] / n,
                "language_target_miou": miou_acc(acc["conf"])[0]
                if acc["conf"] is not None
                else None,
            }
        )
    return {"budget_s": budget_s, "curve": curve, "num_examples": len(dataset)}


def time_to_match(curve: list[dict], key: str, target: float) -> float | None:
    """Seconds at the first checkpoint where ``curve[key]`` ≥ ``target``; None if never."""
    for point in curve:
        value = point.get(key)
        if value is not None and value >= target:
            return float(point["seconds"])
    return None
