"""Torch devices by name: one rule for every command, config and benchmark.

``auto`` is CUDA when available, else the CPU; ``cpu``, ``cuda`` and ``cuda:<index>`` name a
device. Asking for CUDA on a machine without it is a ValueError, not a silent CPU fallback.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

import torch

Device = Literal["auto", "cpu", "cuda"]
"""Device names; ``cuda:<index>`` is accepted too."""
DEVICES: tuple[str, ...] = get_args(Device)

_CUDA_INDEX = re.compile(r"cuda:\d+")


def check_device_name(device: object) -> None:
    """ValueError unless ``device`` is one of ``DEVICES`` or ``cuda:<index>``."""
    if isinstance(device, str) and (device in DEVICES or _CUDA_INDEX.fullmatch(device)):
        return
    choices = ", ".join(DEVICES)
    raise ValueError(f"device must be one of {choices} or cuda:<index>; got {device!r}")


def resolve_device(device: str) -> torch.device:
    """The torch device ``device`` names (see the module docstring)."""
    check_device_name(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)
