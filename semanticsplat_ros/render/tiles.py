"""Tile binning and tile-wise alpha compositing with a hand-written backward pass.

Pipeline (all vectorised, no per-Gaussian Python loops):

1. **Binning** (:func:`bin_gaussians`, no gradient). Every valid projected Gaussian is paired with
   the tiles its opacity-aware bounding box overlaps; each pair is then tested exactly: the
   smallest Mahalanobis distance from the mean to the tile's pixel-centre rectangle must still
   give alpha >= 1/255 somewhere in the tile, otherwise the pair is dropped (it would be skipped
   at every pixel anyway, so this changes no pixel). Pairs are sorted by (tile, depth).
2. **Tile cap**. At most ``max_per_tile`` Gaussians are kept per tile, the *nearest* ones.
   Dropped pairs are counted per image (``TilePlan.overflow``); pixels of an overflowing tile
   then miss the farthest Gaussians, which only matters if the kept ones are not already opaque.
3. **Compositing** (:class:`_Composite`). Non-empty tiles are ordered by Gaussian count and
   processed in chunks of at most ``chunk_elements`` (pixel, Gaussian) pairs, each padded only
   to its own largest tile. Per chunk, every pixel's alpha against every Gaussian of its tile is
   one batched matmul: in tile-local coordinates ``log(o) - ½ dᵀ Σ⁻¹ d`` is a bilinear form
   ``φ(pixel) · ψ(Gaussian)`` with 6 terms. Transmittance is a cumulative product; weights @
   values is a bmm. Forward keeps nothing per pair; backward recomputes a chunk at a time, so
   memory is O(chunk) rather than O(pixels × Gaussians per tile) per saved tensor.

The per-pixel rule is gsplat's: alpha = min(0.999, o exp(-σ)), skipped below 1/255, and a pixel
stops before the Gaussian that would take its transmittance to <= 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.render.projection import (
    ALPHA_MAX,
    ALPHA_MIN,
    TRANSMITTANCE_MIN,
    ProjectedGaussians,
)

_SENTINEL_LOG_OPACITY = -1.0e4  # exp() underflows to exactly 0 in float32 and float64


@dataclass
class TileChunk:
    """Tiles composited together, each padded to ``k`` Gaussian slots.

    tiles:   (c,)    global tile index (image * tiles_per_image + row * tiles_x + col).
    rows:    (c, k)  row of each slot in the flattened (b·v·n) projected table; padding slots
             point at the sentinel row b·v·n.
    centers: (c, 2)  pixel coordinates (x, y) of each tile's centre.
    """

    tiles: Int[Tensor, " c"]
    rows: Int[Tensor, "c k"]
    centers: Float[Tensor, "c 2"]


@dataclass
class TilePlan:
    """Result of binning: which Gaussians each tile composites, front to back.

    tile_size: tile edge in pixels.
    tiles_x, tiles_y: tiles per image row / column.
    num_images: b·v.
    chunks: the non-empty tiles, grouped for compositing.
    tile_counts: (num_images·tiles_y·tiles_x,) Gaussians kept per tile.
    overflow: (num_images,) (Gaussian, tile) pairs dropped because their tile held more than
        ``max_per_tile`` Gaussians.
    """

    tile_size: int
    tiles_x: int
    tiles_y: int
    num_images: int
    chunks: list[TileChunk]
    tile_counts: Int[Tensor, " t"]
    overflow: Int[Tensor, " i"]

    @property
    def num_tiles(self) -> int:
        return self.num_images * self.tiles_x * self.tiles_y


def _min_sigma_over_rect(
    dxa: Tensor, dxb: Tensor, dya: Tensor, dyb: Tensor, a: Tensor, b: Tensor, c: Tensor
) -> Tensor:
    """min over d in [dxa, dxb] × [dya, dyb] of ½(a dx² + c dy²) + b dx dy (a, c > 0, PSD)."""

    def sigma(dx: Tensor, dy: Tensor) -> Tensor:
        return 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy

    # The form is convex: the minimum is 0 inside, else on an edge, where it is a 1D quadratic.
    best = None
    for dx in (dxa, dxb):
        dy = torch.minimum(torch.maximum(-b * dx / c, dya), dyb)
        s = sigma(dx, dy)
        best = s if best is None else torch.minimum(best, s)
    for dy in (dya, dyb):
        dx = torch.minimum(torch.maximum(-b * dy / a, dxa), dxb)
        best = torch.minimum(best, sigma(dx, dy))
    inside = (dxa <= 0) & (dxb >= 0) & (dya <= 0) & (dyb >= 0)
    return torch.where(inside, torch.zeros_like(best), best)


@torch.no_grad()
def bin_gaussians(
    proj: ProjectedGaussians,
    width: int,
    height: int,
    tile_size: int,
    max_per_tile: int,
    chunk_elements: int,
) -> TilePlan:
    """Assign projected Gaussians to tiles, nearest first, capped at ``max_per_tile`` per tile."""
    b, v, n = proj.depths.shape
    num_images = b * v
    device = proj.depths.device
    ts = tile_size
    tiles_x = -(-width // ts)
    tiles_y = -(-height // ts)
    tiles_per_image = tiles_x * tiles_y
    num_tiles = num_images * tiles_per_image

    means2d = proj.means2d.detach().reshape(-1, 2)
    conics = proj.conics.detach().reshape(-1, 3)
    depths = proj.depths.detach().reshape(-1)
    opac = proj.opacities.detach().reshape(-1)
    ext = proj.extents.reshape(-1, 2)
    mx, my = means2d.unbind(-1)
    rx, ry = ext.unbind(-1)
    touches_image = (
        proj.valid.reshape(-1)
        & (mx + rx > 0)
        & (mx - rx < width)
        & (my + ry > 0)
        & (my - ry < height)
    )
    cand = touches_image.nonzero().squeeze(1)
    # Depth order first; the stable sort by tile below then keeps it within every tile.
    cand = cand[torch.sort(depths[cand], stable=True).indices]
    cmx, cmy, crx, cry = mx[cand], my[cand], rx[cand], ry[cand]
    x0 = torch.floor((cmx - crx) / ts).clamp(0, tiles_x - 1).long()
    x1 = torch.floor((cmx + crx) / ts).clamp(0, tiles_x - 1).long()
    y0 = torch.floor((cmy - cry) / ts).clamp(0, tiles_y - 1).long()
    y1 = torch.floor((cmy + cry) / ts).clamp(0, tiles_y - 1).long()
    box_w = x1 - x0 + 1
    per_gaussian = box_w * (y1 - y0 + 1)
    pair_src = torch.repeat_interleave(torch.arange(cand.numel(), device=device), per_gaussian)
    starts = torch.cumsum(per_gaussian, 0) - per_gaussian
    local = torch.arange(pair_src.numel(), device=device) - starts[pair_src]
    tx = x0[pair_src] + local % box_w[pair_src]
    ty = y0[pair_src] + local // box_w[pair_src]

    # Exact test against the rectangle of the tile's pixel centres (inside the image).
    dtype = means2d.dtype
    xa = (tx * ts).to(dtype) + 0.5
    xb = torch.clamp((tx * ts + ts).to(dtype), max=float(width)) - 0.5
    ya = (ty * ts).to(dtype) + 0.5
    yb = torch.clamp((ty * ts + ts).to(dtype), max=float(height)) - 0.5
    rows = cand[pair_src]
    pmx, pmy = cmx[pair_src], cmy[pair_src]
    a, bb, c = conics[rows].unbind(-1)
    min_sigma = _min_sigma_over_rect(xa - pmx, xb - pmx, ya - pmy, yb - pmy, a, bb, c)
    # Small slack: pairs kept here but below 1/255 at every pixel are skipped when compositing.
    reaches = min_sigma <= torch.log(opac[rows] / ALPHA_MIN) + 1e-3
    rows = rows[reaches]
    image = rows // n
    tile = image * tiles_per_image + ty[reaches] * tiles_x + tx[reaches]
    tile, order = torch.sort(tile, stable=True)
    rows = rows[order]

    counts = torch.bincount(tile, minlength=num_tiles)
    offsets = torch.cumsum(counts, 0) - counts
    rank = torch.arange(tile.numel(), device=device) - offsets[tile]
    dropped = rank >= max_per_tile
    overflow = torch.bincount(tile[dropped] // tiles_per_image, minlength=num_images)
    kept = counts.clamp(max=max_per_tile)

    sentinel = num_images * n
    order_tiles = torch.sort(kept, descending=True, stable=True).indices
    kept_sorted = kept[order_tiles].tolist()
    pixels = ts * ts
    chunks: list[TileChunk] = []
    i = 0
    while i < num_tiles and kept_sorted[i] > 0:
        k = kept_sorted[i]
        size = max(1, chunk_elements // (pixels * k))
        tiles = order_tiles[i : i + size]
        slot = torch.arange(k, device=device)
        pos = offsets[tiles].unsqueeze(1) + slot
        used = slot < kept[tiles].unsqueeze(1)
        chunk_rows = torch.where(
            used, rows[pos.clamp(max=max(rows.numel() - 1, 0))], torch.full_like(pos, sentinel)
        )
        in_image = tiles % tiles_per_image
        centers = torch.stack(
            [(in_image % tiles_x) * ts + 0.5 * ts, (in_image // tiles_x) * ts + 0.5 * ts], dim=-1
        ).to(dtype)
        chunks.append(TileChunk(tiles, chunk_rows, centers))
        i += tiles.numel()
    return TilePlan(ts, tiles_x, tiles_y, num_images, chunks, kept, overflow)


def _pixel_basis(tile_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """φ(p) = (x², y², xy, x, y, 1) of the pixel centres in tile-local coordinates, (P, 6)."""
    coords = torch.arange(tile_size, device=device, dtype=dtype) + 0.5 - 0.5 * tile_size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x * x, y * y, x * y, x, y, torch.ones_like(x)], dim=-1)


def _psi(params: Tensor, centers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ψ (c, 6, k) such that φ(p) · ψ = log(o) - σ(p); also tile-local means u, v."""
    mx, my, a, b, c, log_o = params[..., :6].unbind(-1)
    u = mx - centers[:, :1]
    v = my - centers[:, 1:]
    psi = torch.stack(
        [
            -0.5 * a,
            -0.5 * c,
            -b,
            a * u + b * v,
            c * v + b * u,
            log_o - (0.5 * a * u * u + 0.5 * c * v * v + b * u * v),
        ],
        dim=1,
    )
    return psi, u, v


def _weights(phi: Tensor, psi: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per (tile, pixel, slot): raw alpha (0 where skipped), alpha, 1 - alpha, T before, weight.

    Weights are 0 for skipped slots and for slots at or past the pixel's termination point.
    """
    # o e^-σ, zeroed below 1/255 (threshold is one fused pass: x if x > t else 0).
    raw = torch.nn.functional.threshold_(torch.matmul(phi, psi).exp_(), ALPHA_MIN, 0.0)
    alpha = raw.clamp_max(ALPHA_MAX)
    one_minus = 1.0 - alpha
    t_incl = torch.cumprod(one_minus, dim=-1)
    t_excl = torch.empty_like(t_incl)
    t_excl[..., 0] = 1.0
    t_excl[..., 1:] = t_incl[..., :-1]
    weights = alpha * t_excl
    weights.masked_fill_(t_incl <= TRANSMITTANCE_MIN, 0.0)
    return raw, alpha, one_minus, t_excl, weights


def _chunk_values(params: Tensor, values: Tensor, rows: Tensor, views: int, n: int) -> Tensor:
    """(c, k, C + 2): the Gaussians' values, their depth z, and 1 (for alpha)."""
    value_rows = (rows // (views * n)) * n + rows % n
    sentinel = rows == params.shape[0] - 1
    value_rows = value_rows.masked_fill(sentinel, 0)
    z = params[rows, 6].unsqueeze(-1)
    return torch.cat([values[value_rows], z, torch.ones_like(z)], dim=-1)


class _Composite(torch.autograd.Function):
    """Composite all tiles. params (G+1, 7) = (mx, my, a, b, c, log o, z) with a sentinel last
    row; values (b·n, C). Returns (tiles, P, C + 2): Σ w·values, Σ w·z, Σ w."""

    @staticmethod
    def forward(ctx, params: Tensor, values: Tensor, plan: TilePlan, views: int, n: int):
        ctx.save_for_backward(params, values)
        ctx.plan, ctx.views, ctx.n = plan, views, n
        pixels = plan.tile_size**2
        out = params.new_zeros(plan.num_tiles, pixels, values.shape[1] + 2)
        phi = _pixel_basis(plan.tile_size, params.device, params.dtype)
        for chunk in plan.chunks:
            psi, _, _ = _psi(params[chunk.rows], chunk.centers)
            weights = _weights(phi, psi)[-1]
            cval = _chunk_values(params, values, chunk.rows, views, n)
            out[chunk.tiles] = torch.bmm(weights, cval)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        params, values = ctx.saved_tensors
        plan, views, n = ctx.plan, ctx.views, ctx.n
        grad_params = torch.zeros_like(params)
        grad_values = torch.zeros_like(values)
        phi = _pixel_basis(plan.tile_size, params.device, params.dtype)
        phi_t = phi.transpose(0, 1).contiguous()
        num_values = values.shape[1]
        for chunk in plan.chunks:
            rows = chunk.rows
            p = params[rows]
            psi, u, v = _psi(p, chunk.centers)
            raw, _, one_minus, t_excl, weights = _weights(phi, psi)
            cval = _chunk_values(params, values, rows, views, n)
            g = grad_out[chunk.tiles]
            gc = torch.bmm(g, cval.transpose(1, 2))  # (c, P, k): g · value of each slot
            suffix = torch.cumsum(weights * gc, dim=-1)
            suffix = suffix[..., -1:] - suffix  # Σ over later slots of w (g · value)
            d_alpha = t_excl.mul_(gc).sub_(suffix.div_(one_minus))
            # d alpha / d logit = alpha, except where alpha was clamped (raw > 0.999), skipped
            # (raw = 0) or past the termination point (weight 0, alpha > 0).
            raw.masked_fill_((raw > ALPHA_MAX) | (weights == 0), 0.0)
            d_logit = d_alpha.mul_(raw)
            d_psi = torch.matmul(phi_t, d_logit)  # (c, 6, k)
            d_cval = torch.bmm(weights.transpose(1, 2), g)  # (c, k, C + 2)

            a, b, c = p[..., 2], p[..., 3], p[..., 4]
            d0, d1, d2, d3, d4, d5 = d_psi.unbind(1)
            d_a = -0.5 * d0 + u * d3 - 0.5 * u * u * d5
            d_c = -0.5 * d1 + v * d4 - 0.5 * v * v * d5
            d_b = -d2 + v * d3 + u * d4 - u * v * d5
            d_u = a * d3 + b * d4 - (a * u + b * v) * d5
            d_v = b * d3 + c * d4 - (c * v + b * u) * d5
            d_params = torch.stack([d_u, d_v, d_a, d_b, d_c, d5, d_cval[..., num_values]], -1)
            grad_params.index_add_(0, rows.reshape(-1), d_params.reshape(-1, 7))
            value_rows = (rows // (views * n)) * n + rows % n
            value_rows = value_rows.masked_fill(rows == params.shape[0] - 1, 0)
            grad_values.index_add_(
                0, value_rows.reshape(-1), d_cval[..., :num_values].reshape(-1, num_values)
            )
        return grad_params, grad_values, None, None, None


def composite_tiles(
    proj: ProjectedGaussians,
    values: Float[Tensor, "b n c"],
    plan: TilePlan,
) -> Float[Tensor, "b v c2 h w"]:
    """Composite ``values`` (colour + features) with the tile plan, differentiably.

    Returns (b, v, C + 2, H_pad, W_pad) on the padded tile grid: Σ w·values, Σ w·z, Σ w.
    """
    b, v, n = proj.depths.shape
    log_o = torch.log(proj.opacities.clamp_min(ALPHA_MIN))
    params = torch.cat(
        [proj.means2d, proj.conics, log_o.unsqueeze(-1), proj.depths.unsqueeze(-1)], dim=-1
    ).reshape(b * v * n, 7)
    sentinel = params.new_zeros(1, 7)
    sentinel[0, 5] = _SENTINEL_LOG_OPACITY
    params = torch.cat([params, sentinel], dim=0)
    flat_values = values.reshape(b * n, values.shape[-1])
    out = _Composite.apply(params, flat_values, plan, v, n)
    ts, tx, ty = plan.tile_size, plan.tiles_x, plan.tiles_y
    ch = out.shape[-1]
    out = out.reshape(b, v, ty, tx, ts, ts, ch).permute(0, 1, 6, 2, 4, 3, 5)
    return out.reshape(b, v, ch, ty * ts, tx * ts)
