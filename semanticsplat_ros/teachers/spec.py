"""Teacher specifications: which SAM and which language teacher, one string each.

The same strings are used by training configs, evaluation, the pipeline, the node's parameters
and model checkpoints::

    SAM       tiny                    the shipped tiny SAM (assets/checkpoints/tiny_sam.pt)
              tiny:PATH               a tiny SAM written by ``semanticsplat train-teachers``
              vit_b:PATH              a segment_anything ViT-B / ViT-L / ViT-H weights file
              vit_l:PATH              (Meta's ``sam_vit_b_01ec64.pth`` and friends)
              vit_h:PATH
    language  tiny_lseg               the shipped tiny LSeg + all-MiniLM-L6-v2 (384-d)
              tiny_lseg:PATH          a tiny LSeg written by ``semanticsplat train-teachers``
              open_clip:ARCH:PATH     an open_clip ViT (``open_clip.list_models()``, e.g.
                                      ViT-B-16) from a local weights file (.bin/.pt/.safetensors);
                                      dense features by MaskCLIP's value path (``clip.py``), text
                                      by CLIP's own text tower
              open_clip:CONFIG.json:PATH  the same for a custom open_clip model config

Everything after the architecture is the path (it may contain ``:``). Parsing checks the syntax,
the architecture names and that an open_clip architecture has a ViT image tower; loading
(``load_sam_teacher`` / ``load_language_teacher``) checks the files: a missing one raises
FileNotFoundError, a corrupt one or one of another architecture ValueError, each one line naming
the file.

A model checkpoint records the teachers it was distilled from (``spec_to_checkpoint_dict``): per
teacher its spec string, its *kind* (``tiny``, ``vit_b``, ..., ``tiny_lseg``,
``open_clip:ViT-B-16``) and its feature dimension. ``check_checkpoint_teachers`` compares a
record with the teachers configured now by kind and dimension (not by path: the same weights
live at other paths on other machines) and names every teacher that differs. The trainer writes
the record into ``meta["teachers"]`` of every model checkpoint (None for a stage-0 model, which
is distilled from no teacher); ``recorded_teachers`` reads it back, taking a checkpoint written
before records existed (the bundled models) as distilled from the shipped tiny pair, and
``check_model_teachers`` is the check a consumer that knows its teacher pair runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch

from semanticsplat_ros.teachers.base import Teacher, TextEncoder
from semanticsplat_ros.teachers.clip import load_clip
from semanticsplat_ros.teachers.lseg import load_tiny_lseg
from semanticsplat_ros.teachers.sam import (
    SAM_ARCHITECTURES,
    SAM_EMBED_DIM,
    SamTeacher,
    load_sam,
    load_tiny_sam,
)
from semanticsplat_ros.teachers.text import MINILM_DIM

TINY_SAM = "tiny"
TINY_LSEG = "tiny_lseg"
OPEN_CLIP = "open_clip"
SAM_SPEC_FORMS = "tiny, tiny:PATH, vit_b:PATH, vit_l:PATH or vit_h:PATH"
LANGUAGE_SPEC_FORMS = "tiny_lseg, tiny_lseg:PATH or open_clip:ARCH:PATH"
TEACHER_ROLES = ("sam", "language")
"""Keys of the teacher record in a model checkpoint."""


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} spec must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{what} spec is empty")
    if "\n" in stripped:
        raise ValueError(f"{what} spec {stripped!r} spans several lines")
    return stripped


def _check_path(path: Path | None, spec: str, what: str) -> None:
    if path is not None and not str(path).strip():
        raise ValueError(f"{what} spec {spec!r} has an empty path")


@dataclass(frozen=True)
class SamSpec:
    """A SAM teacher: the tiny one or a released segment_anything ViT, by its weights file."""

    architecture: str
    """``tiny`` or a segment_anything registry name: ``vit_b``, ``vit_l``, ``vit_h``."""
    path: Path | None = None
    """The weights file; required for a ViT, optional for ``tiny`` (None = the shipped one)."""

    def __post_init__(self) -> None:
        spec = self.to_string()
        if self.architecture != TINY_SAM and self.architecture not in SAM_ARCHITECTURES:
            raise ValueError(
                f"SAM spec {spec!r}: unknown architecture {self.architecture!r}; expected "
                f"{SAM_SPEC_FORMS}"
            )
        if self.architecture != TINY_SAM and self.path is None:
            raise ValueError(
                f"SAM spec {spec!r}: {self.architecture} needs a weights file "
                f"({self.architecture}:PATH)"
            )
        _check_path(self.path, spec, "SAM")

    @classmethod
    def parse(cls, text: str) -> SamSpec:
        """``tiny``, ``tiny:PATH`` or ``vit_b|vit_l|vit_h:PATH``; ValueError otherwise."""
        text = _check_text(text, "SAM")
        architecture, sep, path = text.partition(":")
        if sep and not path.strip():
            raise ValueError(f"SAM spec {text!r} has an empty path")
        return cls(architecture.strip(), Path(path.strip()) if sep else None)

    def to_string(self) -> str:
        """The spec string ``parse`` reads back."""
        return self.architecture if self.path is None else f"{self.architecture}:{self.path}"

    @property
    def kind(self) -> str:
        """What distilled features depend on: the architecture, not where the file lies."""
        return self.architecture

    @property
    def feature_dim(self) -> int:
        """Channels of the image embedding (SAM's, whatever the encoder: 256)."""
        return SAM_EMBED_DIM

    def record(self) -> dict[str, Any]:
        """This teacher in a model checkpoint (see the module docstring)."""
        return {"spec": self.to_string(), "kind": self.kind, "feature_dim": self.feature_dim}


def _open_clip_config(architecture: str, spec: str) -> dict[str, Any]:
    """The model config of an open_clip architecture name or JSON config file."""
    if architecture.endswith(".json"):
        path = Path(architecture)
        if not path.is_file():
            raise FileNotFoundError(f"language spec {spec!r}: model config {path} does not exist")
        try:
            config = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"language spec {spec!r}: model config {path} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(config, dict):
            raise ValueError(f"language spec {spec!r}: model config {path} is not a JSON object")
        return config
    config = open_clip.get_model_config(architecture)
    if config is None:
        raise ValueError(
            f"language spec {spec!r}: unknown open_clip architecture {architecture!r} "
            "(see open_clip.list_models(), e.g. ViT-B-16, ViT-L-14)"
        )
    return config


@dataclass(frozen=True)
class LanguageSpec:
    """A language teacher: the tiny LSeg (with MiniLM text) or an open_clip ViT (dense MaskCLIP
    features, CLIP's text tower)."""

    family: str
    """``tiny_lseg`` or ``open_clip``."""
    architecture: str | None = None
    """open_clip only: an architecture name (``ViT-B-16``) or a JSON model config file."""
    path: Path | None = None
    """The weights file; required for open_clip, optional for tiny_lseg (None = shipped)."""

    def __post_init__(self) -> None:
        spec = self.to_string()
        if self.family == TINY_LSEG:
            if self.architecture is not None:
                raise ValueError(f"language spec {spec!r}: tiny_lseg takes no architecture")
        elif self.family == OPEN_CLIP:
            if not self.architecture or self.path is None:
                raise ValueError(
                    f"language spec {spec!r}: open_clip needs an architecture and a weights "
                    "file (open_clip:ARCH:PATH)"
                )
            vision = _open_clip_config(self.architecture, spec).get("vision_cfg", {})
            # Dense features come from the last block of a class-token ViT (clip.py).
            if (
                not isinstance(vision.get("layers"), int)
                or vision.get("timm_model_name")
                or vision.get("attentional_pool")
            ):
                raise ValueError(
                    f"language spec {spec!r}: dense CLIP features need a ViT image tower; "
                    f"{self.architecture} has another (ResNet, timm or attention-pooled)"
                )
        else:
            raise ValueError(
                f"language spec {spec!r}: unknown teacher {self.family!r}; expected "
                f"{LANGUAGE_SPEC_FORMS}"
            )
        _check_path(self.path, spec, "language")

    @classmethod
    def parse(cls, text: str) -> LanguageSpec:
        """``tiny_lseg``, ``tiny_lseg:PATH`` or ``open_clip:ARCH:PATH``; ValueError otherwise."""
        text = _check_text(text, "language")
        family, sep, rest = text.partition(":")
        family = family.strip()
        if family == OPEN_CLIP:
            architecture, sep2, path = rest.partition(":")
            if not architecture.strip() or not sep2 or not path.strip():
                raise ValueError(
                    f"language spec {text!r}: open_clip needs an architecture and a weights file "
                    "(open_clip:ARCH:PATH)"
                )
            return cls(family, architecture.strip(), Path(path.strip()))
        if sep and not rest.strip():
            raise ValueError(f"language spec {text!r} has an empty path")
        return cls(family, None, Path(rest.strip()) if sep else None)

    def to_string(self) -> str:
        """The spec string ``parse`` reads back."""
        parts = [self.family]
        if self.architecture is not None:
            parts.append(self.architecture)
        if self.path is not None:
            parts.append(str(self.path))
        return ":".join(parts)

    @property
    def kind(self) -> str:
        """``tiny_lseg`` or ``open_clip:<architecture>`` (a config file by its stem)."""
        if self.family == TINY_LSEG or self.architecture is None:
            return self.family
        arch = self.architecture
        return f"{OPEN_CLIP}:{Path(arch).stem if arch.endswith('.json') else arch}"

    @property
    def feature_dim(self) -> int:
        """Width of the dense features and text embeddings (CLIP's joint space: ``embed_dim``)."""
        if self.family == TINY_LSEG or self.architecture is None:
            return MINILM_DIM
        return int(_open_clip_config(self.architecture, self.to_string())["embed_dim"])

    def record(self) -> dict[str, Any]:
        """This teacher in a model checkpoint (see the module docstring)."""
        return {"spec": self.to_string(), "kind": self.kind, "feature_dim": self.feature_dim}


def as_sam_spec(spec: SamSpec | str) -> SamSpec:
    """A SamSpec from itself or its string."""
    return spec if isinstance(spec, SamSpec) else SamSpec.parse(spec)


def as_language_spec(spec: LanguageSpec | str) -> LanguageSpec:
    """A LanguageSpec from itself or its string."""
    return spec if isinstance(spec, LanguageSpec) else LanguageSpec.parse(spec)


MINILM = "minilm"
TEXT_ENCODER_FORMS = "auto, minilm (with tiny_lseg) or open_clip:ARCH:PATH (the language spec)"


def resolve_text_encoder(text_encoder: str, language: LanguageSpec | str) -> str:
    """The name of the text encoder ``text_encoder`` selects for the ``language`` teacher:
    ``minilm`` for tiny_lseg, the language kind (``open_clip:ViT-B-16``) for open_clip.

    ``auto`` is the teacher's own; ``minilm`` is valid with tiny_lseg only; an
    ``open_clip:ARCH:PATH`` string must be the language spec itself (CLIP's text tower aligns
    with its own image tower only). Anything else is a one-line ValueError saying why.
    """
    language = as_language_spec(language)
    own = MINILM if language.family == TINY_LSEG else language.kind
    text = text_encoder.strip() if isinstance(text_encoder, str) else text_encoder
    if text == "auto":
        return own
    if text == MINILM:
        if language.family != TINY_LSEG:
            raise ValueError(
                f"text_encoder 'minilm' does not match the language teacher {language.kind}: its "
                "features align with CLIP's text tower; use 'auto'"
            )
        return own
    if not isinstance(text, str) or not text.startswith(f"{OPEN_CLIP}:"):
        raise ValueError(f"text_encoder must be {TEXT_ENCODER_FORMS}; got {text_encoder!r}")
    try:
        wanted = LanguageSpec.parse(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"text_encoder: {exc}") from None
    if wanted != language:
        raise ValueError(
            f"text_encoder {text!r} does not match the language teacher "
            f"{language.to_string()!r}: the text encoder must be the language teacher's own "
            "(use 'auto')"
        )
    return own


# ----------------------------------------------------------------------------- loading


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        state = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{what} weights file {path} {state}")


def load_sam_teacher(spec: SamSpec | str, device: str | torch.device = "cpu") -> SamTeacher:
    """The SAM teacher ``spec`` names, in eval mode on ``device``.

    Raises FileNotFoundError (missing file) or ValueError (corrupt file; weights of another
    architecture, e.g. vit_l weights given as vit_b), one line naming the file.
    """
    spec = as_sam_spec(spec)
    if spec.path is not None:
        _require_file(spec.path, f"SAM ({spec.architecture})")
    if spec.architecture == TINY_SAM:
        teacher = load_tiny_sam(spec.path)
    else:
        teacher = load_sam(spec.path, spec.architecture)
    return teacher.to(device).eval()


@dataclass
class LoadedLanguageTeacher:
    """A language teacher and the text encoder whose embeddings its features align with."""

    teacher: Teacher
    """Images -> unit-norm dense features (``DenseClipTeacher`` or ``LanguageTeacher``)."""
    text_encoder: TextEncoder
    """Strings -> unit vectors of the same width (CLIP's text tower, or MiniLM for tiny_lseg)."""


def load_language_teacher(
    spec: LanguageSpec | str, device: str | torch.device = "cpu"
) -> LoadedLanguageTeacher:
    """The language teacher ``spec`` names (eval mode, on ``device``) and its text encoder.

    Raises FileNotFoundError (missing file) or ValueError (corrupt file, weights of another
    architecture), one line naming the file. The MiniLM text encoder of tiny_lseg stays on the
    CPU (its ``encode`` returns CPU tensors).
    """
    spec = as_language_spec(spec)
    if spec.path is not None:
        _require_file(spec.path, spec.kind)
    if spec.family == TINY_LSEG:
        teacher = load_tiny_lseg(spec.path)
    elif spec.architecture is not None and spec.architecture.endswith(".json"):
        teacher = load_clip(spec.path, config_file=spec.architecture)
    else:
        teacher = load_clip(spec.path, model_name=str(spec.architecture))
    teacher = teacher.to(device).eval()
    if teacher.feature_dim != spec.feature_dim:
        raise ValueError(
            f"language teacher {spec.to_string()!r} gives {teacher.feature_dim}-d features, "
            f"expected {spec.feature_dim}"
        )
    return LoadedLanguageTeacher(teacher, teacher.text_encoder)


# ----------------------------------------------------------------------------- checkpoints


def spec_to_checkpoint_dict(sam: SamSpec | str, language: LanguageSpec | str) -> dict[str, Any]:
    """The teacher record a model checkpoint stores (e.g. in its ``meta["teachers"]``)::

    {"sam": {"spec": "vit_b:/w/sam_vit_b.pth", "kind": "vit_b", "feature_dim": 256},
     "language": {"spec": "open_clip:ViT-B-16:/w/clip.bin", "kind": "open_clip:ViT-B-16",
                  "feature_dim": 512}}
    """
    return {"sam": as_sam_spec(sam).record(), "language": as_language_spec(language).record()}


def _read_record(record: object, role: str, source: str) -> tuple[str, int, str]:
    if not isinstance(record, Mapping):
        raise ValueError(f"{source} has no valid record of its {role} teacher")
    kind, dim, spec = record.get("kind"), record.get("feature_dim"), record.get("spec", "?")
    if not isinstance(kind, str) or not isinstance(dim, int) or isinstance(dim, bool):
        raise ValueError(
            f"{source}: the record of its {role} teacher needs a string 'kind' and an integer "
            f"'feature_dim', got {dict(record)!r}"
        )
    return kind, dim, str(spec)


def check_checkpoint_teachers(
    recorded: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    source: str = "model checkpoint",
) -> None:
    """ValueError unless the teachers ``recorded`` in a checkpoint are the ``expected`` ones.

    Both are ``spec_to_checkpoint_dict`` records; they match when each teacher's kind and
    feature dimension agree (paths may differ). The message names every teacher that differs,
    e.g. "model checkpoint was distilled from language teacher open_clip:ViT-B-16 (512-d, spec
    ...) but the language teacher given is tiny_lseg (384-d, spec 'tiny_lseg')". ``recorded``
    None (a checkpoint written before teachers were recorded) is an error too.
    """
    if not isinstance(recorded, Mapping):
        raise ValueError(f"{source} does not record the teachers it was distilled from")
    problems = []
    for role in TEACHER_ROLES:
        kind, dim, spec = _read_record(recorded.get(role), role, source)
        want_kind, want_dim, want_spec = _read_record(
            expected.get(role), role, "the expected teachers"
        )
        if (kind, dim) != (want_kind, want_dim):
            problems.append(
                f"{role} teacher {kind} ({dim}-d, spec {spec!r}) but the {role} teacher given "
                f"is {want_kind} ({want_dim}-d, spec {want_spec!r})"
            )
    if problems:
        raise ValueError(f"{source} was distilled from " + "; and from ".join(problems))


TEACHERS_META_KEY = "teachers"
"""The key of the teacher record in a model checkpoint's ``meta``."""


def recorded_teachers(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The teacher record of a model checkpoint's ``meta``; None for a model distilled from no
    teacher (stage 0).

    Checkpoints written before the trainer recorded teachers have no ``teachers`` key: a
    stage-0 one (``meta["stage"] == 0``) is taken as distilled from none, any other (the
    bundled models) as distilled from the shipped pair, ``tiny`` / ``tiny_lseg``.
    """
    if TEACHERS_META_KEY in meta:
        record = meta[TEACHERS_META_KEY]
        if record is None:
            return None
        if not isinstance(record, Mapping):
            raise ValueError(
                f"the teacher record of a model checkpoint is not a mapping: {record!r}"
            )
        return dict(record)
    if meta.get("stage") == 0:
        return None
    return spec_to_checkpoint_dict(TINY_SAM, TINY_LSEG)


def check_model_teachers(
    meta: Mapping[str, Any],
    sam: SamSpec | str,
    language: LanguageSpec | str,
    source: str = "model checkpoint",
) -> None:
    """ValueError (naming each teacher that differs) unless the model whose checkpoint ``meta``
    this is was distilled from ``sam`` and ``language`` (``recorded_teachers``); a model
    distilled from no teacher fits any pair."""
    recorded = recorded_teachers(meta)
    if recorded is not None:
        check_checkpoint_teachers(recorded, spec_to_checkpoint_dict(sam, language), source)


def specs_from_checkpoint_dict(recorded: Mapping[str, Any]) -> tuple[SamSpec, LanguageSpec]:
    """The teacher specs a checkpoint records (their paths are those of the training machine)."""
    specs = []
    for role in TEACHER_ROLES:
        record = recorded.get(role) if isinstance(recorded, Mapping) else None
        if not isinstance(record, Mapping) or not isinstance(record.get("spec"), str):
            raise ValueError(f"checkpoint teacher record has no {role} spec string")
        specs.append(record["spec"])
    return SamSpec.parse(specs[0]), LanguageSpec.parse(specs[1])


__all__ = [
    "LanguageSpec",
    "LoadedLanguageTeacher",
    "SamSpec",
    "as_language_spec",
    "as_sam_spec",
    "check_checkpoint_teachers",
    "check_model_teachers",
    "load_language_teacher",
    "load_sam_teacher",
    "recorded_teachers",
    "resolve_text_encoder",
    "spec_to_checkpoint_dict",
    "specs_from_checkpoint_dict",
]
