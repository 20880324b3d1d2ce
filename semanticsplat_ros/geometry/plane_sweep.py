"""Depth candidates uniform in inverse depth, and plane-sweep warps for cost volumes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.geometry.projection import (
    pixel_centers,
    project,
    transform_points,
    unproject,
)


def linear_steps(
    start: float, end: float, num: int, device=None, dtype=torch.float32
) -> Float[Tensor, " num"]:
    """``num`` values evenly spaced from ``start`` to ``end`` (both included), like
    ``torch.linspace``, but built from an integer range so that an ONNX export keeps ``dtype``
    (the exporter's linspace runs in float64 and promotes everything downstream)."""
    if num < 2:
        raise ValueError(f"num must be >= 2, got {num}")
    index = torch.arange(num, device=device).to(dtype)
    return start + index * ((end - start) / (num - 1))


def inverse_depth_candidates(
    near: float | Tensor, far: float | Tensor, num: int, device=None, dtype=torch.float32
) -> Float[Tensor, "*batch d"]:
    """``num`` depths uniform in inverse depth; index 0 is ``near``, index num-1 is ``far``.

    ``near``/``far`` may be floats or tensors of any (matching) batch shape, in metres.
    """
    if num < 2:
        raise ValueError(f"num must be >= 2, got {num}")
    near_t = torch.as_tensor(near, device=device, dtype=dtype)
    far_t = torch.as_tensor(far, device=near_t.device, dtype=dtype)
    if not torch.compiler.is_exporting():  # a graph export has no data-dependent branches
        if not torch.isfinite(near_t).all() or not torch.isfinite(far_t).all():
            raise ValueError("near and far must be finite")
        if (near_t <= 0).any() or (far_t <= near_t).any():
            raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    steps = linear_steps(0.0, 1.0, num, device=near_t.device, dtype=dtype)
    inv = (1.0 / near_t).unsqueeze(-1) + steps * (1.0 / far_t - 1.0 / near_t).unsqueeze(-1)
    return 1.0 / inv


def plane_sweep_grid(
    K_ref: Float[Tensor, "n 3 3"],
    K_src: Float[Tensor, "n 3 3"],
    ref_to_src: Float[Tensor, "n 4 4"],
    depths: Float[Tensor, "n d"],
    height: int,
    width: int,
) -> tuple[Float[Tensor, "n d h w 2"], Float[Tensor, "n d h w"]]:
    """Where each reference pixel, placed at each candidate depth, lands in the source image.

    ``K_ref`` and ``K_src`` are the intrinsics at the resolution of the maps being warped (both
    maps ``height``×``width``). Returns the grid in ``grid_sample`` coordinates
    (``align_corners=False``, matching pixel centres at +0.5) and a mask of candidates that are in
    front of the source camera.
    """
    n, d = depths.shape
    per_pixel = depths[:, :, None, None].expand(n, d, height, width)
    return plane_sweep_grid_per_pixel(K_ref, K_src, ref_to_src, per_pixel, height, width)


def warp_to_reference(
    src: Float[Tensor, "n c h w"], grid: Float[Tensor, "n d h w 2"]
) -> Float[Tensor, "n c d h w"]:
    """Sample source maps at plane-sweep positions (bilinear, zeros outside the image)."""
    n, d, h, w, _ = grid.shape
    out = F.grid_sample(
        src,
        grid.reshape(n, d * h, w, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out.reshape(n, src.shape[1], d, h, w)


def plane_sweep_grid_per_pixel(
    K_ref: Float[Tensor, "n 3 3"],
    K_src: Float[Tensor, "n 3 3"],
    ref_to_src: Float[Tensor, "n 4 4"],
    depths: Float[Tensor, "n d h w"],
    height: int,
    width: int,
) -> tuple[Float[Tensor, "n d h w 2"], Float[Tensor, "n d h w"]]:
    """``plane_sweep_grid`` with a depth per candidate *and pixel* (cascade cost volumes).

    ``depths[k, c, i, j]`` is candidate c of reference pixel (i, j), z in metres; the rest is as
    in ``plane_sweep_grid`` (intrinsics at the ``height``×``width`` resolution of the maps, grid in
    ``grid_sample`` coordinates with ``align_corners=False``, mask of candidates in front of the
    source camera). With every pixel at the same depths it equals ``plane_sweep_grid``.
    """
    if depths.ndim != 4 or tuple(depths.shape[2:]) != (height, width):
        raise ValueError(
            f"depths must be (n, d, {height}, {width}) for a {height}x{width} map, "
            f"got {tuple(depths.shape)}"
        )
    n, d = depths.shape[:2]
    for name, t, shape in (
        ("K_ref", K_ref, (n, 3, 3)),
        ("K_src", K_src, (n, 3, 3)),
        ("ref_to_src", ref_to_src, (n, 4, 4)),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    uv = pixel_centers(height, width, device=depths.device, dtype=depths.dtype).reshape(1, 1, -1, 2)
    uv = uv.expand(n, d, height * width, 2)
    z = depths.reshape(n, d, height * width)
    pts_ref = unproject(uv, z, K_ref[:, None])
    pts_src = transform_points(ref_to_src[:, None], pts_ref)
    uv_src, z_src = project(pts_src, K_src[:, None])
    scale = torch.tensor([2.0 / width, 2.0 / height], device=uv.device, dtype=uv.dtype)
    grid = uv_src * scale - 1.0
    valid = z_src > 1e-6
    # Points behind the camera are sent far outside so grid_sample returns zeros there.
    grid = torch.where(valid.unsqueeze(-1), grid, torch.full_like(grid, -2.0))
    return grid.reshape(n, d, height, width, 2), valid.reshape(n, d, height, width).to(depths.dtype)
