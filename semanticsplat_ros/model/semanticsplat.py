"""SemanticSplat: composition of backbone, multi-view transformer, cost volume, fusion, depth,
Gaussian adapter and semantic heads (no computation of its own beyond reshaping)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.checkpoint import (
    dataclass_from_dict,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from semanticsplat_ros.data.types import DEFAULT_NEAR, Views
from semanticsplat_ros.geometry import scale_intrinsics
from semanticsplat_ros.model.backbone import Backbone, BackboneConfig
from semanticsplat_ros.model.cost_volume import CostVolumeConfig, correlation_cost_volume
from semanticsplat_ros.model.depth_head import DepthHead, DepthHeadConfig
from semanticsplat_ros.model.fusion import Fusion, FusionConfig
from semanticsplat_ros.model.gaussian_adapter import GaussianAdapter, GaussianAdapterConfig
from semanticsplat_ros.model.layers import UNetConfig
from semanticsplat_ros.model.semantic_heads import (
    FeatureExpander,
    LanguageSkip,
    SemanticHeads,
    SemanticHeadsConfig,
)
from semanticsplat_ros.model.transformer import MultiViewTransformer, TransformerConfig
from semanticsplat_ros.render import render
from semanticsplat_ros.render.types import Gaussians, RenderOutput

MODEL_KIND = "semanticsplat_model"


@dataclass
class SemanticSplatConfig:
    """The whole network. Presets: ``SemanticSplatConfig.small()`` (CPU, 64²–128²) and
    ``SemanticSplatConfig.paper()`` (GPU, 256²)."""

    name: str = "custom"
    """A label stored with checkpoints (``small``, ``paper`` or ``custom``)."""

    sam_dim: int = 256
    """Width of the SAM teacher embeddings (input condition and segmentation decode target)."""

    language_dim: int = 384
    """Width of the language teacher features (input condition and language decode target)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    """CNN backbone (s = 4)."""

    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    """Self- and cross-view attention over the backbone tokens."""

    cost_volume: CostVolumeConfig = field(default_factory=CostVolumeConfig)
    """Plane-sweep cost volume."""

    fusion: FusionConfig = field(default_factory=FusionConfig)
    """Multi-conditioned fusion U-Net (which teacher conditions are used)."""

    depth: DepthHeadConfig = field(default_factory=DepthHeadConfig)
    """Depth U-Net, softmax and upsampling."""

    gaussians: GaussianAdapterConfig = field(default_factory=GaussianAdapterConfig)
    """Per-pixel Gaussian parameter heads."""

    semantic: SemanticHeadsConfig = field(default_factory=SemanticHeadsConfig)
    """Semantic latent / segmentation / language heads and expansion CNNs."""

    @staticmethod
    def small() -> SemanticSplatConfig:
        """CPU config: trains at 64×64 to 128×128 on two cores."""
        return SemanticSplatConfig(name="small")

    @staticmethod
    def paper() -> SemanticSplatConfig:
        """GPU config at 256×256 (MVSplat-sized encoder, CLIP-width language features)."""
        return SemanticSplatConfig(
            name="paper",
            sam_dim=256,
            language_dim=512,
            backbone=BackboneConfig(full_channels=32, half_channels=64, channels=128, blocks=2),
            transformer=TransformerConfig(blocks=6, heads=4, mlp_ratio=4.0),
            cost_volume=CostVolumeConfig(num_depths=128),
            fusion=FusionConfig(
                condition_dim=64, latent_dim=128, unet=UNetConfig(channels=128, blocks=2)
            ),
            depth=DepthHeadConfig(
                unet=UNetConfig(channels=128, blocks=2), refine_channels=64, cascade_channels=32
            ),
            gaussians=GaussianAdapterConfig(hidden_channels=64),
            semantic=SemanticHeadsConfig(
                latent_dim=64, seg_render_dim=32, language_render_dim=32, expand_hidden=128
            ),
        )

    @staticmethod
    def preset(name: str) -> SemanticSplatConfig:
        """``small`` or ``paper``."""
        presets = {"small": SemanticSplatConfig.small, "paper": SemanticSplatConfig.paper}
        if name not in presets:
            raise ValueError(f"unknown model config {name!r}; choose one of {sorted(presets)}")
        return presets[name]()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SemanticSplatConfig:
        """Inverse of ``to_dict``; unknown keys raise ValueError."""
        return dataclass_from_dict(SemanticSplatConfig, data)


@dataclass
class SemanticGaussians:
    """What ``SemanticSplat.forward`` returns for b scenes of v context views (h×w each).

    gaussians:   b batches of n = v·h·w Gaussians, view-major then row-major (Gaussian
                 ``k·h·w + i·w + j`` sits on pixel (i, j) of context view k). Its ``features``
                 are [segmentation (seg_dim), language (language_dim)] concatenated.
    depth:       (b, v, h, w) predicted z-depth of each context view, metres (the cascade
                 stage's refined depth when ``config.depth.refine_candidates`` > 0); the
                 Gaussian centres are this depth unprojected.
    depth_probs: (b, v, d, h/4, w/4) softmax over the coarse depth candidates.
    depth_candidates: (b, v, d) coarse candidate depths, metres (index 0 = near).
    seg_dim, language_dim: widths of the low-dimensional rendered features.
    coarse_depth: (b, v, h, w) the upsampled coarse depth before the cascade stage (equal to
                 ``depth`` without one), metres; for diagnostics.
    """

    gaussians: Gaussians
    depth: Float[Tensor, "b v h w"]
    depth_probs: Float[Tensor, "b v d hs ws"]
    depth_candidates: Float[Tensor, "b v d"]
    seg_dim: int
    language_dim: int
    coarse_depth: Float[Tensor, "b v h w"] | None = None

    @property
    def seg_features(self) -> Float[Tensor, "b n fs"]:
        return self.gaussians.features[..., : self.seg_dim]

    @property
    def language_features(self) -> Float[Tensor, "b n fl"]:
        return self.gaussians.features[..., self.seg_dim :]


class SemanticSplat(nn.Module):
    """Feed-forward semantic Gaussian splatting from posed context views."""

    def __init__(self, config: SemanticSplatConfig) -> None:
        super().__init__()
        if not isinstance(config, SemanticSplatConfig):
            raise TypeError(f"config must be a SemanticSplatConfig, got {type(config).__name__}")
        self.config = config
        c = config.backbone
        num_depths = config.cost_volume.num_depths
        if num_depths < 2:
            raise ValueError(f"cost_volume.num_depths must be >= 2, got {num_depths}")
        self.backbone = Backbone(c)
        self.transformer = MultiViewTransformer(c.channels, config.transformer)
        self.fusion = Fusion(
            c.channels, num_depths, config.sam_dim, config.language_dim, config.fusion
        )
        latent = config.fusion.latent_dim
        self.depth_head = DepthHead(
            latent, num_depths, c.full_channels, Backbone.downsample, config.depth
        )
        self.gaussian_adapter = GaussianAdapter(c.full_channels + latent, config.gaussians)
        self.semantic_heads = SemanticHeads(c.full_channels + latent, config.semantic)
        s = config.semantic
        self.seg_expander = FeatureExpander(s.seg_render_dim, config.sam_dim, s.expand_hidden)
        self.language_expander = FeatureExpander(
            s.language_render_dim, config.language_dim, s.expand_hidden
        )
        if s.language_skip and not config.fusion.use_language:
            raise ValueError("semantic.language_skip needs the fusion's language condition")
        self.language_skip = (
            LanguageSkip(config.language_dim, s.language_skip_hidden, s.language_render_dim)
            if s.language_skip
            else None
        )

    @property
    def downsample(self) -> int:
        return Backbone.downsample

    def forward(
        self,
        context: Views,
        sam_features: Float[Tensor, "b v cs hs ws"] | None = None,
        lang_features: Float[Tensor, "b v cl hl wl"] | None = None,
    ) -> SemanticGaussians:
        """Predict per-pixel semantic Gaussians from ``context`` (batched: images (b, v, 3, h, w)).

        Teacher features may have any spatial size (resized to h/4 × w/4 inside); they are used
        only if the config enables that condition (zeros when enabled but not given).
        """
        b, v, h, w = self.check_inputs(context, sam_features, lang_features)
        s = self.downsample
        images = context.images.flatten(0, 1)
        K = context.K.flatten(0, 1)
        c2w = context.c2w.flatten(0, 1)
        near = context.near.flatten(0, 1)
        far = context.far.flatten(0, 1)

        full, low = self.backbone(images)
        low = self.transformer(low.reshape(b, v, *low.shape[1:]))
        K_low = scale_intrinsics(context.K, 1.0 / s)
        cost, candidates = correlation_cost_volume(
            low, K_low, context.c2w, context.near, context.far, self.config.cost_volume.num_depths
        )
        sam = sam_features.flatten(0, 1) if sam_features is not None else None
        lang = lang_features.flatten(0, 1) if lang_features is not None else None
        latent = self.fusion(low.flatten(0, 1), cost.flatten(0, 1), sam, lang)
        depth = self.depth_head(latent, cost.flatten(0, 1), images, full, near, far, K, c2w, v)

        features = torch.cat(
            [full, F.interpolate(latent, size=(h, w), mode="bilinear", align_corners=False)], dim=1
        )
        params = self.gaussian_adapter(images, features, depth.depth, depth.inverse, K, c2w)
        seg, lang_low = self.semantic_heads(features)
        if self.language_skip is not None and lang is not None:
            lang_full = F.interpolate(lang, size=(h, w), mode="bilinear", align_corners=False)
            lang_low = lang_low + self.language_skip(lang_full)
        semantic = torch.cat([seg, lang_low], dim=1).permute(0, 2, 3, 1)

        def per_batch(x: Tensor) -> Tensor:
            return x.reshape(b, v * h * w, *x.shape[3:])

        gaussians = Gaussians(
            means=per_batch(params.means),
            quats=per_batch(params.quats),
            scales=per_batch(params.scales),
            opacities=per_batch(params.opacities),
            colors=per_batch(params.colors),
            features=per_batch(semantic),
        )
        return SemanticGaussians(
            gaussians=gaussians,
            depth=depth.depth.reshape(b, v, h, w),
            depth_probs=depth.probs.reshape(b, v, *depth.probs.shape[1:]),
            depth_candidates=candidates,
            seg_dim=seg.shape[1],
            language_dim=lang_low.shape[1],
            coarse_depth=depth.coarse_depth.reshape(b, v, h, w),
        )

    def render(
        self,
        out: SemanticGaussians,
        w2c: Float[Tensor, "b v 4 4"],
        K: Float[Tensor, "b v 3 3"],
        width: int,
        height: int,
        background: Float[Tensor, " 3"] | Float[Tensor, "b v 3"] | None = None,
        backend: str = "auto",
    ) -> RenderOutput:
        """Render colour, low-dimensional features, depth and alpha into v views.

        ``w2c`` world-to-camera (OpenCV frame), ``K`` in pixels of the ``width``×``height``
        image. Background defaults to black; features get none (the rasterizer's API).
        """

        return render(out.gaussians, w2c, K, width, height, background=background, backend=backend)

    def decode_features(
        self, rendered: RenderOutput
    ) -> tuple[Float[Tensor, "b v cs h w"], Float[Tensor, "b v cl h w"]]:
        """Expand rendered low-dimensional features to (SAM width, language width), same h×w."""
        seg_dim = self.config.semantic.seg_render_dim
        expected = seg_dim + self.config.semantic.language_render_dim
        f = rendered.features
        if f.ndim != 5 or f.shape[2] != expected:
            raise ValueError(
                f"rendered features must be (b, v, {expected}, h, w), got {tuple(f.shape)}"
            )
        return self.seg_expander(f[:, :, :seg_dim]), self.language_expander(f[:, :, seg_dim:])

    def check_inputs(
        self, context: Views, sam: Tensor | None, lang: Tensor | None
    ) -> tuple[int, int, int, int]:
        """(b, v, h, w) of valid inputs to ``forward``; TypeError / ValueError otherwise."""
        if not isinstance(context, Views):
            raise TypeError(f"context must be Views, got {type(context).__name__}")
        images = context.images
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"context.images must be (b, v, 3, h, w), got {tuple(images.shape)}")
        b, v, _, h, w = images.shape
        if v < 2:
            raise ValueError(f"SemanticSplat needs at least 2 context views, got {v}")
        s = self.downsample * 2  # the 1/4-resolution U-Nets halve once more
        if h % s or w % s:
            raise ValueError(f"image height and width must be multiples of {s}, got {h}x{w}")
        for name, t, shape in (
            ("K", context.K, (b, v, 3, 3)),
            ("c2w", context.c2w, (b, v, 4, 4)),
            ("near", context.near, (b, v)),
            ("far", context.far, (b, v)),
        ):
            if tuple(t.shape) != shape:
                raise ValueError(f"context.{name} must have shape {shape}, got {tuple(t.shape)}")
        for name, t, dim in (
            ("sam_features", sam, self.config.sam_dim),
            ("lang_features", lang, self.config.language_dim),
        ):
            if t is None:
                continue
            if not isinstance(t, Tensor):
                raise TypeError(f"{name} must be a Tensor or None, got {type(t).__name__}")
            if t.ndim != 5 or t.shape[:2] != (b, v) or t.shape[2] != dim:
                raise ValueError(
                    f"{name} must be (b={b}, v={v}, {dim}, h', w'), got {tuple(t.shape)}"
                )
        return b, v, h, w


def save_model(path: str | Path, model: SemanticSplat, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a checkpoint of kind ``semanticsplat_model`` (see checkpoint.py)."""
    return save_checkpoint(path, model, model.config.to_dict(), meta, kind=MODEL_KIND)


LEGACY_NEAR = 0.25
"""Near plane (metres) of the views that checkpoints written before the trainer recorded
``depth_near`` were trained on."""


def trained_near(meta: dict[str, Any]) -> float:
    """The near plane (metres) a model was trained with, from its checkpoint meta: ``depth_near``
    (recorded by the trainer), ``LEGACY_NEAR`` for older checkpoints, ``DEFAULT_NEAR`` for
    untrained weights. The cost volume's candidates are spread between near and far, so a model
    is run with the near plane it learned on."""
    near = meta.get("depth_near")
    if near is not None:
        return float(near)
    if meta.get("random_weights") or "step" not in meta:
        return DEFAULT_NEAR
    return LEGACY_NEAR


def load_model(
    path: str | Path, map_location: torch.device | str = "cpu"
) -> tuple[SemanticSplat, dict[str, Any]]:
    """Rebuild a SemanticSplat from its checkpoint; returns (model in eval mode, meta).

    Raises ValueError for a missing/corrupt file, another kind or version, a config this build
    does not know, or weights that do not fit the config (naming the offending keys).
    """
    ckpt = load_checkpoint(path, expected_kind=MODEL_KIND)
    depth_config = ckpt.config.get("depth")
    if isinstance(depth_config, dict) and "refine_candidates" not in depth_config:
        # Written before the cascade stage existed: those weights have none.
        depth_config["refine_candidates"] = 0
    try:
        config = SemanticSplatConfig.from_dict(ckpt.config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {path} has an unusable model config: {exc}") from exc
    model = SemanticSplat(config)
    try:
        load_state_dict_strict(model, ckpt.state_dict)
    except ValueError as exc:
        raise ValueError(f"checkpoint {path}: {exc}") from exc
    return model.to(map_location).eval(), ckpt.meta


CONDITION_CHOICES = {
    "both": (True, True),
    "sam": (True, False),
    "language": (False, True),
    "none": (False, False),
}
"""The fusion's teacher conditions, by name (the paper's ablation rows): (use_sam, use_language)."""


def with_conditions(model: SemanticSplat, conditions: str) -> SemanticSplat:
    """A copy of ``model`` whose fusion uses the named teacher conditions (``CONDITION_CHOICES``).

    Meant for ablations started from one stage-0 model (which saw every condition as zeros):
    all weights are kept; a dropped condition loses its projection and its input channels of
    the fusion U-Net's first convolution (the constant they contributed — the projection's
    bias through that convolution — is folded into its bias); an added condition gets a fresh
    projection and zero-initialised input channels, so the output is unchanged at first.
    """
    if conditions not in CONDITION_CHOICES:
        raise ValueError(
            f"conditions must be one of {sorted(CONDITION_CHOICES)}, got {conditions!r}"
        )
    use_sam, use_language = CONDITION_CHOICES[conditions]
    old = model.config
    if (old.fusion.use_sam, old.fusion.use_language) == (use_sam, use_language):
        return model
    config = SemanticSplatConfig.from_dict(old.to_dict())
    config.fusion.use_sam, config.fusion.use_language = use_sam, use_language
    new = SemanticSplat(config).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fusion.")}
    state |= {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith("fusion.unet.") and not k.startswith("fusion.unet.inp.0.")
    }
    new.load_state_dict(state, strict=False)

    base = old.backbone.channels + old.cost_volume.num_depths
    cd = old.fusion.condition_dim
    old_conv = model.fusion.unet.inp[0]
    new_conv = new.fusion.unet.inp[0]
    old_flags = (old.fusion.use_sam, old.fusion.use_language)
    new_flags = (use_sam, use_language)
    projs = (("sam_proj", 0), ("language_proj", 1))
    with torch.no_grad():
        weight = new_conv.weight
        weight.zero_()
        weight[:, :base] = old_conv.weight[:, :base]
        bias = old_conv.bias.clone()
        old_at, new_at = base, base
        for name, k in projs:
            old_slice = slice(old_at, old_at + cd) if old_flags[k] else None
            new_slice = slice(new_at, new_at + cd) if new_flags[k] else None
            if old_slice is not None and new_slice is not None:
                weight[:, new_slice] = old_conv.weight[:, old_slice]
                getattr(new.fusion, name).load_state_dict(getattr(model.fusion, name).state_dict())
            elif old_slice is not None:
                # A zero condition reaches the U-Net as the projection's bias, everywhere.
                proj_bias = getattr(model.fusion, name).bias
                bias += torch.einsum("oikl,i->o", old_conv.weight[:, old_slice], proj_bias)
            old_at += cd if old_flags[k] else 0
            new_at += cd if new_flags[k] else 0
        new_conv.bias.copy_(bias)
    return new.train(model.training)


def with_language_skip(model: SemanticSplat) -> SemanticSplat:
    """A copy of ``model`` with ``semantic.language_skip`` on (``model`` itself if it has it).

    All weights are kept and the skip starts at zero (``LanguageSkip``), so the copy's output
    equals ``model``'s until training moves it: stage 2 can add it to a stage-1 model.
    """
    if model.language_skip is not None:
        return model
    config = SemanticSplatConfig.from_dict(model.config.to_dict())
    config.semantic.language_skip = True
    new = SemanticSplat(config).to(next(model.parameters()).device)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("language_skip.") for k in missing), missing
    return new.train(model.training)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
