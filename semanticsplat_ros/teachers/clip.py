"""Dense CLIP teacher (MaskCLIP's value-embedding trick) and the open_clip text tower.

``DenseClipTeacher.embed`` gives per-patch features in CLIP's joint image-text space: the last
transformer block of the ViT image tower is run on its *value* path only (no query-key attention,
which mixes every token towards the global class token; as in MaskCLIP, in the simplified form of
ClearCLIP: value -> output projection, no residual, no MLP), then ``ln_post`` and ``proj`` as for
the class token. The result aligns with ``model.encode_text`` and so with
``OpenClipTextEncoder``.

Weights come from a local file only (``load_clip``); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from jaxtyping import Float
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import Tensor, nn

from semanticsplat_ros.checkpoint import check_state_dict_fits, load_state_dict_strict
from semanticsplat_ros.teachers.base import check_images, check_texts, offline_hub, read_state_dict


class OpenClipTextEncoder(nn.Module):
    """The open_clip text tower: strings -> unit vectors in CLIP's joint space."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.dim = (
            int(model.text_projection.shape[-1])
            if hasattr(model, "text_projection") and model.text_projection is not None
            else int(model.visual.output_dim)
        )

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Float[Tensor, "k d"]:
        texts = check_texts(texts)
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(texts).to(device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)


class DenseClipTeacher(nn.Module):
    """Per-patch CLIP features of a ViT open_clip model (MaskCLIP)."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        super().__init__()
        visual = getattr(model, "visual", None)
        if not isinstance(visual, VisionTransformer):
            raise ValueError(
                f"dense CLIP features need a ViT image tower, got {type(visual).__name__}"
            )
        if not all(isinstance(b, ResidualAttentionBlock) for b in visual.transformer.resblocks):
            raise ValueError("dense CLIP features need open_clip's standard ResidualAttentionBlock")
        if visual.attn_pool is not None or visual.proj is None:
            raise ValueError("dense CLIP features need a class-token ViT with a projection")
        self.model = model
        self.text_encoder = OpenClipTextEncoder(model, tokenizer)
        self.feature_dim = int(visual.proj.shape[1])
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.model.visual.image_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def embed(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n d gh gw"]:
        """Unit-norm per-patch features (grid = image_size / patch_size) of images in [0, 1]."""
        check_images(images)
        visual = self.model.visual
        x = images.to(self.mean.device, torch.float32)
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(
                x, self.image_size, mode="bilinear", align_corners=False, antialias=True
            )
        x = (x - self.mean) / self.std
        n = x.shape[0]
        gh, gw = visual.grid_size
        tokens = visual._embeds(x)
        blocks = visual.transformer.resblocks
        batch_first = getattr(visual.transformer, "batch_first", True)
        if not batch_first:
            tokens = tokens.transpose(0, 1)
        for block in blocks[:-1]:
            tokens = block(tokens)
        if not batch_first:
            tokens = tokens.transpose(0, 1)
        last = blocks[-1]
        y = last.ln_1(tokens)
        d = y.shape[-1]
        attn = last.attn
        bias = attn.in_proj_bias[2 * d :] if attn.in_proj_bias is not None else None
        v = F.linear(y, attn.in_proj_weight[2 * d :], bias)
        v = last.ls_1(attn.out_proj(v))
        patches = visual.ln_post(v[:, 1:]) @ visual.proj
        feats = patches.reshape(n, gh, gw, -1).permute(0, 3, 1, 2)
        return F.normalize(feats, dim=1)


def load_clip(
    path: str | Path, model_name: str = "ViT-B-16", config_file: str | Path | None = None
) -> DenseClipTeacher:
    """A dense CLIP teacher from a local open_clip weights file (.bin/.pt/.safetensors).

    model_name: an open_clip architecture (``open_clip.list_models()``), or with ``config_file``
    a JSON model config (open_clip's format: embed_dim, vision_cfg, text_cfg) for custom sizes.
    Raises FileNotFoundError / ValueError for a missing, corrupt or mismatched checkpoint.
    """
    if config_file is not None:
        config_file = Path(config_file)
        if not config_file.is_file():
            raise FileNotFoundError(f"open_clip model config {config_file} does not exist")
        open_clip.add_model_config(config_file)
        model_name = config_file.stem
    if model_name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model_name!r}")
    state = read_state_dict(path, "open_clip")
    with offline_hub(), _quiet_random_init():
        # The fit is checked on a meta-device skeleton first: a mismatch fails before building.
        with torch.device("meta"):
            skeleton = open_clip.create_model(
                model_name, pretrained=None, pretrained_text=False, device="meta"
            )
        try:
            check_state_dict_fits(skeleton, state)
        except ValueError as exc:
            raise ValueError(_mismatch_message(path, model_name, state, exc)) from exc
        model = open_clip.create_model(model_name, pretrained=None, pretrained_text=False)
        tokenizer = open_clip.get_tokenizer(model_name)
    load_state_dict_strict(model, state)
    return DenseClipTeacher(model.eval(), tokenizer)


def clip_image_tower_of(state_dict: dict[str, Tensor]) -> str:
    """A few words on the image tower open_clip weights hold (for loading errors): a ViT's
    width, patch size and depth, a ResNet, or neither."""
    conv1 = state_dict.get("visual.conv1.weight")
    if conv1 is not None and "visual.class_embedding" in state_dict:
        depth = len(
            {k.split(".")[3] for k in state_dict if k.startswith("visual.transformer.resblocks.")}
        )
        return (
            f"a ViT image tower (width {conv1.shape[0]}, patch {conv1.shape[-1]}, {depth} blocks)"
        )
    if any(k.startswith("visual.layer1.") for k in state_dict):
        return "a ResNet image tower (an RN* model)"
    return "no open_clip image tower"


def _tower_shape(state_dict: dict[str, Tensor]) -> dict[str, int] | None:
    """Sizes of a ViT open_clip model read from its weights (None for any other layout)."""
    conv1 = state_dict.get("visual.conv1.weight")
    pos = state_dict.get("visual.positional_embedding")
    proj = state_dict.get("visual.proj")
    tokens = state_dict.get("token_embedding.weight")
    if conv1 is None or pos is None or proj is None or tokens is None:
        return None
    side = math.isqrt(max(int(pos.shape[0]) - 1, 0))

    def depth(prefix: str) -> int:
        return len({k[len(prefix) :].split(".")[0] for k in state_dict if k.startswith(prefix)})

    return {
        "embed_dim": int(proj.shape[1]),
        "width": int(conv1.shape[0]),
        "patch_size": int(conv1.shape[-1]),
        "image_size": side * int(conv1.shape[-1]),
        "layers": depth("visual.transformer.resblocks."),
        "text_width": int(tokens.shape[1]),
        "text_layers": depth("transformer.resblocks."),
    }


def clip_architectures_like(state_dict: dict[str, Tensor]) -> list[str]:
    """open_clip architecture names whose sizes (embedding, image and text towers) are those of
    these weights, by their configs: the names to suggest when weights do not fit."""
    shape = _tower_shape(state_dict)
    if shape is None:
        return []
    names = []
    has_decoder = any(k.startswith("text_decoder.") for k in state_dict)
    for name in open_clip.list_models():
        config = open_clip.get_model_config(name) or {}
        if ("multimodal_cfg" in config) != has_decoder:
            continue  # CoCa models share a CLIP's towers and add a text decoder
        vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
        image_size = vision.get("image_size")
        if isinstance(image_size, (list, tuple)):
            image_size = image_size[0]
        found = {
            "embed_dim": config.get("embed_dim"),
            "width": vision.get("width"),
            "patch_size": vision.get("patch_size"),
            "image_size": image_size,
            "layers": vision.get("layers"),
            "text_width": text.get("width"),
            "text_layers": text.get("layers"),
        }
        if found == shape:
            names.append(name)
    return names


def _mismatch_message(
    path: str | Path, model_name: str, state: dict[str, Tensor], exc: ValueError
) -> str:
    """One line on weights that do not fit ``model_name``: what they are, and the keys that
    differ only when they are no known architecture (a known one says enough)."""
    like = clip_architectures_like(state)
    if like:
        shown = " or ".join(like[:3]) + (" (...)" if len(like) > 3 else "")
        return (
            f"open_clip checkpoint {path} holds weights of the sizes of {shown} and does not "
            f"fit {model_name!r}"
        )
    tower = clip_image_tower_of(state)
    return f"open_clip checkpoint {path} holds {tower} and does not fit {model_name!r}: {exc}"


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init() -> Iterator[None]:
    """Silence open_clip's "initialized randomly" warning: our weights are loaded right after."""
    root = logging.getLogger()
    quiet = _DropRandomInitWarning()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)
