"""SAM teacher on the segment_anything API: image embeddings, point-prompted masks, mask hierarchy.

``SamTeacher`` wraps any ``segment_anything.modeling.Sam``: the released ViT-B/L/H models
(``load_sam(path, "vit_b")``, weights from a local file) or the tiny default teacher
(``load_tiny_sam``), which is a ``Sam`` made of segment_anything's own PromptEncoder, MaskDecoder
and TwoWayTransformer with a small convolutional image encoder (``TinyImageEncoder``).

Point convention (SAM's): points are (x, y) = (column, row) in pixels of the original image;
integer values address pixel centres (SAM adds 0.5 internally).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

from semanticsplat_ros.checkpoint import (
    check_state_dict_fits,
    dataclass_from_dict,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from semanticsplat_ros.geometry import point_grid
from semanticsplat_ros.teachers.base import check_images, read_state_dict
from semanticsplat_ros.teachers.defaults import DEFAULT_TINY_SAM

SAM_EMBED_DIM = 256
"""Channels of SAM's image embedding and of its prompt/mask decoder (fixed by SAM)."""

TINY_SAM_KIND = "tiny_sam_teacher"
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


# ----------------------------------------------------------------------------- architectures


@dataclass(frozen=True)
class SamArchitecture:
    """A ViT SAM as built by segment_anything's ``_build_sam`` (registry names below)."""

    encoder_embed_dim: int
    """Width of the ViT image encoder."""
    encoder_depth: int
    """Number of ViT blocks."""
    encoder_num_heads: int
    """Attention heads per block."""
    encoder_global_attn_indexes: tuple[int, ...]
    """Blocks with global (not windowed) attention."""
    image_size: int = 1024
    """Side of the square encoder input in pixels (1024 for the released models)."""
    patch_size: int = 16
    """ViT patch size; the embedding grid is image_size / patch_size."""
    window_size: int = 14
    """Window of the windowed-attention blocks."""


SAM_ARCHITECTURES: dict[str, SamArchitecture] = {
    "vit_b": SamArchitecture(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamArchitecture(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamArchitecture(1280, 32, 16, (7, 15, 23, 31)),
}
"""The released SAM models, as in ``segment_anything.sam_model_registry``."""


def _prompt_and_decoder(
    image_size: int, grid: int, depth: int, mlp_dim: int, num_heads: int
) -> tuple[PromptEncoder, MaskDecoder]:
    prompt_encoder = PromptEncoder(
        embed_dim=SAM_EMBED_DIM,
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=depth, embedding_dim=SAM_EMBED_DIM, mlp_dim=mlp_dim, num_heads=num_heads
        ),
        transformer_dim=SAM_EMBED_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return prompt_encoder, mask_decoder


def build_sam(architecture: str | SamArchitecture) -> Sam:
    """A randomly initialised SAM: a registry name (vit_b/vit_l/vit_h) or an explicit architecture.

    Registry names go through ``segment_anything.sam_model_registry`` itself.
    """
    if isinstance(architecture, str):
        if architecture not in SAM_ARCHITECTURES:
            raise ValueError(
                f"unknown SAM model type {architecture!r}; expected one of "
                f"{sorted(SAM_ARCHITECTURES)} or a SamArchitecture"
            )
        return sam_model_registry[architecture](checkpoint=None)
    if not isinstance(architecture, SamArchitecture):
        raise TypeError(f"architecture must be a str or SamArchitecture, got {type(architecture)}")
    a = architecture
    if a.image_size % a.patch_size:
        raise ValueError(
            f"image_size {a.image_size} is not a multiple of patch_size {a.patch_size}"
        )
    grid = a.image_size // a.patch_size
    prompt_encoder, mask_decoder = _prompt_and_decoder(a.image_size, grid, 2, 2048, 8)
    encoder = ImageEncoderViT(
        depth=a.encoder_depth,
        embed_dim=a.encoder_embed_dim,
        img_size=a.image_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=a.encoder_num_heads,
        patch_size=a.patch_size,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=a.encoder_global_attn_indexes,
        window_size=a.window_size,
        out_chans=SAM_EMBED_DIM,
    )
    return Sam(encoder, prompt_encoder, mask_decoder, list(PIXEL_MEAN), list(PIXEL_STD)).eval()


def sam_architecture_of(state_dict: dict[str, Tensor]) -> str | None:
    """The released SAM model (vit_b / vit_l / vit_h) whose image encoder these weights have, by
    encoder width and depth; None when they are no released ViT SAM's."""
    patch = state_dict.get("image_encoder.patch_embed.proj.weight")
    if patch is None or patch.ndim != 4:
        return None
    depth = len({k.split(".")[2] for k in state_dict if k.startswith("image_encoder.blocks.")})
    for name, arch in SAM_ARCHITECTURES.items():
        if (arch.encoder_embed_dim, arch.encoder_depth) == (int(patch.shape[0]), depth):
            return name
    return None


def load_sam(path: str | Path, architecture: str | SamArchitecture = "vit_b") -> SamTeacher:
    """A SAM teacher from a local weights file (e.g. Meta's ``sam_vit_b_01ec64.pth``).

    Raises FileNotFoundError (missing file) or ValueError (corrupt file, or weights that do not
    fit ``architecture``: naming the released model they are, e.g. vit_l weights given as vit_b,
    and the offending keys). The fit is checked on a meta-device skeleton before the model is
    built, so a mismatch fails at once.
    """
    state = read_state_dict(path, "SAM")
    with torch.device("meta"):
        skeleton = build_sam(architecture)
    try:
        check_state_dict_fits(skeleton, state)
    except ValueError as exc:
        found = sam_architecture_of(state)
        if found is not None and found != architecture:
            # A released model by its encoder: that says it all (its key list runs long).
            raise ValueError(
                f"SAM checkpoint {path} holds {found} weights and does not fit "
                f"{architecture!r} (load it as {found})"
            ) from exc
        raise ValueError(f"SAM checkpoint {path} does not fit {architecture!r}: {exc}") from exc
    sam = build_sam(architecture)
    load_state_dict_strict(sam, state)
    return SamTeacher(sam.eval())


# ----------------------------------------------------------------------------- tiny SAM


@dataclass
class TinySamConfig:
    """The tiny default SAM: a small CNN image encoder + SAM's own prompt encoder and decoder."""

    image_size: int = 64
    """Side of the square encoder input; images are resized (longest side) and padded to it."""
    channels: tuple[int, ...] = (32, 64, 128, 128)
    """Widths of the encoder stages at strides 2, 4, 8, 16."""
    embedding_stride: int = 8
    """Stride of the 256-channel embedding: 4 or 8 (8 makes every prompt 4× cheaper to decode;
    masks come out at stride embedding_stride / 4)."""
    decoder_depth: int = 2
    """TwoWayTransformer depth of the mask decoder (SAM: 2)."""
    decoder_mlp_dim: int = 512
    """TwoWayTransformer MLP width (SAM: 2048)."""
    decoder_heads: int = 8
    """TwoWayTransformer attention heads (SAM: 8)."""


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride, 1),
            nn.GroupNorm(min(8, cout), cout),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
            nn.GroupNorm(min(8, cout), cout),
            nn.GELU(),
        )


class TinyImageEncoder(nn.Module):
    """Four conv stages (strides 2..16) fused FPN-style into a 256-channel map at stride 4 or 8."""

    def __init__(self, config: TinySamConfig) -> None:
        super().__init__()
        if len(config.channels) != 4:
            raise ValueError(f"channels must list 4 stage widths, got {config.channels}")
        if config.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {config.image_size}")
        if config.embedding_stride not in (4, 8):
            raise ValueError(f"embedding_stride must be 4 or 8, got {config.embedding_stride}")
        self.img_size = config.image_size  # read by Sam.preprocess
        c = config.channels
        self.stages = nn.ModuleList(
            [_ConvBlock(cin, cout, 2) for cin, cout in zip((3, *c[:-1]), c, strict=True)]
        )
        # Lateral 1x1 convs from the stage at the embedding stride up to the coarsest.
        first = {4: 1, 8: 2}[config.embedding_stride]
        self.lateral = nn.ModuleList([nn.Conv2d(ch, SAM_EMBED_DIM, 1) for ch in c[first:]])
        self.neck = nn.Sequential(
            nn.Conv2d(SAM_EMBED_DIM, SAM_EMBED_DIM, 3, 1, 1, bias=False),
            LayerNorm2d(SAM_EMBED_DIM),
        )

    def forward(self, x: Float[Tensor, "n 3 s s"]) -> Float[Tensor, "n 256 hf wf"]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        feats = feats[len(feats) - len(self.lateral) :]
        out = self.lateral[-1](feats[-1])
        for lateral, feat in zip(self.lateral[-2::-1], feats[-2::-1], strict=True):
            out = F.interpolate(out, size=feat.shape[-2:], mode="bilinear", align_corners=False)
            out = out + lateral(feat)
        return self.neck(out)


def build_tiny_sam(config: TinySamConfig | None = None) -> Sam:
    """A randomly initialised tiny SAM (a genuine ``segment_anything.modeling.Sam``)."""
    config = config or TinySamConfig()
    encoder = TinyImageEncoder(config)
    prompt_encoder, mask_decoder = _prompt_and_decoder(
        config.image_size,
        config.image_size // config.embedding_stride,
        config.decoder_depth,
        config.decoder_mlp_dim,
        config.decoder_heads,
    )
    return Sam(encoder, prompt_encoder, mask_decoder, list(PIXEL_MEAN), list(PIXEL_STD))


def save_tiny_sam(
    path: str | Path, sam: Sam, config: TinySamConfig, meta: dict | None = None
) -> Path:
    """Write a tiny SAM checkpoint (weights stored in float16 to keep the file small)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in sam.state_dict().items()}
    return save_checkpoint(path, state, config, extra=meta, kind=TINY_SAM_KIND)


def load_tiny_sam(path: str | Path | None = None) -> SamTeacher:
    """The tiny SAM teacher from a checkpoint (default: the one shipped in assets/checkpoints)."""

    ckpt = load_checkpoint(path or DEFAULT_TINY_SAM, expected_kind=TINY_SAM_KIND)
    config = dataclass_from_dict(TinySamConfig, ckpt.config)
    sam = build_tiny_sam(config)
    load_state_dict_strict(sam, ckpt.state_dict)
    return SamTeacher(sam.eval())


# ----------------------------------------------------------------------------- the teacher


@dataclass
class MaskGenerationConfig:
    """Automatic mask generation (a light version of SAM's): a point grid, three levels."""

    points_per_side: int = 12
    """Prompts on a regular grid of points_per_side² points over the image."""
    min_predicted_iou: float = 0.6
    """Candidates whose predicted IoU is below this are dropped."""
    min_area_fraction: float = 0.002
    """Candidates (and leftovers after overlap removal) smaller than this image fraction are dropped."""
    points_chunk: int = 256
    """Prompts decoded at once (memory bound)."""


@dataclass
class HierarchicalMasks:
    """Non-overlapping segment-id maps at three granularities (-1 = no segment).

    small/medium/large come from SAM's three multimask outputs (sub-part / part / whole).
    """

    small: Int[Tensor, "n h w"]
    medium: Int[Tensor, "n h w"]
    large: Int[Tensor, "n h w"]

    def levels(self) -> tuple[Tensor, Tensor, Tensor]:
        return (self.small, self.medium, self.large)


@dataclass
class MaskPrediction:
    """Masks for point prompts: three multimask outputs per point."""

    logits: Float[Tensor, "n p 3 h w"]
    """Mask logits at the requested image size (mask = logits > 0)."""
    iou: Float[Tensor, "n p 3"]
    """SAM's predicted IoU of each mask."""

    def __iter__(self):  # allows ``logits, iou = teacher.predict_masks(...)``
        return iter((self.logits, self.iou))


def grid_points(height: int, width: int, per_side: int) -> Float[Tensor, "p 2"]:
    """A per_side × per_side grid of (x, y) pixel coordinates at cell centres (row-major), in
    SAM's prompt coordinates (pixel centres on integers): ``geometry.point_grid`` − 0.5."""
    if per_side < 1:
        raise ValueError(f"per_side must be >= 1, got {per_side}")
    return point_grid(height, width, per_side) - 0.5


class SamTeacher(nn.Module):
    """Any ``Sam``: ``embed`` images, ``predict_masks`` on any 256-channel embedding."""

    feature_dim = SAM_EMBED_DIM

    def __init__(self, sam: Sam, generation: MaskGenerationConfig | None = None) -> None:
        super().__init__()
        if not isinstance(sam, Sam):
            raise TypeError(f"sam must be a segment_anything Sam, got {type(sam).__name__}")
        self.sam = sam
        self.generation = generation or MaskGenerationConfig()

    @property
    def input_size(self) -> int:
        """Side of the square encoder input."""
        return int(self.sam.image_encoder.img_size)

    @property
    def embedding_size(self) -> tuple[int, int]:
        """(h', w') grid of the image embedding expected by the decoder."""
        h, w = self.sam.prompt_encoder.image_embedding_size
        return int(h), int(w)

    def _resized_shape(self, height: int, width: int) -> tuple[int, int]:
        scale = self.input_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def preprocess(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 3 s s"]:
        """Resize the longest side to input_size, normalise and pad (SAM's pre-processing)."""
        check_images(images)
        h, w = images.shape[-2:]
        size = self._resized_shape(h, w)
        x = images.to(self.sam.pixel_mean.device, torch.float32)
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return self.sam.preprocess(x * 255.0)

    def embed(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n 256 hf wf"]:
        """SAM image embeddings of RGB images in [0, 1] (grid ``embedding_size``)."""
        return self.sam.image_encoder(self.preprocess(images))

    def predict_masks(
        self,
        embeddings: Float[Tensor, "n 256 he we"],
        points: Float[Tensor, "n p 2"],
        image_size: tuple[int, int],
        points_chunk: int | None = None,
    ) -> MaskPrediction:
        """Three masks + predicted IoUs per point prompt, decoded from ``embeddings``.

        embeddings: any 256-channel map (SAM's own or a rendered one); resized bilinearly to
                    ``embedding_size`` when its grid differs.
        points:     (x, y) pixel coordinates in an image of ``image_size`` = (H, W).
        Returns logits (n, p, 3, H, W) and iou (n, p, 3). Differentiable w.r.t. embeddings.
        """
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 4:
            raise ValueError("embeddings must be a (n, 256, h, w) tensor")
        if embeddings.shape[1] != SAM_EMBED_DIM:
            raise ValueError(
                f"embeddings must have {SAM_EMBED_DIM} channels, got {embeddings.shape[1]}"
            )
        n = embeddings.shape[0]
        if not isinstance(points, Tensor) or points.ndim != 3 or points.shape[-1] != 2:
            raise ValueError(f"points must have shape (n, p, 2), got {tuple(points.shape)}")
        if points.shape[0] != n:
            raise ValueError(f"points has batch {points.shape[0]} but embeddings has {n}")
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with positive sides, got {image_size}")
        H, W = int(image_size[0]), int(image_size[1])
        grid = self.embedding_size
        if tuple(embeddings.shape[-2:]) != grid:
            embeddings = F.interpolate(embeddings, size=grid, mode="bilinear", align_corners=False)
        resized = self._resized_shape(H, W)
        coords = points.to(embeddings.device, torch.float32) * (self.input_size / max(H, W))
        chunk = points_chunk or max(1, points.shape[1])
        pe = self.sam.prompt_encoder.get_dense_pe()
        all_logits, all_iou = [], []
        for i in range(n):
            logits_i, iou_i = [], []
            for start in range(0, points.shape[1], chunk):
                c = coords[i, start : start + chunk, None, :]
                labels = torch.ones(c.shape[:2], dtype=torch.int64, device=c.device)
                sparse, dense = self.sam.prompt_encoder(points=(c, labels), boxes=None, masks=None)
                low, iou = self.sam.mask_decoder(
                    image_embeddings=embeddings[i : i + 1],
                    image_pe=pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=True,
                )
                logits_i.append(self._postprocess(low, resized, (H, W)))
                iou_i.append(iou)
            all_logits.append(torch.cat(logits_i))
            all_iou.append(torch.cat(iou_i))
        return MaskPrediction(torch.stack(all_logits), torch.stack(all_iou))

    def predict_masks_at(
        self,
        embeddings: Float[Tensor, "n 256 he we"],
        points: Float[Tensor, "n p 2"],
        image_size: tuple[int, int],
        points_chunk: int | None = None,
    ) -> MaskPrediction:
        """``predict_masks`` for points in the package's pixel convention (centres at +0.5,
        ``geometry``): SAM's prompt coordinates put pixel centres on integers."""
        return self.predict_masks(embeddings, points - 0.5, image_size, points_chunk)

    def _postprocess(self, low: Tensor, resized: tuple[int, int], size: tuple[int, int]) -> Tensor:
        s = self.input_size
        if low.shape[-2:] != (s, s):
            low = F.interpolate(low, (s, s), mode="bilinear", align_corners=False)
        low = low[..., : resized[0], : resized[1]]
        if tuple(low.shape[-2:]) != size:
            low = F.interpolate(low, size, mode="bilinear", align_corners=False)
        return low

    @torch.no_grad()
    def hierarchical_masks(
        self,
        inputs: Float[Tensor, "n c h w"],
        image_size: tuple[int, int] | None = None,
    ) -> HierarchicalMasks:
        """Automatic small/medium/large segments (for hierarchical context-aware pooling).

        inputs: RGB images (n, 3, h, w) in [0, 1], or 256-channel embeddings together with the
        ``image_size`` (H, W) of the masks to return.
        """
        if not isinstance(inputs, Tensor) or inputs.ndim != 4:
            raise ValueError("inputs must be (n, 3, h, w) images or (n, 256, h, w) embeddings")
        if inputs.shape[1] == 3:
            image_size = image_size or (inputs.shape[-2], inputs.shape[-1])
            embeddings = self.embed(inputs)
        elif inputs.shape[1] == SAM_EMBED_DIM:
            if image_size is None:
                raise ValueError("image_size is required when passing embeddings")
            embeddings = inputs
        else:
            raise ValueError(f"inputs must have 3 or 256 channels, got {inputs.shape[1]}")
        g = self.generation
        H, W = int(image_size[0]), int(image_size[1])
        pts = grid_points(H, W, g.points_per_side).to(embeddings.device)
        pred = self.predict_masks(
            embeddings, pts.expand(embeddings.shape[0], -1, -1), (H, W), g.points_chunk
        )
        min_area = max(1, int(g.min_area_fraction * H * W))
        levels = [
            torch.stack(
                [
                    paint_segments(pred.logits[i, :, k] > 0, pred.iou[i, :, k], g, min_area)
                    for i in range(embeddings.shape[0])
                ]
            )
            for k in range(3)
        ]
        return HierarchicalMasks(*levels)


def paint_segments(
    masks: Tensor, scores: Tensor, generation: MaskGenerationConfig, min_area: int
) -> Tensor:
    """Greedy non-overlapping id map from candidate masks (p, h, w), best score first."""
    ids = torch.full(masks.shape[-2:], -1, dtype=torch.int64, device=masks.device)
    keep = (scores >= generation.min_predicted_iou) & (masks.flatten(1).sum(1) >= min_area)
    next_id = 0
    for j in torch.argsort(scores, descending=True).tolist():
        if not keep[j]:
            continue
        free = masks[j] & (ids < 0)
        if int(free.sum()) >= min_area:
            ids[free] = next_id
            next_id += 1
    return ids


__all__ = [
    "SAM_ARCHITECTURES",
    "SAM_EMBED_DIM",
    "HierarchicalMasks",
    "MaskGenerationConfig",
    "MaskPrediction",
    "SamArchitecture",
    "SamTeacher",
    "TinyImageEncoder",
    "TinySamConfig",
    "build_sam",
    "build_tiny_sam",
    "grid_points",
    "load_sam",
    "load_tiny_sam",
    "sam_architecture_of",
    "save_tiny_sam",
]
