"""The product's core, with no ROS: load checkpoints -> encode posed views -> semantic Gaussians ->
depth, labels, point clouds, point-prompt and text-query segments.

The ROS node (``semanticsplat_ros/ros/node.py``) is a thin layer over this module: it converts
messages to ``CameraFrame``s, calls ``SemanticSplatPipeline.encode`` and the query methods, and
converts the results back. Everything here works on CPU and CUDA.

Conventions: ``CameraFrame.K`` uses pixel centres at +0.5 (see ``geometry``); pixel prompts
(``u``, ``v``) are in that convention too (the node converts from ROS's integer centres). All 3D
outputs are in the world / fixed frame of the frames' ``c2w``, metres.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from scipy import ndimage
from torch import Tensor

from semanticsplat_ros.data.types import Views
from semanticsplat_ros.device import resolve_device
from semanticsplat_ros.geometry import (
    check_intrinsics,
    check_pose,
    invert_pose,
    project,
    scale_intrinsics,
    transform_points,
    unproject,
    unproject_depth,
)
from semanticsplat_ros.model.bundled import resolve_model_checkpoint
from semanticsplat_ros.model.cpu_runtime import OnnxEncoder, OnnxExportError, resolve_runtime
from semanticsplat_ros.model.semanticsplat import (
    SemanticGaussians,
    SemanticSplat,
    SemanticSplatConfig,
    load_model,
    trained_near,
)
from semanticsplat_ros.pipeline_config import PipelineConfig
from semanticsplat_ros.queries import (
    LanguageField,
    OrientedBox,
    check_query_text,
    classify_cosine,
    cosine_scores,
    oriented_box,
    query_masks,
)
from semanticsplat_ros.render.types import Gaussians
from semanticsplat_ros.teachers.base import Teacher, TextEncoder
from semanticsplat_ros.teachers.lseg import LanguageTeacher, TinyLSeg
from semanticsplat_ros.teachers.prompts import QUERY_TEMPLATES, embed_prompts
from semanticsplat_ros.teachers.sam import SamTeacher, build_tiny_sam
from semanticsplat_ros.teachers.spec import (
    TINY_LSEG,
    TINY_SAM,
    check_model_teachers,
    load_language_teacher,
    load_sam_teacher,
)
from semanticsplat_ros.teachers.text import shared_minilm


@dataclass
class CameraFrame:
    """One posed camera image: what the node builds from Image + CameraInfo + TF."""

    name: str
    image: np.ndarray
    """(H, W, 3) uint8 RGB."""
    K: np.ndarray
    """(3, 3) intrinsics in pixels of ``image``, pixel centres at +0.5."""
    c2w: np.ndarray
    """(4, 4) camera-to-world (fixed frame), OpenCV camera frame, metres."""
    stamp: float = 0.0
    """Acquisition time, seconds."""


@dataclass(frozen=True)
class GaussianGrid:
    """A scene's Gaussians laid out as its cameras' pixel grids: the model predicts one Gaussian
    per input pixel, view-major then row-major, so Gaussian ``k·h·w + i·w + j`` sits at
    ``[k, i, j]`` here. Views of the scene's tensors (no copies), at the model's input
    resolution (h, w), world frame, metres."""

    means: Float[Tensor, "v h w 3"]
    quats: Float[Tensor, "v h w 4"]
    """Rotations, wxyz, not necessarily normalised."""
    scales: Float[Tensor, "v h w 3"]
    opacities: Float[Tensor, "v h w"]
    colors: Float[Tensor, "v h w 3"]
    """Linear RGB in [0, 1]."""
    seg_features: Float[Tensor, "v h w s"]
    """The low-dimensional segmentation feature (s may be 0)."""
    lang_features: Float[Tensor, "v h w l"]
    """The low-dimensional language feature."""

    def strided(self, stride: int) -> GaussianGrid:
        """Every ``stride``-th row and column of every view."""
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        return GaussianGrid(
            *(getattr(self, f)[:, ::stride, ::stride] for f in self.__dataclass_fields__)
        )


@dataclass
class EncodedScene:
    """The latest encoded scene: what every query is answered on. Tensors on the pipeline device,
    at the model's input resolution (h, w) unless stated."""

    names: list[str]
    image_sizes: list[tuple[int, int]]
    """Original (H, W) of each camera image."""
    stamp: float
    images: Float[Tensor, "v 3 h w"]
    K: Float[Tensor, "v 3 3"]
    c2w: Float[Tensor, "v 4 4"]
    depth: Float[Tensor, "v h w"]
    """Predicted z-depth, metres."""
    seg_rendered: Float[Tensor, "v s h w"]
    """Rendered low-dimensional segmentation field (``seg_embeddings`` expands it)."""
    seg_expander: Callable[[Tensor], Tensor]
    """The model's segmentation expander: (b, v, s, h, w) -> (b, v, 256, h, w)."""
    language_field: LanguageField
    """Rendered language field, kept narrow (cosines with texts need no dense field)."""
    labels: Tensor
    """(v, h, w) int64 class ids into ``classes``."""
    scores: Float[Tensor, "v h w"]
    classes: tuple[str, ...]
    gaussians: Gaussians
    """The semantic Gaussians (batch 1), detached."""
    seg_dim: int
    """Leading feature channels of ``gaussians.features`` that are the segmentation feature."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage of ``encode``."""
    class_cosine: Tensor | None = None
    """(v, k, h, w) cosine of each pixel's language feature with each class's text embedding
    (``labels`` is its argmax); lets ``label_image`` classify at the camera's resolution. None:
    labels are resized instead."""
    _seg_expanded: dict[int, Tensor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """View index -> its expanded segmentation field (``seg_embeddings_of``)."""

    @property
    def num_views(self) -> int:
        return len(self.names)

    @cached_property
    def language(self) -> Float[Tensor, "v c h w"]:
        """The rendered and expanded language field, built on first use and kept."""
        with torch.no_grad():
            return self.language_field.dense()

    @property
    def seg_embeddings(self) -> Float[Tensor, "v 256 h w"]:
        """Rendered and expanded segmentation field of every view (input to SAM's mask
        decoder); see ``seg_embeddings_of``."""
        return self.seg_embeddings_of(range(self.num_views))

    def seg_embeddings_of(self, views: Iterable[int]) -> Float[Tensor, "k 256 h w"]:
        """The expanded segmentation field of these views, each expanded on first use (only
        point prompts need it, in the cameras that see the point) and kept."""
        views = list(views)
        missing = [i for i in dict.fromkeys(views) if i not in self._seg_expanded]
        if missing:
            with torch.no_grad():
                expanded = self.seg_expander(self.seg_rendered[missing][None])[0]
            self._seg_expanded.update(zip(missing, expanded, strict=True))
        return torch.stack([self._seg_expanded[i] for i in views])

    @property
    def seg_features(self) -> Float[Tensor, "n s"]:
        """Each Gaussian's low-dimensional segmentation feature (the leading ``seg_dim``
        channels of ``gaussians.features``, batch 0)."""
        self._check_seg_dim()
        return self.gaussians.features[0, :, : self.seg_dim]

    @property
    def lang_features(self) -> Float[Tensor, "n l"]:
        """Each Gaussian's low-dimensional language feature (the channels after ``seg_dim``)."""
        self._check_seg_dim()
        return self.gaussians.features[0, :, self.seg_dim :]

    @property
    def gaussian_grid(self) -> GaussianGrid:
        """The Gaussians as (v, h, w, ...) pixel grids (see ``GaussianGrid``). Raises ValueError
        unless the scene holds one batch of exactly one Gaussian per input pixel."""
        self._check_seg_dim()
        g = self.gaussians
        v = self.num_views
        h, w = self.depth.shape[-2:]
        if g.batch_size != 1:
            raise ValueError(f"expected the Gaussians of one scene (batch 1), got {g.batch_size}")
        if g.num_gaussians != v * h * w:
            raise ValueError(
                f"expected one Gaussian per input pixel ({v} views x {h}x{w} = {v * h * w}),"
                f" got {g.num_gaussians} Gaussians"
            )

        def grid(t: Tensor) -> Tensor:
            return t[0].reshape(v, h, w, *t.shape[2:])

        return GaussianGrid(
            means=grid(g.means),
            quats=grid(g.quats),
            scales=grid(g.scales),
            opacities=grid(g.opacities),
            colors=grid(g.colors),
            seg_features=grid(g.features[..., : self.seg_dim]),
            lang_features=grid(g.features[..., self.seg_dim :]),
        )

    def _check_seg_dim(self) -> None:
        if not 0 <= self.seg_dim <= self.gaussians.feature_dim:
            raise ValueError(
                f"seg_dim {self.seg_dim} is outside the {self.gaussians.feature_dim} feature"
                " channels"
            )

    def camera_index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"unknown camera {name!r}; cameras in the scene: {self.names}")
        return self.names.index(name)

    def resize_to_camera(self, x: Tensor, index: int, mode: str = "nearest") -> np.ndarray:
        """A (h, w) map at input resolution -> numpy at camera ``index``'s original size."""
        H, W = self.image_sizes[index]
        y = x[None, None].float()
        if mode == "nearest":
            y = F.interpolate(y, size=(H, W), mode="nearest")
        else:
            y = F.interpolate(y, size=(H, W), mode=mode, align_corners=False)
        return y[0, 0].to(x.dtype).cpu().numpy()

    def depth_image(self, index: int) -> np.ndarray:
        """(H, W) float32 depth in metres at the camera's original resolution."""
        return self.resize_to_camera(self.depth[index], index, "bilinear").astype(np.float32)

    def label_image(self, index: int) -> np.ndarray:
        """(H, W) class ids at the camera's original resolution: the argmax of the class scores
        upsampled bilinearly (smooth class boundaries, as segmentation networks upsample logits),
        or the labels resized when the scene holds no class scores."""
        H, W = self.image_sizes[index]
        if self.class_cosine is None or tuple(self.labels.shape[-2:]) == (H, W):
            return self.resize_to_camera(self.labels[index], index).astype(np.int64)
        scores = self.class_cosine[index : index + 1]
        scores = F.interpolate(scores, size=(H, W), mode="bilinear", align_corners=False)
        return scores[0].argmax(0).cpu().numpy().astype(np.int64)


class PointNotVisibleError(ValueError):
    """``segment_point``: no camera of the scene sees the point (outside the images or
    occluded)."""


@dataclass
class SegmentResult:
    """One segment: masks per camera (original resolution), its 3D points and summary."""

    label: str
    score: float
    masks: dict[str, np.ndarray]
    """Camera name -> (H, W) bool mask."""
    points: np.ndarray
    """(n, 3) float32 world points (metres) of the masked pixels."""
    colors: np.ndarray
    """(n, 3) uint8 RGB of those points."""
    point_labels: np.ndarray
    """(n,) int64 class ids of those points."""
    point_scores: np.ndarray
    """(n,) float32 scores of those points."""
    centroid: np.ndarray
    """(3,) float, NaN when there are no points."""
    box: OrientedBox


@dataclass
class SemanticCloud:
    """Per-pixel 3D points of all views: xyz (n, 3) float32, rgb (n, 3) uint8, label (n,), score."""

    xyz: np.ndarray
    rgb: np.ndarray
    label: np.ndarray
    score: np.ndarray


def check_frames(frames: Sequence[CameraFrame]) -> None:
    """ValueError naming the camera for any malformed frame."""
    if len(frames) < 2:
        raise ValueError(f"need at least 2 camera frames, got {len(frames)}")
    names = [f.name for f in frames]
    if len(set(names)) != len(names):
        raise ValueError(f"camera names must be unique, got {names}")
    for f in frames:
        img = f.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            raise ValueError(f"camera {f.name!r}: image must be (H, W, 3), got {shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"camera {f.name!r}: image must be uint8 RGB, got {img.dtype}")
        if img.shape[0] < 8 or img.shape[1] < 8:
            raise ValueError(f"camera {f.name!r}: image {img.shape[1]}x{img.shape[0]} is too small")
        try:
            check_intrinsics(torch.as_tensor(np.asarray(f.K, dtype=np.float64)), "K")
            check_pose(torch.as_tensor(np.asarray(f.c2w, dtype=np.float64)), "c2w")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"camera {f.name!r}: {exc}") from exc


class SemanticSplatPipeline:
    """Model + teachers + text encoder, and the queries answered on an ``EncodedScene``.

    Thread-safety: ``encode`` and the queries may be called from different threads and run
    concurrently (the model, the teachers and the text encoder keep no state in inference, so a
    query is not held up by an encode in progress); the class list and the text cache change
    under a lock, and an ``EncodedScene`` is never modified after it is returned (``relabel``
    returns a relabelled copy; its expanded fields are only filled in once, on first use).
    """

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config = config or PipelineConfig()
        self.device = resolve_device(config.device)
        self._lock = threading.RLock()
        self.model, self.model_meta = self._load_model()
        self.runtime = resolve_runtime(config.runtime, self.device)
        """The encoder's runtime: ``onnx`` (the ONNX export on OpenVINO) or ``torch``."""
        self.runtime_fallback = ""
        """Why ``runtime: auto`` fell back to torch (the ONNX export failed), or ""."""
        self._onnx = OnnxEncoder(self.model) if self.runtime == "onnx" else None
        self.near = config.near or trained_near(self.model_meta)
        """The cost volume's near plane (metres) when ``encode`` is given none."""
        if not self.near < config.far:
            raise ValueError(f"the model's near plane {self.near} m is not before far={config.far}")
        self.sam, self.language_teacher, self.text_encoder = self._load_teachers()
        lang_dim = self.model.config.language_dim
        if self.text_encoder.dim != lang_dim:
            raise ValueError(
                f"text encoder width {self.text_encoder.dim} != model language width {lang_dim}"
            )
        self._text_cache: dict[str, Tensor] = {}
        self.classes: tuple[str, ...] = ()
        self.class_embeddings: Tensor = torch.empty(0)
        self.set_classes(config.classes, config.class_prompts)

    # ------------------------------------------------------------------ loading

    @property
    def text_encoder_name(self) -> str:
        """The resolved text encoder: ``minilm`` or the language teacher's kind (e.g.
        ``open_clip:ViT-B-16``); text embeddings of different names are not comparable."""
        return self.config.text_encoder_name

    def _load_model(self) -> tuple[SemanticSplat, dict[str, Any]]:
        """The model; a loaded one must be distilled from the configured teachers."""
        sam_spec, language_spec = self.config.sam_spec, self.config.language_spec
        if self.config.random_weights:
            model_config = replace(
                SemanticSplatConfig.small(),
                sam_dim=sam_spec.feature_dim,
                language_dim=language_spec.feature_dim,
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # the same weights each time: one cached ONNX export
                model = SemanticSplat(model_config)
            return model.to(self.device).eval(), {"random_weights": True}
        path = resolve_model_checkpoint(self.config.model_checkpoint)
        model, meta = load_model(path, map_location=self.device)
        check_model_teachers(meta, sam_spec, language_spec, source=f"model checkpoint {path}")
        return model, meta

    def _load_teachers(self) -> tuple[SamTeacher, Teacher, TextEncoder]:
        """The configured teachers; random tiny ones with random_weights (a ViT is loaded)."""
        sam_spec, language_spec = self.config.sam_spec, self.config.language_spec
        random_weights = self.config.random_weights
        if random_weights and sam_spec.architecture == TINY_SAM:
            sam = SamTeacher(build_tiny_sam().eval())
        else:
            sam = load_sam_teacher(sam_spec, self.device)
        if random_weights and language_spec.family == TINY_LSEG:
            lseg = TinyLSeg()
            text_encoder: TextEncoder = shared_minilm()
            language: Teacher = LanguageTeacher(lseg.eval(), text_encoder, lseg.config.image_size)
        else:
            loaded = load_language_teacher(language_spec, self.device)
            language, text_encoder = loaded.teacher, loaded.text_encoder
        return sam.to(self.device).eval(), language.to(self.device).eval(), text_encoder

    # ------------------------------------------------------------------ classes and texts

    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Unit text embeddings (k, d) on the pipeline device, memoised per text; prompt
        ensembled over ``prompts.QUERY_TEMPLATES`` (``prompts.embed_prompts``)."""
        missing = [t for t in texts if t not in self._text_cache]
        if missing:
            with self._lock:
                emb = embed_prompts(
                    self.text_encoder, list(dict.fromkeys(missing)), QUERY_TEMPLATES
                )
            for t, e in zip(dict.fromkeys(missing), emb, strict=True):
                self._text_cache[t] = e.to(self.device, torch.float32)
        return torch.stack([self._text_cache[t] for t in texts])

    def set_classes(self, names: Sequence[str], prompts: Sequence[str] = ()) -> None:
        """Replace the class list (and the texts embedded for it)."""
        names = [check_query_text(n) for n in names]
        if not names:
            raise ValueError("the class list must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique, got {names}")
        prompts = [check_query_text(p) for p in prompts] if prompts else list(names)
        if len(prompts) != len(names):
            raise ValueError(f"got {len(prompts)} prompts for {len(names)} classes")
        embeddings = self.encode_texts(prompts)
        with self._lock:
            self.classes = tuple(names)
            self.class_embeddings = embeddings

    def relabel(self, scene: EncodedScene) -> EncodedScene:
        """The scene labelled with the current class list (shares every other tensor)."""
        cosine = cosine_scores(scene.language_field, self.class_embeddings)
        labels, scores = classify_cosine(cosine)
        return replace(
            scene, labels=labels, scores=scores, classes=self.classes, class_cosine=cosine
        )

    # ------------------------------------------------------------------ encoding

    @torch.no_grad()
    def encode(
        self,
        frames: Sequence[CameraFrame],
        near: float | None = None,
        far: float | None = None,
    ) -> EncodedScene:
        """Run the network on synchronized posed frames (>= 2). Raises ValueError on bad input."""
        check_frames(frames)
        near = near or self.near  # None or 0: the pipeline's
        far = self.config.far if far is None else far
        if not 0 < near < far:
            raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
        t0 = time.perf_counter()
        h, w = self.config.input_height, self.config.input_width
        dev = self.device
        images, Ks = [], []
        for f in frames:
            img = torch.from_numpy(np.ascontiguousarray(f.image)).to(dev).permute(2, 0, 1)
            img = img.float().div(255.0)[None]
            H, W = f.image.shape[:2]
            if (h, w) != (H, W):
                img = F.interpolate(
                    img, (h, w), mode="bilinear", align_corners=False, antialias=True
                )
            images.append(img[0])
            K = torch.as_tensor(np.asarray(f.K, dtype=np.float32), device=dev)
            Ks.append(scale_intrinsics(K, w / W, h / H))
        v = len(frames)
        images_t = torch.stack(images)
        K_t = torch.stack(Ks)
        c2w_t = torch.stack(
            [torch.as_tensor(np.asarray(f.c2w, np.float32), device=dev) for f in frames]
        )
        context = Views(
            images=images_t[None],
            K=K_t[None],
            c2w=c2w_t[None],
            near=torch.full((1, v), float(near), device=dev),
            far=torch.full((1, v), float(far), device=dev),
        )
        timings: dict[str, float] = {"preprocess": time.perf_counter() - t0}
        with self._lock:  # one consistent class list for this scene
            classes, class_embeddings = self.classes, self.class_embeddings
        t = time.perf_counter()
        fusion = self.model.config.fusion
        sam_feats = self.sam.embed(images_t)[None] if fusion.use_sam else None
        lang_feats = self.language_teacher.embed(images_t)[None] if fusion.use_language else None
        timings["teachers"] = time.perf_counter() - t
        t = time.perf_counter()
        out = self._forward(context, sam_feats, lang_feats)
        timings["model"] = time.perf_counter() - t
        t = time.perf_counter()
        rendered = self.model.render(out, invert_pose(c2w_t)[None], K_t[None], w, h)
        seg_dim = self.model.config.semantic.seg_render_dim
        seg_low = rendered.features[0, :, :seg_dim]
        expander = self.model.language_expander
        lang = LanguageField(
            expander.hidden(rendered.features[:, :, seg_dim:])[0],
            expander.output_weight.detach(),
            expander.output_bias.detach(),
        )
        timings["render"] = time.perf_counter() - t
        t = time.perf_counter()
        cosine = cosine_scores(lang, class_embeddings)
        labels, scores = classify_cosine(cosine)
        timings["classify"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        return EncodedScene(
            names=[f.name for f in frames],
            image_sizes=[tuple(f.image.shape[:2]) for f in frames],
            stamp=max(f.stamp for f in frames),
            images=images_t,
            K=K_t,
            c2w=c2w_t,
            depth=out.depth[0],
            seg_rendered=seg_low,
            seg_expander=self.model.seg_expander,
            language_field=lang,
            labels=labels,
            scores=scores,
            classes=classes,
            gaussians=out.gaussians.detach(),
            seg_dim=out.seg_dim,
            timings=timings,
            class_cosine=cosine,
        )

    def _forward(
        self, context: Views, sam: Tensor | None, lang: Tensor | None
    ) -> SemanticGaussians:
        """The model's forward on the configured runtime. With ``runtime: auto`` a failed ONNX
        export falls back to torch (``runtime_fallback`` says why); with ``onnx`` it raises."""
        if self._onnx is None:
            return self.model(context, sam, lang)
        try:
            return self._onnx(context, sam, lang)
        except OnnxExportError as exc:
            if self.config.runtime == "onnx":
                raise
            self.runtime_fallback = str(exc)
            warnings.warn(f"runtime auto: using torch, {exc}", RuntimeWarning, stacklevel=2)
            self._onnx, self.runtime = None, "torch"
            return self.model(context, sam, lang)

    def prepare(self, num_views: int) -> float:
        """Encode a synthetic set of ``num_views`` cameras at the input size once, so that the
        first real set does not pay for the ONNX export (or its cache load) and torch's first
        call. Returns the seconds it took."""
        if num_views < 2:
            raise ValueError(f"need at least 2 views, got {num_views}")
        t0 = time.perf_counter()
        h, w = self.config.input_height, self.config.input_width
        K = np.array([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1]], np.float32)
        rng = np.random.default_rng(0)
        frames = []
        for i in range(num_views):
            c2w = np.eye(4, dtype=np.float32)
            c2w[0, 3] = 0.1 * i
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            frames.append(CameraFrame(f"prepare{i}", image, K, c2w))
        self.encode(frames)
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ outputs

    def semantic_cloud(self, scene: EncodedScene, stride: int = 1) -> SemanticCloud:
        """World points of every view's pixels (every ``stride``-th row/column)."""
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        pts = unproject_depth(scene.depth, scene.K, scene.c2w)[:, ::stride, ::stride]
        valid = scene.depth[:, ::stride, ::stride] > 0
        rgb = scene.images.permute(0, 2, 3, 1)[:, ::stride, ::stride]
        return SemanticCloud(
            xyz=pts[valid].float().cpu().numpy(),
            rgb=(rgb[valid] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy(),
            label=scene.labels[:, ::stride, ::stride][valid].cpu().numpy(),
            score=scene.scores[:, ::stride, ::stride][valid].float().cpu().numpy(),
        )

    def _segment_from_masks(
        self, scene: EncodedScene, label: str, score: float, masks: dict[int, Tensor]
    ) -> SegmentResult:
        """Assemble a SegmentResult from input-resolution masks of some views."""
        pts_all, rgb_all, lab_all, sc_all = [], [], [], []
        out_masks: dict[str, np.ndarray] = {}
        for i, m in masks.items():
            out_masks[scene.names[i]] = scene.resize_to_camera(m.to(torch.uint8), i).astype(bool)
            sel = m & (scene.depth[i] > 0)
            if not sel.any():
                continue
            world = unproject_depth(scene.depth[i], scene.K[i], scene.c2w[i])
            pts_all.append(world[sel])
            rgb_all.append(scene.images[i].permute(1, 2, 0)[sel])
            lab_all.append(scene.labels[i][sel])
            sc_all.append(scene.scores[i][sel])
        if pts_all:
            pts = torch.cat(pts_all).float()
            colors = (torch.cat(rgb_all) * 255).round().clamp(0, 255).to(torch.uint8)
            labels = torch.cat(lab_all)
            scores = torch.cat(sc_all).float()
        else:
            pts = torch.zeros(0, 3)
            colors = torch.zeros(0, 3, dtype=torch.uint8)
            labels = torch.zeros(0, dtype=torch.long)
            scores = torch.zeros(0)
        centroid = pts.mean(0) if len(pts) else torch.full((3,), float("nan"))
        return SegmentResult(
            label=label,
            score=float(score),
            masks=out_masks,
            points=pts.cpu().numpy().astype(np.float32),
            colors=colors.cpu().numpy(),
            point_labels=labels.cpu().numpy().astype(np.int64),
            point_scores=scores.cpu().numpy().astype(np.float32),
            centroid=centroid.cpu().numpy().astype(np.float64),
            box=oriented_box(pts.cpu()),
        )

    @torch.no_grad()
    def segment_point(
        self,
        scene: EncodedScene,
        point_world: Sequence[float] | np.ndarray,
        prompt_pixel: tuple[int, float, float] | None = None,
    ) -> list[SegmentResult]:
        """Three hierarchical segments (small, medium, large) at a 3D point (world frame).

        The point is prompted in every camera that sees it (in the image and not occluded by
        the predicted depth); ``prompt_pixel`` = (camera index, u, v) forces the exact pixel in
        the camera the user clicked. Raises ValueError when no camera sees the point.
        """
        p = torch.as_tensor(np.asarray(point_world, dtype=np.float32), device=self.device)
        if p.shape != (3,) or not torch.isfinite(p).all():
            raise ValueError(f"point must be 3 finite coordinates, got {point_world}")
        h, w = scene.depth.shape[-2:]
        cam = transform_points(invert_pose(scene.c2w), p.expand(scene.num_views, 1, 3))
        uv, z = project(cam, scene.K)
        uv, z = uv[:, 0], z[:, 0]
        prompts: dict[int, tuple[float, float]] = {}
        for i in range(scene.num_views):
            if prompt_pixel is not None and prompt_pixel[0] == i:
                prompts[i] = (prompt_pixel[1], prompt_pixel[2])
                continue
            u, v = float(uv[i, 0]), float(uv[i, 1])
            if z[i] <= 0 or not (0 <= u < w and 0 <= v < h):
                continue
            d = float(scene.depth[i, int(v), int(u)])
            if float(z[i]) <= d * (1.0 + self.config.occlusion_tolerance):
                prompts[i] = (u, v)
        if not prompts:
            raise PointNotVisibleError(
                f"point {p.tolist()} is not visible in any camera (outside the images or occluded)"
            )
        idx = list(prompts)
        pts = torch.tensor([[prompts[i]] for i in idx], device=self.device)
        pred = self.sam.predict_masks_at(scene.seg_embeddings_of(idx), pts, (h, w))
        logits, iou = pred.logits[:, 0], pred.iou[:, 0]  # (k, 3, h, w), (k, 3)
        masks_of = logits > 0  # (k, 3, h, w)
        scores = iou.mean(0).clamp(0, 1).tolist()  # SAM's predicted IoU per level
        refinement = self.config.segment_refinement
        if refinement != "none":
            region = self._prompted_region(scene, idx, prompts)  # (k, h, w)
            masks_of = masks_of & region[:, None]
            if refinement == "object":
                masks_of[:, 2] = region
                scores[2] = float(scene.scores[idx][region].mean())  # region holds the prompt
        # segment_anything orders multimask outputs by granularity: index 0 is the smallest.
        levels = ("small", "medium", "large")
        results = []
        for level in range(3):
            masks = {i: masks_of[j, level] for j, i in enumerate(idx)}
            results.append(self._segment_from_masks(scene, levels[level], scores[level], masks))
        return results

    @staticmethod
    def _prompted_region(
        scene: EncodedScene, idx: list[int], prompts: dict[int, tuple[float, float]]
    ) -> Tensor:
        """(k, h, w) bool: in each prompted camera, the 4-connected region of pixels labelled
        like its prompted pixel that holds that pixel."""
        h, w = scene.labels.shape[-2:]
        out = []
        for i in idx:
            u, v = prompts[i]
            vi, ui = min(int(v), h - 1), min(int(u), w - 1)
            same = (scene.labels[i] == scene.labels[i, vi, ui]).cpu().numpy()
            regions, _ = ndimage.label(same)
            out.append(torch.from_numpy(regions == regions[vi, ui]))
        return torch.stack(out).to(scene.labels.device)

    def segment_pixel(
        self, scene: EncodedScene, camera: str, u: float, v: float
    ) -> list[SegmentResult]:
        """Segments at pixel (u, v) (centres at +0.5, the camera's original resolution)."""
        i = scene.camera_index(camera)
        H, W = scene.image_sizes[i]
        if not (np.isfinite(u) and np.isfinite(v)) or not (0 <= u < W and 0 <= v < H):
            raise ValueError(f"pixel ({u}, {v}) is outside camera {camera!r}'s {W}x{H} image")
        h, w = scene.depth.shape[-2:]
        ui, vi = float(u) * w / W, float(v) * h / H  # numpy scalars too
        d = scene.depth[i, int(vi), int(ui)]
        uv = torch.tensor([[ui, vi]], dtype=torch.float32, device=self.device)
        p_cam = unproject(uv, d.reshape(1), scene.K[i])
        p_world = transform_points(scene.c2w[i], p_cam)[0]
        return self.segment_point(scene, p_world.cpu().numpy(), prompt_pixel=(i, ui, vi))

    @torch.no_grad()
    def query_text(
        self, scene: EncodedScene, texts: Sequence[str], threshold: float | None = None
    ) -> list[SegmentResult]:
        """One segment per text query: masks in every camera, points, centroid, box."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not a single string")
        clean = [check_query_text(t) for t in texts]
        if not clean:
            raise ValueError("no query texts given")
        threshold = (
            self.config.query_threshold if threshold is None or threshold <= 0 else threshold
        )
        if not 0.0 < threshold < 1.0:
            raise ValueError(
                f"threshold must be in (0, 1), or <= 0 for the default; got {threshold}"
            )
        embeddings = self.encode_texts(clean)
        with self._lock:
            classes, class_embeddings = self.classes, self.class_embeddings
        # The scene's class cosines, when it was labelled with this class list: only each
        # query's own cosine is then computed.
        cached = scene.class_cosine if scene.classes == classes else None
        results = []
        for text, q in zip(clean, embeddings, strict=True):
            masks, scores = query_masks(
                scene.language_field, q, class_embeddings, threshold, class_cosine=cached
            )
            inside = scores[masks]
            score = float(inside.mean()) if inside.numel() else 0.0
            results.append(
                self._segment_from_masks(
                    scene, text, score, {i: masks[i] for i in range(scene.num_views)}
                )
            )
        return results
