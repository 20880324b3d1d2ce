"""What every teacher offers: protocols, shared image pre-processing and safe weight loading.

A *teacher* maps images to dense feature maps (the distillation targets); a *text encoder* maps
strings to unit vectors in the space of a language teacher's features. The concrete teachers
(``sam.py``, ``lseg.py``, ``clip.py``) implement these protocols; downstream code (the model,
the trainer, the pipeline) depends only on them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor


@runtime_checkable
class Teacher(Protocol):
    """Images -> dense features."""

    feature_dim: int
    """Channels of the feature maps returned by ``embed``."""

    def embed(self, images: Float[Tensor, "n 3 h w"]) -> Float[Tensor, "n c hf wf"]:
        """Feature maps of RGB images in [0, 1] (the grid size depends on the teacher)."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """Strings -> unit vectors (rows) in the language teacher's feature space."""

    dim: int
    """Width of the returned vectors."""

    def encode(self, texts: Sequence[str]) -> Float[Tensor, "k d"]:
        """One unit-norm row per text."""
        ...


def check_images(images: Tensor, name: str = "images") -> None:
    """Raise TypeError/ValueError unless ``images`` is a float (n, 3, h, w) tensor."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3, h, w), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got {images.dtype}")


def check_texts(texts: Sequence[str]) -> list[str]:
    """A non-empty list of non-empty strings, or TypeError/ValueError."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    out = list(texts)
    if not out:
        raise ValueError("texts must not be empty")
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"texts must be strings, got {type(t).__name__}")
        if not t.strip():
            raise ValueError("texts must not contain empty strings")
    return out


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Forbid Hugging Face hub downloads inside the block (restores the environment after)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load_failure(exc: Exception) -> str:
    """One line on why torch could not read a file (its own messages run over many lines and,
    for weights-only unpickling, open with advice that does not apply to a garbage file)."""
    text = " ".join(str(exc).split())
    unpickler = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s*Check the documentation|$)", text)
    if unpickler:
        return f"unpickling failed ({unpickler.group(1).strip() or type(exc).__name__})"
    return f"{type(exc).__name__}: {text.split('. ')[0]}"


def read_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """Read a plain weights file (a state dict, possibly wrapped in {"state_dict"|"model": ...}).

    This is the format of the released SAM and open_clip checkpoints. Raises FileNotFoundError
    for a missing file and ValueError for an unreadable one, naming ``what`` was being loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            payload = load_file(str(path), device="cpu")
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or garbage files raise many exception types
        raise ValueError(
            f"{what} checkpoint {path} is corrupt or not a weights file: {_load_failure(exc)}"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
    if not isinstance(payload, dict) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise ValueError(f"{what} checkpoint {path} does not hold a state dict of tensors")
    # Checkpoints saved from DataParallel / DDP prefix every key with "module.".
    if payload and all(k.startswith("module.") for k in payload):
        payload = {k[len("module.") :]: v for k, v in payload.items()}
    return payload
