"""Photo textures: real photographs that scikit-image ships (offline), tiled on primitives.

The bank holds ``PHOTO_NAMES``: crops of ``skimage.data`` images that look like surface
materials (brick, grass, gravel, wood, fur, plaster, tissue that reads as marble / fabric). Each
is cropped, resized to ``TILE`` × ``TILE`` (antialiased), made seamlessly tileable and converted
to float RGB in [0, 1]; grey images are replicated to three channels. Tileable: stochastic photos
(grass, gravel, ...) are blended with their copies rolled by half a tile, weighted so that every
wrap-around edge and every rolled seam carries weight 0, with the blend's variance restored;
structured ones (brick) are laid out as a 2×2 mirror arrangement of the half-size crop.

Rendering (``raycast.shade``, layout in ``scene.Texture``) uses the *detail*: the photo divided
by its per-channel mean (so its mean is 1), its contrast scaled to a luminance standard
deviation of ``DETAIL_STD``, stored as a mip pyramid (2×2 averages down to one
texel) and sampled bilinearly with wrap-around, between the two mip levels that match the
pixel's footprint (trilinear), so distant photo surfaces do not alias.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.data.scene import Texture, Vec3

TILE = 128
"""Texels per side of a photo tile."""

_SOURCES: dict[str, tuple[str, tuple[int, int, int, int], bool, bool]] = {
    "brick": ("brick", (0, 512, 0, 512), True, True),
    "grass": ("grass", (0, 512, 0, 512), False, False),
    "gravel": ("gravel", (0, 512, 0, 512), False, False),
    "wood": ("coffee", (0, 120, 450, 600), False, False),
    "fur": ("chelsea", (0, 75, 120, 230), False, False),
    "plaster": ("moon", (300, 512, 300, 512), False, False),
    "tissue": ("immunohistochemistry", (0, 512, 0, 512), False, False),
}
"""Photo name -> (``skimage.data`` function, crop (rows0, rows1, cols0, cols1), transpose (bricks
are turned to lie horizontally on walls), mirror (structured photos tile as a 2×2 mirror
arrangement of the crop instead of the seam blend, which would ghost their lines))."""

DETAIL_STD = 0.25
"""Standard deviation of every photo's detail luminance (mean 1) at full resolution: photos
differ in contrast (brick 0.13, gravel 0.3), the renderer shows them all equally strong."""

PHOTO_NAMES: tuple[str, ...] = tuple(_SOURCES)
"""Names of the bank's photos; ``Texture.photo_id`` indexes this tuple."""


def _load(name: str) -> np.ndarray:
    """The photo's crop as float32 (h, w, 3) in [0, 1]."""
    from skimage import data

    source, (r0, r1, c0, c1), transpose, _ = _SOURCES[name]
    image = np.asarray(getattr(data, source)())[r0:r1, c0:c1]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3].astype(np.float32) / 255.0
    return np.ascontiguousarray(image.transpose(1, 0, 2) if transpose else image)


def _seamless(tile: Float[Tensor, "3 s s"]) -> Float[Tensor, "3 s s"]:
    """``tile`` blended with its half-rolled copies so that it wraps around without seams."""
    size = tile.shape[-1]
    a = torch.sin(torch.pi * (torch.arange(size, dtype=tile.dtype) + 0.5) / size) ** 2
    ay, ax = a[:, None], a[None, :]
    half = size // 2
    copies = [
        (tile, ay * ax),
        (tile.roll(half, dims=2), ay * (1 - ax)),
        (tile.roll(half, dims=1), (1 - ay) * ax),
        (tile.roll((half, half), dims=(1, 2)), (1 - ay) * (1 - ax)),
    ]
    mean = tile.mean(dim=(1, 2), keepdim=True)
    mixed = sum(w * (c - mean) for c, w in copies)
    norm = torch.sqrt(sum(w * w for _, w in copies))
    return (mean + mixed / norm).clamp(0.0, 1.0)


@lru_cache(maxsize=1)
def _bank() -> Tensor:
    tiles = []
    for name in PHOTO_NAMES:
        image = torch.from_numpy(_load(name)).permute(2, 0, 1)[None]
        mirror = _SOURCES[name][3]
        size = TILE // 2 if mirror else TILE
        tile = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)[0]
        tile = tile.clamp(0.0, 1.0)
        if mirror:
            tile = torch.cat([tile, tile.flip(2)], dim=2)
            tiles.append(torch.cat([tile, tile.flip(1)], dim=1))
        else:
            tiles.append(_seamless(tile))
    return torch.stack(tiles)


def photo_bank() -> Float[Tensor, "n 3 s s"]:
    """The seamless photo tiles as float32 RGB in [0, 1], n = len(PHOTO_NAMES), s = TILE."""
    return _bank().clone()


def photo_mean(name: str) -> Vec3:
    """Mean RGB of photo ``name``: as ``color`` and ``color2`` (with ``photo_amp`` 1 and gain 1)
    it makes a primitive look like the photo itself."""
    mean = _bank()[PHOTO_NAMES.index(name)].mean(dim=(1, 2))
    r, g, b = (float(v) for v in mean)
    return r, g, b


def photo_texture(rng: np.random.Generator, name: str | None = None, amp: float = 1.0) -> Texture:
    """A ``Texture`` showing photo ``name`` (random if None) and no procedural pattern.

    Random scale (0.3-2 m per tile), brightness (×0.85-1.15) and a slight tint (±5 % per
    channel) go into ``photo_scale`` and ``photo_gain``; the primitive's ``color`` / ``color2``
    keep giving the mean colour (see ``Texture``).
    """
    if name is None:
        name = PHOTO_NAMES[int(rng.integers(len(PHOTO_NAMES)))]
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; photos: {', '.join(PHOTO_NAMES)}")
    scale = float(rng.uniform(0.3, 2.0))
    gain = float(rng.uniform(0.85, 1.15)) * np.clip(1.0 + rng.normal(0.0, 0.05, 3), 0.85, 1.15)
    r, g, b = (float(v) for v in gain)
    return Texture(
        photo_id=PHOTO_NAMES.index(name),
        photo_scale=scale,
        photo_amp=float(amp),
        photo_gain=(r, g, b),
    )


@lru_cache(maxsize=4)
def _pyramid(device: str) -> tuple[Tensor, Tensor, Tensor]:
    """Mip pyramid of the detail (photo / its channel means), flattened texel-major:
    (texels, 3), per-level first texel, per-level size."""
    bank = _bank()
    detail = bank / bank.mean(dim=(2, 3), keepdim=True).clamp_min(0.02)
    spread = detail.mean(dim=1, keepdim=True).std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    detail = 1.0 + (detail - 1.0) * (DETAIL_STD / spread)
    levels = [detail.clamp(0.0, 4.0)]
    while levels[-1].shape[-1] > 1:
        levels.append(F.avg_pool2d(levels[-1], 2))
    flat = torch.cat([lv.permute(0, 2, 3, 1).reshape(-1, 3) for lv in levels])
    counts = torch.tensor([lv[0, 0].numel() * lv.shape[0] for lv in levels])
    offsets = torch.cumsum(counts, 0) - counts
    sizes = torch.tensor([lv.shape[-1] for lv in levels])
    return flat.to(device), offsets.to(device), sizes.to(device)


def _bilinear(
    flat: Tensor, offset: Tensor, size: Tensor, photo: Tensor, u: Tensor, v: Tensor
) -> Tensor:
    """Wrap-around bilinear lookup at tile coordinates (u, v) of one mip level per element."""
    x = u * size - 0.5
    y = v * size - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0 = torch.remainder(x0.long(), size)
    y0 = torch.remainder(y0.long(), size)
    x1 = torch.remainder(x0 + 1, size)
    y1 = torch.remainder(y0 + 1, size)
    base = offset + photo * size * size

    def at(row: Tensor, col: Tensor) -> Tensor:
        return flat[base + row * size + col]

    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


def sample_detail(
    photo: Int[Tensor, " m"],
    u: Float[Tensor, " m"],
    v: Float[Tensor, " m"],
    texels_per_pixel: Float[Tensor, " m"] | None = None,
) -> Float[Tensor, "m 3"]:
    """Photo detail (mean 1 per channel) of photos ``photo`` at tile coordinates (u, v).

    u, v: 1 = one tile (wraps around); ``texels_per_pixel`` (level-0 texels a pixel covers)
    picks the mip levels (None: full resolution, bilinear only).
    """
    flat, offsets, sizes = _pyramid(str(u.device))
    if texels_per_pixel is None:
        return _bilinear(flat, offsets[0], sizes[0], photo, u, v)
    lod = torch.log2(texels_per_pixel.clamp_min(1.0)).clamp_max(len(sizes) - 1)
    l0 = lod.floor().long()
    l1 = (l0 + 1).clamp_max(len(sizes) - 1)
    frac = (lod - l0)[:, None]
    fine = _bilinear(flat, offsets[l0], sizes[l0], photo, u, v)
    coarse = _bilinear(flat, offsets[l1], sizes[l1], photo, u, v)
    return fine * (1 - frac) + coarse * frac


__all__ = [
    "PHOTO_NAMES",
    "TILE",
    "photo_bank",
    "photo_mean",
    "photo_texture",
    "sample_detail",
]
