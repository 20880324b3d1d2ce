"""Checkpoints: one documented, versioned format for every trainable thing in the package.

A checkpoint is a ``torch.save``d dict::

    {
        "format": "semanticsplat-ckpt",     # identifies our files
        "version": 1,                        # CHECKPOINT_VERSION; bumped on layout changes
        "kind": "semanticsplat_model",       # what the weights are (e.g. "tiny_sam_teacher")
        "config": {...},                     # the model config as plain dicts/lists/numbers
        "state_dict": {...},                 # module.state_dict(), tensors on the CPU
        "meta": {...},                       # free-form: step, stage, metrics, package version
    }

``load_checkpoint`` checks every field and raises ValueError naming what is wrong (missing or
corrupt file, another format, kind or version); ``load_state_dict_strict`` names the missing,
unexpected and wrongly shaped keys when weights do not fit a module. ``dataclass_from_dict``
rebuilds (nested) config dataclasses from the stored dicts, rejecting unknown keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from semanticsplat_ros import __version__

CHECKPOINT_FORMAT = "semanticsplat-ckpt"
CHECKPOINT_VERSION = 1

T = TypeVar("T")


@dataclass
class Checkpoint:
    """A loaded checkpoint (see the module docstring for the on-disk layout)."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = CHECKPOINT_VERSION


def save_checkpoint(
    path: str | Path,
    model: nn.Module | dict[str, torch.Tensor],
    config: Any,
    extra: dict[str, Any] | None = None,
    kind: str = "semanticsplat_model",
) -> Path:
    """Write ``model``'s weights with its ``config`` (a dataclass or dict) atomically.

    ``extra`` goes to ``meta`` (e.g. step, optimiser state for resuming). Returns the path.
    """
    path = Path(path)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dataclass instance or a dict, got {type(config)}")
    state = model.state_dict() if isinstance(model, nn.Module) else model

    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": kind,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in state.items()},
        "meta": {"package_version": __version__, **(extra or {})},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(
    path: str | Path, expected_kind: str | None = "semanticsplat_model"
) -> Checkpoint:
    """Read and validate a checkpoint written by ``save_checkpoint`` (tensors on the CPU).

    Raises ValueError if the file is missing, unreadable, not ours, of another version, or
    (unless ``expected_kind`` is None) of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise ValueError(f"checkpoint {path} is corrupt or not a torch file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a semanticsplat checkpoint (no format {CHECKPOINT_FORMAT!r})"
        )
    version = payload.get("version")
    if version != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {version}; this build reads version "
            f"{CHECKPOINT_VERSION}"
        )
    kind = payload.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise ValueError(f"checkpoint {path} holds a {kind!r}, expected a {expected_kind!r}")
    for key, typ in (("config", dict), ("state_dict", dict), ("meta", dict)):
        if not isinstance(payload.get(key), typ):
            raise ValueError(f"checkpoint {path} has no valid {key!r} entry")
    return Checkpoint(
        kind=kind,
        config=payload["config"],
        state_dict=payload["state_dict"],
        meta=payload["meta"],
        version=version,
    )


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load weights, raising ValueError that names missing, unexpected and mis-shaped keys."""
    check_state_dict_fits(module, state_dict)
    module.load_state_dict(state_dict, strict=True)


def check_state_dict_fits(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """``load_state_dict_strict``'s check alone (loads nothing): ValueError naming missing,
    unexpected and mis-shaped keys. ``module`` may live on the meta device (no memory)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise ValueError("checkpoint weights do not match the model; " + "; ".join(parts))


def dataclass_from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys raise ValueError.

    Nested dataclass fields are rebuilt recursively; lists become tuples where the field is a
    tuple. Missing keys take the field defaults.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{path or cls.__name__} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {unknown} at {path or '<root>'}; known: {sorted(names)}"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        target = _dataclass_in(hint)
        if target is not None and isinstance(value, dict):
            value = dataclass_from_dict(target, value, f"{path}.{key}" if path else key)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None
