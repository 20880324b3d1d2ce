"""Poses (c2w / w2c, 4×4) and pixel intrinsics K (3×3): validation, inversion, resizing."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def check_pose(pose: Tensor, name: str = "pose", atol: float = 1e-3) -> None:
    """Raise ValueError unless ``pose`` is a finite rigid 4×4 transform (..., 4, 4).

    Checks the shape, finiteness, the bottom row (0, 0, 0, 1) and that the rotation block is
    orthonormal with determinant +1 within ``atol``.
    """
    if not isinstance(pose, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pose).__name__}")
    if pose.ndim < 2 or pose.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (..., 4, 4), got {tuple(pose.shape)}")
    if not torch.isfinite(pose).all():
        raise ValueError(f"{name} contains NaN or Inf")
    p = pose.detach().to(torch.float64)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=p.dtype, device=p.device)
    if (p[..., 3, :] - bottom).abs().max() > atol:
        raise ValueError(f"{name} bottom row must be (0, 0, 0, 1)")
    R = p[..., :3, :3]
    eye = torch.eye(3, dtype=p.dtype, device=p.device)
    if (R @ R.transpose(-1, -2) - eye).abs().max() > atol * 10:
        raise ValueError(f"{name} rotation block is not orthonormal")
    if (torch.linalg.det(R) - 1.0).abs().max() > atol * 10:
        raise ValueError(f"{name} rotation block has determinant != +1 (reflection or scale)")


def check_intrinsics(K: Tensor, name: str = "K") -> None:
    """Raise ValueError unless ``K`` is (..., 3, 3), finite, with positive focal lengths."""
    if not isinstance(K, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(K).__name__}")
    if K.ndim < 2 or K.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {tuple(K.shape)}")
    if not torch.isfinite(K).all():
        raise ValueError(f"{name} contains NaN or Inf")
    if (K[..., 0, 0] <= 0).any() or (K[..., 1, 1] <= 0).any():
        raise ValueError(f"{name} must have positive focal lengths fx, fy")
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)
    if (K[..., 2, :] - bottom).abs().max() > 1e-6:
        raise ValueError(f"{name} last row must be (0, 0, 1)")


def invert_pose(pose: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Invert rigid transforms exactly (R^T, -R^T t); c2w <-> w2c."""
    R = pose[..., :3, :3]
    t = pose[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(pose)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def relative_pose(
    c2w_ref: Float[Tensor, "*batch 4 4"], c2w_src: Float[Tensor, "*batch 4 4"]
) -> Float[Tensor, "*batch 4 4"]:
    """Transform from the reference camera frame to the source camera frame (ref -> src)."""
    return invert_pose(c2w_src) @ c2w_ref


def scale_intrinsics(
    K: Float[Tensor, "*batch 3 3"], sx: float, sy: float | None = None
) -> Float[Tensor, "*batch 3 3"]:
    """Intrinsics of the image resized by (sx, sy) (exact with pixel centres at +0.5)."""
    sy = sx if sy is None else sy
    out = K.clone()
    out[..., 0, :] = K[..., 0, :] * sx
    out[..., 1, :] = K[..., 1, :] * sy
    return out
