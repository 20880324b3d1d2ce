"""``PipelineConfig``: how ``SemanticSplatPipeline`` is built (checkpoints, teachers, runtime,
input size, classes, query settings), validated once; ``from_parameters`` reads the node's
parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.device import Device, check_device_name
from semanticsplat_ros.model.cpu_runtime import RUNTIMES, Runtime
from semanticsplat_ros.teachers.spec import (
    SAM_SPEC_FORMS,
    TINY_LSEG,
    TINY_SAM,
    LanguageSpec,
    SamSpec,
    resolve_text_encoder,
)

SegmentRefinement = Literal["none", "class", "object"]
"""How point-prompt segments use the language field's labels (``PipelineConfig``)."""
SEGMENT_REFINEMENTS: tuple[str, ...] = get_args(SegmentRefinement)
"""Values of ``PipelineConfig.segment_refinement``."""

_MISSING = object()


@dataclass
class PipelineConfig:
    """How the pipeline is built. Empty checkpoint paths select the shipped defaults."""

    model_checkpoint: str = ""
    """SemanticSplat checkpoint: a path, a bundled model's name (``BUNDLED_MODELS``), or "" for
    the shipped small model (assets/checkpoints)."""
    sam_checkpoint: str = ""
    """SAM teacher spec (``teachers.spec``): ``tiny``, ``tiny:PATH``, ``vit_b:PATH``,
    ``vit_l:PATH`` or ``vit_h:PATH``; "" = ``tiny`` (the shipped tiny SAM)."""
    language_checkpoint: str = ""
    """Language teacher spec: ``tiny_lseg``, ``tiny_lseg:PATH`` or ``open_clip:ARCH:PATH``;
    "" = ``tiny_lseg`` (the shipped tiny LSeg). The node's ``clip_checkpoint``."""
    text_encoder: str = "auto"
    """Text encoder of queries and classes: ``auto`` (the language teacher's own: MiniLM for
    tiny_lseg, CLIP's text tower for open_clip), ``minilm`` (tiny_lseg only) or the language
    spec ``open_clip:ARCH:PATH`` itself."""
    device: Device = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:<index>``."""
    runtime: Runtime = "auto"
    """How the encoder runs: ``torch`` (eager), ``onnx`` (the ONNX export on OpenVINO, CPU only; exported once
    per checkpoint and input layout, cached in ``model.cpu_runtime.default_cache_dir()``) or
    ``auto`` (onnx on the CPU, torch on CUDA)."""
    input_width: int = 96
    """Model input width in pixels (a multiple of 8); images are resized to it."""
    input_height: int = 72
    """Model input height in pixels (a multiple of 8)."""
    near: float = 0.0
    """Nearest depth considered by the cost volume, metres; 0 = the near plane the model was
    trained with (``model.semanticsplat.trained_near``)."""
    far: float = 10.0
    """Farthest depth considered by the cost volume, metres."""
    classes: tuple[str, ...] = CLASS_NAMES
    """Class names for labels, class masks and the semantic cloud."""
    class_prompts: tuple[str, ...] = ()
    """Texts embedded for the classes (same length as classes), or empty to use the names."""
    query_threshold: float = 0.5
    """Default score threshold of text queries, in (0, 1)."""
    segment_refinement: SegmentRefinement = "object"
    """How point-prompt segments use the language field's labels.
    ``none``: SAM's three masks as decoded. ``class``: in each camera, each mask keeps only the
    prompted pixel's region: the connected pixels the language field labels like the prompted
    pixel, so a segment does not spill from a chair onto the floor, the table or the next chair.
    ``object`` (default): as ``class``, and the large level is that whole region (the prompted
    object as the scene's labels see it; its score the mean label score inside), since the
    distilled SAM decoder's large mask often covers only part of an object."""
    occlusion_tolerance: float = 0.1
    """A 3D point in a camera's image counts as occluded there when it lies more than this
    fraction behind the camera's predicted depth at that pixel (a point in front of the
    predicted surface is seen: nothing predicted lies between it and the camera)."""
    random_weights: bool = False
    """Build the model and tiny teachers with random weights instead of loading checkpoints.
    For plumbing tests only: outputs are meaningless."""

    def __post_init__(self) -> None:
        """ValueError naming the field for any value outside its documented range or choices
        (the checkpoints themselves are checked when the pipeline loads them)."""
        for name in ("input_width", "input_height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 16 or value % 8:
                raise ValueError(f"{name} must be a multiple of 8 and >= 16, got {value}")
        if not 0 <= self.near < self.far:
            raise ValueError(
                f"need 0 <= near < far (0: the model's own), got near={self.near}, far={self.far}"
            )
        if not 0.0 < self.query_threshold < 1.0:
            raise ValueError(f"query_threshold must be in (0, 1), got {self.query_threshold}")
        _check_choice("segment_refinement", self.segment_refinement, SEGMENT_REFINEMENTS)
        _check_choice("runtime", self.runtime, RUNTIMES)
        if self.runtime == "onnx" and str(self.device).startswith("cuda"):
            raise ValueError(f"runtime onnx runs on the CPU only, not on device {self.device}")
        _ = self.sam_spec, self.text_encoder_name  # parse the specs: one-line ValueErrors
        check_device_name(self.device)
        if not self.occlusion_tolerance >= 0.0:  # NaN fails too
            raise ValueError(f"occlusion_tolerance must be >= 0, got {self.occlusion_tolerance}")

    @property
    def sam_spec(self) -> SamSpec:
        """The SAM teacher ``sam_checkpoint`` names; ValueError (one line) if malformed."""
        return _parse_spec(SamSpec, "sam_checkpoint", self.sam_checkpoint, TINY_SAM)

    @property
    def language_spec(self) -> LanguageSpec:
        """The language teacher ``language_checkpoint`` names; ValueError if malformed."""
        return _parse_spec(LanguageSpec, "language_checkpoint", self.language_checkpoint, TINY_LSEG)

    @property
    def text_encoder_name(self) -> str:
        """``minilm`` or the language teacher's kind (``open_clip:ViT-B-16``)."""
        return resolve_text_encoder(self.text_encoder, self.language_spec)

    @classmethod
    def from_parameters(
        cls, params: Mapping[str, Any] | object, **overrides: Any
    ) -> PipelineConfig:
        """The config from the node's parameters (``semanticsplat_node``'s names: a mapping, or
        an object with those attributes such as ``ros.params.NodeParams``), then ``overrides``
        (field names). Parameters that are missing keep the field defaults. ``clip_checkpoint``
        is ``language_checkpoint``; ``query_threshold`` is kept inside (0, 1) since the node
        accepts [0, 1]. Raises ValueError / TypeError as the fields do."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "clip_checkpoint" if f.name == "language_checkpoint" else f.name
            if isinstance(params, Mapping):
                value = params.get(name, _MISSING)
            else:
                value = getattr(params, name, _MISSING)
            if value is not _MISSING:
                values[f.name] = value
        for name in ("classes", "class_prompts"):
            if name in values:
                values[name] = tuple(values[name])
        if "query_threshold" in values:
            values["query_threshold"] = min(max(float(values["query_threshold"]), 1e-3), 1 - 1e-3)
        values.update(overrides)
        return cls(**values)


def _parse_spec(kind: Any, name: str, text: str, default: str) -> Any:
    """``kind.parse(text or default)``, the error naming the field; a bare path (no
    ``ARCH:``) is told to say its architecture."""
    text = text.strip() if isinstance(text, str) else text
    try:
        return kind.parse(text or default)
    except (TypeError, ValueError) as exc:
        if isinstance(text, str) and ":" not in text and ("/" in text or "." in text):
            forms = (
                "open_clip:ARCH:PATH, tiny_lseg:PATH" if kind is LanguageSpec else SAM_SPEC_FORMS
            )
            raise ValueError(
                f"{name} {text!r} is a bare path; write the teacher: {forms}"
            ) from None
        raise ValueError(f"{name}: {exc}") from None


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
