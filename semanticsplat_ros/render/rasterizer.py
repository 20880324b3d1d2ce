"""``render()``: validate inputs, pick a backend, return a RenderOutput.

Backends implement the :class:`Rasterizer` protocol and are registered by name:

* ``"torch"``  — :class:`~semanticsplat_ros.render.torch_backend.TorchTileRasterizer`, any device.
* ``"gsplat"`` — :class:`~semanticsplat_ros.render.gsplat_backend.GsplatRasterizer`, CUDA only.
* ``"dense"``  — every Gaussian against every pixel; tests and benchmarks only.
* ``"auto"``   — gsplat when the tensors are on CUDA and gsplat's rasterizer works, else torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.geometry.cameras import check_intrinsics, check_pose
from semanticsplat_ros.render.dense import render_dense
from semanticsplat_ros.render.gsplat_backend import GsplatRasterizer, gsplat_cuda_available
from semanticsplat_ros.render.torch_backend import TorchTileRasterizer
from semanticsplat_ros.render.types import Gaussians, RenderOutput


@runtime_checkable
class Rasterizer(Protocol):
    """A backend: renders validated inputs; ``background`` is already (b, v, 3)."""

    name: str

    def __call__(
        self,
        gaussians: Gaussians,
        w2c: Float[Tensor, "b v 4 4"],
        K: Float[Tensor, "b v 3 3"],
        width: int,
        height: int,
        *,
        background: Float[Tensor, "b v 3"],
        near: float,
        far: float,
    ) -> RenderOutput: ...


class DenseRasterizer:
    """Adapter exposing :func:`render_dense` as a :class:`Rasterizer`."""

    name = "dense"

    def __call__(
        self,
        gaussians: Gaussians,
        w2c: Float[Tensor, "b v 4 4"],
        K: Float[Tensor, "b v 3 3"],
        width: int,
        height: int,
        *,
        background: Float[Tensor, "b v 3"],
        near: float,
        far: float,
    ) -> RenderOutput:
        return render_dense(
            gaussians, w2c, K, width, height, background=background, near=near, far=far
        )


_REGISTRY: dict[str, Callable[[], Rasterizer]] = {
    "torch": TorchTileRasterizer,
    "gsplat": GsplatRasterizer,
    "dense": DenseRasterizer,
}
_INSTANCES: dict[str, Rasterizer] = {}


def register_rasterizer(name: str, factory: Callable[[], Rasterizer]) -> None:
    """Make ``factory()`` available as ``render(..., backend=name)`` (replaces any existing)."""
    if not name or name == "auto":
        raise ValueError(f"backend name must be non-empty and not 'auto', got {name!r}")
    _REGISTRY[name] = factory
    _INSTANCES.pop(name, None)


def available_rasterizers() -> list[str]:
    """Registered backend names (``"auto"`` is a choice among them, not a backend)."""
    return sorted(_REGISTRY)


def get_rasterizer(name: str, device: torch.device | str | None = None) -> Rasterizer:
    """The backend ``name``; ``"auto"`` resolves to gsplat on working CUDA, else torch."""
    if name == "auto":
        on_cuda = device is not None and torch.device(device).type == "cuda"
        name = "gsplat" if on_cuda and gsplat_cuda_available() else "torch"
    if name not in _REGISTRY:
        raise ValueError(
            f"backend must be 'auto' or one of {available_rasterizers()}, got {name!r}"
        )
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def _check_tensor(t: object, name: str, shape: tuple[int | None, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    ok = t.ndim == len(shape) and all(
        e is None or s == e for s, e in zip(t.shape, shape, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    return t


def check_render_inputs(
    gaussians: Gaussians,
    w2c: Tensor,
    K: Tensor,
    width: int,
    height: int,
    background: Tensor | None,
    near: float,
    far: float,
) -> Tensor:
    """Raise TypeError/ValueError naming the bad argument; return the background as (b, v, 3)."""
    if not isinstance(gaussians, Gaussians):
        raise TypeError(f"gaussians must be a Gaussians, got {type(gaussians).__name__}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not (math.isfinite(near) and math.isfinite(far) and 0 < near < far):
        raise ValueError(f"need 0 < near < far (finite), got near={near}, far={far}")
    means = _check_tensor(gaussians.means, "gaussians.means", (None, None, 3))
    b, n = means.shape[:2]
    _check_tensor(gaussians.quats, "gaussians.quats", (b, n, 4))
    _check_tensor(gaussians.scales, "gaussians.scales", (b, n, 3))
    _check_tensor(gaussians.opacities, "gaussians.opacities", (b, n))
    _check_tensor(gaussians.colors, "gaussians.colors", (b, n, 3))
    _check_tensor(gaussians.features, "gaussians.features", (b, n, None))
    for name in ("means", "quats", "scales", "opacities", "colors", "features"):
        t = getattr(gaussians, name)
        if t.device != means.device or t.dtype != means.dtype:
            raise ValueError(
                f"gaussians.{name} is {t.dtype} on {t.device}, "
                f"but gaussians.means is {means.dtype} on {means.device}"
            )
        if not torch.isfinite(t).all():
            raise ValueError(f"gaussians.{name} contains NaN or Inf")
    if (gaussians.scales <= 0).any():
        raise ValueError("gaussians.scales must be > 0")
    if (gaussians.quats.norm(dim=-1) == 0).any():
        raise ValueError("gaussians.quats must be non-zero")
    if ((gaussians.opacities < 0) | (gaussians.opacities > 1)).any():
        raise ValueError("gaussians.opacities must lie in [0, 1]")
    if not isinstance(w2c, Tensor) or w2c.ndim != 4 or w2c.shape[0] != b:
        shape = tuple(w2c.shape) if isinstance(w2c, Tensor) else type(w2c).__name__
        raise ValueError(f"w2c must have shape ({b}, v, 4, 4) for batch size {b}, got {shape}")
    check_pose(w2c, "w2c")
    v = w2c.shape[1]
    if not isinstance(K, Tensor) or K.ndim != 4 or K.shape[:2] != (b, v):
        shape = tuple(K.shape) if isinstance(K, Tensor) else type(K).__name__
        raise ValueError(f"K must have shape ({b}, {v}, 3, 3) to match w2c, got {shape}")
    check_intrinsics(K, "K")
    for name, t in (("w2c", w2c), ("K", K)):
        if t.device != means.device:
            raise ValueError(f"{name} is on {t.device} but gaussians are on {means.device}")
    if background is None:
        return means.new_zeros(b, v, 3)
    if not isinstance(background, Tensor):
        raise TypeError(f"background must be a torch.Tensor, got {type(background).__name__}")
    if background.shape not in ((3,), (b, v, 3)):
        raise ValueError(
            f"background must have shape (3,) or ({b}, {v}, 3), got {tuple(background.shape)}"
        )
    if not torch.isfinite(background).all():
        raise ValueError("background contains NaN or Inf")
    return background.to(device=means.device, dtype=means.dtype).expand(b, v, 3)


def render(
    gaussians: Gaussians,
    w2c: Float[Tensor, "b v 4 4"],
    K: Float[Tensor, "b v 3 3"],
    width: int,
    height: int,
    *,
    background: Float[Tensor, " 3"] | Float[Tensor, "b v 3"] | None = None,
    near: float = 0.01,
    far: float = 1000.0,
    backend: str = "auto",
) -> RenderOutput:
    """Render each batch element's Gaussians into each of its v views.

    Args:
        gaussians: batch of b sets of n Gaussians in the world frame (see ``Gaussians``).
        w2c: (b, v, 4, 4) world-to-camera poses, OpenCV camera frame (x right, y down, z fwd).
        K: (b, v, 3, 3) intrinsics in pixels; pixel (i, j) has its centre at (j + .5, i + .5).
        width, height: image size in pixels.
        background: (3,) or (b, v, 3) colour behind the Gaussians (default black); features
            get no background.
        near, far: Gaussians whose camera-frame z is outside (near, far) metres are culled.
        backend: "auto" | "torch" | "gsplat" | "dense" (or any registered name).

    Returns:
        RenderOutput with color (b, v, 3, h, w), features (b, v, f, h, w), depth
        (b, v, 1, h, w) = Σ w z / Σ w (0 where alpha is 0), alpha (b, v, 1, h, w) and
        tile_overflow (b, v).

    Rasterization runs at full precision: under mixed-precision training (``torch.autocast``)
    the Gaussians' float16 / bfloat16 fields are cast to float32 and autocast is off inside.
    """
    if isinstance(gaussians, Gaussians):  # anything else: check_render_inputs says so
        gaussians = Gaussians(*(_full_precision(t) for t in gaussians._fields()))
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, got {type(backend).__name__}")
    if backend != "auto" and backend not in _REGISTRY:
        raise ValueError(
            f"backend must be 'auto' or one of {available_rasterizers()}, got {backend!r}"
        )
    bg = check_render_inputs(gaussians, w2c, K, width, height, background, near, far)
    rasterizer = get_rasterizer(backend, gaussians.means.device)
    dtype = gaussians.means.dtype
    w2c, K = w2c.to(dtype), K.to(dtype)
    with torch.autocast(gaussians.means.device.type, enabled=False):
        return rasterizer(gaussians, w2c, K, width, height, background=bg, near=near, far=far)


def _full_precision(t: Tensor) -> Tensor:
    """``t`` in float32 if it is float16 / bfloat16 (autocast's output), else unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
