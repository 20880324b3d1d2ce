"""LSeg-style language teacher: per-pixel features aligned with a text encoder's embeddings.

The tiny default (``TinyLSeg``) is a small CNN whose unit-norm per-pixel 384-d features are
trained, as LSeg does, with a per-pixel softmax over the cosine similarities to the text
embeddings of the class names (``train.py``), here all-MiniLM-L6-v2's. Queries are answered by
cosine with *any* text through the same text encoder, so unseen words work through MiniLM.

Extension point — a released LSeg checkpoint: implement the ``Teacher`` protocol (``embed``
images -> unit-norm (n, 512, h/2, w/2) from LSeg's DPT-ViT) and pair it with the CLIP text
tower it was trained with (``clip.OpenClipTextEncoder``); ``LanguageTeacher`` below then works
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from semanticsplat_ros.checkpoint import (
    dataclass_from_dict,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from semanticsplat_ros.teachers.base import TextEncoder, check_images
from semanticsplat_ros.teachers.defaults import DEFAULT_TINY_LSEG
from semanticsplat_ros.teachers.text import shared_minilm

TINY_LSEG_KIND = "tiny_lseg_teacher"


@dataclass
class TinyLSegConfig:
    """The tiny LSeg-style dense encoder."""

    image_size: int = 64
    """Images are resized to image_size × image_size before encoding (the training size)."""
    channels: tuple[int, ...] = (32, 64, 128, 128)
    """Widths of the encoder stages at strides 2, 4, 8, 16."""
    decoder_channels: int = 64
    """Width of the FPN decoder."""
    feature_dim: int = 384
    """Output feature width = the text encoder's (all-MiniLM-L6-v2: 384)."""
    output_stride: int = 2
    """Feature map stride (LSeg: 2); 1, 2 or 4."""


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1),
        nn.GroupNorm(min(8, cout), cout),
        nn.GELU(),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.GroupNorm(min(8, cout), cout),
        nn.GELU(),
    )


class TinyLSeg(nn.Module):
    """Conv encoder (strides 2..16) + FPN decoder -> unit-norm features at ``output_stride``."""

    def __init__(self, config: TinyLSegConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TinyLSegConfig()
        if len(config.channels) != 4:
            raise ValueError(f"channels must list 4 stage widths, got {config.channels}")
        if config.output_stride not in (1, 2, 4):
            raise ValueError(f"output_stride must be 1, 2 or 4, got {config.output_stride}")
        if config.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {config.image_size}")
        c, d = config.channels, config.decoder_channels
        self.stages = nn.ModuleList(
            [_block(cin, cout, 2) for cin, cout in zip((3, *c[:-1]), c, strict=True)]
        )
        self.lateral = nn.ModuleList([nn.Conv2d(ch, d, 1) for ch in c])
        self.global_context = nn.Linear(c[-1], d)
        self.smooth = nn.Sequential(nn.Conv2d(d, d, 3, 1, 1), nn.GroupNorm(8, d), nn.GELU())
        self.head = nn.Conv2d(d, config.feature_dim, 1)

    def forward(self, images: Float[Tensor, "n 3 s s"]) -> Float[Tensor, "n d s/o s/o"]:
        x = (images - 0.45) / 0.25
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        out = (
            self.lateral[-1](feats[-1])
            + self.global_context(feats[-1].mean((2, 3)))[..., None, None]
        )
        stop = {1: 0, 2: 0, 4: 1}[self.config.output_stride]
        for level in range(len(feats) - 2, stop - 1, -1):
            feat = feats[level]
            out = F.interpolate(out, size=feat.shape[-2:], mode="bilinear", align_corners=False)
            out = out + self.lateral[level](feat)
        out = self.smooth(out)
        if self.config.output_stride == 1:
            out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False)
        return F.normalize(self.head(out), dim=1)


class LanguageTeacher(nn.Module):
    """A dense language teacher: an image encoder + the text encoder its features align with."""

    def __init__(self, encoder: nn.Module, text_encoder: TextEncoder, image_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.text_encoder = text_encoder
        self.image_size = image_size
        self.feature_dim = int(text_encoder.dim)

    def embed(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n d hf wf"]:
        """Unit-norm per-pixel language features of RGB images in [0, 1]."""
        check_images(images)
        device = next(self.encoder.parameters()).device
        x = images.to(device, torch.float32)
        s = self.image_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return self.encoder(x)

    def logits(
        self, features: Float[Tensor, "n d hf wf"], texts: Sequence[str] | Tensor
    ) -> Float[Tensor, "n k hf wf"]:
        """Cosine similarity of every pixel feature with every text (``texts``: strings, or
        their unit embeddings (k, d) already computed, e.g. by ``prompts.embed_prompts``)."""
        text = texts if isinstance(texts, Tensor) else self.text_encoder.encode(texts)
        text = F.normalize(text.to(features.device, features.dtype), dim=-1)
        return torch.einsum("ndhw,kd->nkhw", F.normalize(features, dim=1), text)

    @torch.no_grad()
    def segment(
        self, images: Float[Tensor, "n 3 h w"], texts: Sequence[str] | Tensor
    ) -> Int[Tensor, "n h w"]:
        """Per-pixel argmax over ``texts`` at the images' resolution."""
        return self.segment_features(self.embed(images), texts, images.shape[-2:])

    @torch.no_grad()
    def segment_features(
        self,
        features: Float[Tensor, "n d hf wf"],
        texts: Sequence[str] | Tensor,
        size: Sequence[int],
    ) -> Int[Tensor, "n h w"]:
        """``segment`` from already computed features, labels at ``size`` (h, w)."""
        logits = self.logits(features, texts)
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
        return logits.argmax(1)


def save_tiny_lseg(path: str | Path, model: TinyLSeg, meta: dict | None = None) -> Path:
    """Write a tiny LSeg checkpoint (weights in float16 to keep the file small)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return save_checkpoint(path, state, model.config, extra=meta, kind=TINY_LSEG_KIND)


def load_tiny_lseg(
    path: str | Path | None = None, text_encoder: TextEncoder | None = None
) -> LanguageTeacher:
    """The tiny LSeg teacher (default: the shipped checkpoint) with the MiniLM text encoder."""

    ckpt = load_checkpoint(path or DEFAULT_TINY_LSEG, expected_kind=TINY_LSEG_KIND)
    config = dataclass_from_dict(TinyLSegConfig, ckpt.config)
    model = TinyLSeg(config)
    load_state_dict_strict(model, ckpt.state_dict)
    text_encoder = text_encoder or shared_minilm()
    if text_encoder.dim != config.feature_dim:
        raise ValueError(
            f"text encoder width {text_encoder.dim} != tiny LSeg feature width {config.feature_dim}"
        )
    return LanguageTeacher(model.eval(), text_encoder, config.image_size)
