"""Figures as pure functions: arrays in, ``(H, W, 3)`` uint8 RGB images out.

* ``depth_to_rgb``: a depth map through a matplotlib colour map (near = bright/warm).
* ``labels_to_rgb`` / ``overlay_labels``: class ids in ``CLASS_COLORS`` alpha-blended over RGB,
  with an optional legend strip.
* ``overlay_mask``: a highlighted mask with its contour; ``draw_marker`` marks a prompt pixel.
* ``pca_rgb``: feature fields of several views to colours with one PCA fitted over all views'
  pixels together, so that a colour means the same feature in every view (SemanticSplat Fig. 5).
* ``image_grid``: tiles with captions (a contact sheet); ``banner`` writes a warning line over an
  image without changing its size; ``save_png``.

Nothing here imports torch or rclpy; tensors are accepted wherever ``np.asarray`` takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from semanticsplat_ros.data.classes import CLASS_COLORS, CLASS_NAMES

RGB = tuple[int, int, int]

RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS — plumbing only"
"""How every output made with ``--random-weights`` is labelled (figures, JSON, printed text)."""
RANDOM_WEIGHTS_HINT = "; or pass --random-weights for a plumbing-only run"
"""Appended to a missing-checkpoint error by the commands that take --random-weights."""


def _as_numpy(x: object) -> np.ndarray:
    """numpy view of an array or a (CPU/CUDA) tensor."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(x)


def check_rgb(image: object, name: str = "image") -> np.ndarray:
    """``image`` as an (H, W, 3) uint8 array, or ValueError."""
    arr = _as_numpy(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be an (H, W, 3) RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {arr.dtype}")
    return arr


def _check_map(x: object, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = _as_numpy(x)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, but the image is {shape}")
    return arr


def _colormap(name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown matplotlib colour map {name!r}") from None


# --------------------------------------------------------------------------------------------
# Depth
# --------------------------------------------------------------------------------------------


def depth_range(
    depth: object, percentiles: tuple[float, float] = (2.0, 98.0)
) -> tuple[float, float]:
    """A robust (near, far) of a depth map's valid (finite, > 0) values, metres."""
    d = _as_numpy(depth).astype(np.float64)
    valid = d[np.isfinite(d) & (d > 0)]
    if valid.size == 0:
        return 0.1, 1.0
    near, far = (float(v) for v in np.percentile(valid, percentiles))
    if far <= near:
        far = near * 1.01 + 1e-3
    return near, far


def depth_to_rgb(
    depth: object,
    near: float | None = None,
    far: float | None = None,
    cmap: str = "turbo",
    invalid_color: RGB = (0, 0, 0),
) -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) uint8.

    Depths are clipped to [near, far] (default: the 2nd and 98th percentile of the valid depths)
    and mapped so that ``near`` is the colour map's top end (bright / warm) and ``far`` its
    bottom end: with ``inferno`` brightness falls monotonically with depth. Non-finite or
    non-positive depths (unknown) get ``invalid_color``.
    """
    d = _check_map(depth, "depth").astype(np.float64)
    if (near is None) != (far is None):
        lo, hi = depth_range(d)
        near = lo if near is None else near
        far = hi if far is None else far
    elif near is None or far is None:
        near, far = depth_range(d)
    if not (np.isfinite(near) and np.isfinite(far) and 0 <= near < far):
        raise ValueError(f"need 0 <= near < far, got near={near}, far={far}")
    valid = np.isfinite(d) & (d > 0)
    t = np.clip((np.where(valid, d, far) - near) / (far - near), 0.0, 1.0)
    rgb = _colormap(cmap)(1.0 - t)[..., :3]
    out = np.round(rgb * 255.0).astype(np.uint8)
    out[~valid] = invalid_color
    return out


# --------------------------------------------------------------------------------------------
# Labels and masks
# --------------------------------------------------------------------------------------------


def _palette(colors: Sequence[RGB] | None) -> np.ndarray:
    palette = np.asarray(CLASS_COLORS if colors is None else colors, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise ValueError(f"colors must be a non-empty list of RGB triples, got {palette.shape}")
    return palette


def labels_to_rgb(
    labels: object, colors: Sequence[RGB] | None = None, unknown_color: RGB = (0, 0, 0)
) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 (``CLASS_COLORS`` by default); ids outside the
    palette (-1, 255 = unknown) get ``unknown_color``."""
    lab = _check_map(labels, "labels")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got {lab.dtype}")
    palette = _palette(colors)
    known = (lab >= 0) & (lab < len(palette))
    out = np.empty((*lab.shape, 3), dtype=np.uint8)
    out[:] = unknown_color
    out[known] = palette[lab[known]]
    return out


def _blend(image: np.ndarray, color: np.ndarray, where: np.ndarray, alpha: float) -> np.ndarray:
    out = image.astype(np.float32)
    out[where] = (1.0 - alpha) * out[where] + alpha * color[where].astype(np.float32)
    return np.round(out).clip(0, 255).astype(np.uint8)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def overlay_labels(
    image: object,
    labels: object,
    alpha: float = 0.5,
    colors: Sequence[RGB] | None = None,
    class_names: Sequence[str] | None = None,
    legend: bool = False,
) -> np.ndarray:
    """Class colours alpha-blended over an RGB image; unknown ids leave the image as is.

    With ``legend`` a strip naming the classes present is appended below the image (the
    result is then taller than the image).
    """
    img = check_rgb(image)
    lab = _check_map(labels, "labels", img.shape[:2])
    _check_alpha(alpha)
    palette = _palette(colors)
    colored = labels_to_rgb(lab, palette)
    known = (lab >= 0) & (lab < len(palette))
    out = _blend(img, colored, known, alpha)
    if not legend:
        return out
    names = list(CLASS_NAMES if class_names is None else class_names)
    if len(names) < len(palette):
        names += [str(i) for i in range(len(names), len(palette))]
    present = [int(i) for i in np.unique(lab[known])]
    return np.concatenate([out, legend_strip(out.shape[1], present, names, palette)], axis=0)


def legend_strip(
    width: int, class_ids: Sequence[int], class_names: Sequence[str], colors: object = None
) -> np.ndarray:
    """(h, width, 3) uint8 white strip with a swatch and name per class id (wrapping rows)."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    palette = _palette(colors)  # type: ignore[arg-type]
    font = ImageFont.load_default()
    items = [(palette[i % len(palette)], str(class_names[i])) for i in class_ids]
    rows: list[list[tuple[np.ndarray, str]]] = [[]]
    x = 4
    for color, name in items:
        w = 16 + int(font.getlength(name)) + 10
        if x + w > width and rows[-1]:
            rows.append([])
            x = 4
        rows[-1].append((color, name))
        x += w
    row_h = 16
    strip = Image.new("RGB", (width, row_h * len(rows) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        x, y = 4, 2 + r * row_h
        for color, name in row:
            draw.rectangle((x, y + 1, x + 11, y + 12), fill=tuple(int(c) for c in color))
            draw.text((x + 15, y), name, fill=(0, 0, 0), font=font)
            x += 16 + int(font.getlength(name)) + 10
    return np.asarray(strip, dtype=np.uint8)


def mask_contour(mask: object) -> np.ndarray:
    """(H, W) bool: mask pixels with a 4-neighbour outside the mask (or on the image border)."""
    m = _check_map(mask, "mask").astype(bool)
    padded = np.pad(m, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & m
    return m & ~interior


def overlay_mask(
    image: object,
    mask: object,
    color: RGB = (255, 40, 40),
    alpha: float = 0.5,
    contour: bool = True,
    contour_color: RGB = (255, 255, 255),
    dim_outside: float = 0.0,
) -> np.ndarray:
    """A mask highlighted over an RGB image: ``color`` blended inside, its contour drawn in
    ``contour_color``, and the outside darkened by ``dim_outside`` (0 = unchanged)."""
    img = check_rgb(image)
    m = _check_map(mask, "mask", img.shape[:2]).astype(bool)
    _check_alpha(alpha)
    _check_alpha(dim_outside)
    fill = np.broadcast_to(np.asarray(color, dtype=np.uint8), img.shape)
    out = _blend(img, fill, m, alpha)
    if dim_outside > 0:
        out[~m] = np.round(out[~m] * (1.0 - dim_outside)).astype(np.uint8)
    if contour:
        out[mask_contour(m)] = contour_color
    return out


def draw_marker(
    image: object, u: float, v: float, color: RGB = (0, 255, 255), radius: int = 4
) -> np.ndarray:
    """A cross-hair circle at pixel (u, v) (column, row; pixel centres on integers)."""
    img = check_rgb(image)
    if not (np.isfinite(u) and np.isfinite(v)):
        raise ValueError(f"marker position must be finite, got ({u}, {v})")
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    r = max(int(radius), 1)
    draw.ellipse((u - r, v - r, u + r, v + r), outline=color, width=1)
    draw.line((u - r - 2, v, u + r + 2, v), fill=color)
    draw.line((u, v - r - 2, u, v + r + 2), fill=color)
    return np.asarray(pil, dtype=np.uint8).copy()


# --------------------------------------------------------------------------------------------
# Feature PCA
# --------------------------------------------------------------------------------------------


def pca_rgb(
    features: object | Sequence[object],
    max_samples: int = 50_000,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> list[np.ndarray]:
    """Feature fields -> RGB via their first three principal components, fitted jointly.

    ``features``: (v, c, h, w) or a sequence of (c, h, w) arrays/tensors (sizes may differ, the
    channel count may not). One PCA is fitted over the pixels of all views together (at most
    ``max_samples``, evenly strided) and each component is stretched between its ``percentiles``
    over all views, so the same feature gets the same colour in every view. Component signs
    are fixed (largest loading positive) so colours are deterministic. A component whose range
    is under a tenth of the first's keeps that tenth as its range (noise stays near mid grey). Returns v (h, w, 3) uint8 images.
    """
    if isinstance(features, Sequence) and not isinstance(features, str | bytes):
        views = [_as_numpy(f) for f in features]
    else:
        arr = _as_numpy(features)
        if arr.ndim != 4:
            raise ValueError(
                f"features must be (v, c, h, w) or a list of (c, h, w), got {arr.shape}"
            )
        views = list(arr)
    if not views:
        raise ValueError("no feature maps given")
    for i, f in enumerate(views):
        if f.ndim != 3 or min(f.shape) < 1:
            raise ValueError(f"feature map {i} must be (c, h, w), got shape {f.shape}")
        if f.shape[0] != views[0].shape[0]:
            raise ValueError(
                f"feature map {i} has {f.shape[0]} channels, map 0 has {views[0].shape[0]}"
            )
        if not np.issubdtype(f.dtype, np.number):
            raise ValueError(f"feature map {i} must be numeric, got {f.dtype}")
    if max_samples < 3:
        raise ValueError(f"max_samples must be >= 3, got {max_samples}")
    c = views[0].shape[0]
    flat = [f.reshape(c, -1).T.astype(np.float64) for f in views]
    pixels = np.concatenate(flat, axis=0)
    pixels = np.where(np.isfinite(pixels), pixels, 0.0)
    mean = pixels.mean(axis=0)
    sample = pixels[:: max(1, len(pixels) // max_samples)] - mean
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    k = min(3, vt.shape[0])
    components = vt[:k]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    proj = (pixels - mean) @ components.T  # (n, k)
    colors = np.full((len(pixels), 3), 0.5)
    ranges = [np.percentile(proj[:, j], percentiles) for j in range(k)]
    first = float(ranges[0][1] - ranges[0][0]) if k else 0.0
    for j in range(k):
        lo, hi = (float(x) for x in ranges[j])
        # A component much weaker than the first (noise) is not stretched to full contrast.
        span = max(hi - lo, 0.1 * first)
        if span > 0:
            colors[:, j] = np.clip((proj[:, j] - 0.5 * (lo + hi)) / span + 0.5, 0.0, 1.0)
    rgb = np.round(colors * 255.0).astype(np.uint8)
    out, start = [], 0
    for f in views:
        n = f.shape[1] * f.shape[2]
        out.append(rgb[start : start + n].reshape(f.shape[1], f.shape[2], 3))
        start += n
    return out


# --------------------------------------------------------------------------------------------
# Composition and files
# --------------------------------------------------------------------------------------------


def _drawable(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
    """``text`` as the font can draw it: dashes as "-" (PIL's default fonts lack the em dash),
    other characters outside latin-1 replaced by "?"."""
    text = text.replace("\u2014", "-").replace("\u2013", "-")
    return text.encode("latin-1", "replace").decode("latin-1")


def image_grid(
    rows: Sequence[Sequence[object | None]],
    captions: Sequence[Sequence[str]] | None = None,
    row_titles: Sequence[str] | None = None,
    title: str | None = None,
    pad: int = 4,
    background: RGB = (255, 255, 255),
) -> np.ndarray:
    """Tiles (RGB uint8, any sizes; ``None`` = empty cell) laid out in rows -> one RGB image.

    ``captions[r][c]`` is written above tile (r, c); ``row_titles[r]`` to the left of row r;
    ``title`` across the top. Each column is as wide as its widest tile, each row as tall as
    its tallest; tiles are placed at the top-left of their cells.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("image_grid needs at least one tile")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    tiles = [
        [None if t is None else check_rgb(t, f"tile ({r}, {c})") for c, t in enumerate(row)]
        for r, row in enumerate(rows)
    ]
    if captions is not None and (
        len(captions) != len(tiles)
        or any(len(cr) not in (0, len(tr)) for cr, tr in zip(captions, tiles, strict=True))
    ):
        raise ValueError("captions must have one list per row, one caption per tile")
    if row_titles is not None and len(row_titles) != len(tiles):
        raise ValueError(f"got {len(row_titles)} row titles for {len(tiles)} rows")
    font = ImageFont.load_default()
    n_cols = max(len(r) for r in tiles)
    col_w = [
        max((r[c].shape[1] for r in tiles if c < len(r) and r[c] is not None), default=0)
        for c in range(n_cols)
    ]
    row_h = [max((t.shape[0] for t in r if t is not None), default=0) for r in tiles]
    cap_h = 14 if captions is not None and any(any(cr) for cr in captions) else 0
    left = 0
    if row_titles is not None:
        left = max(int(font.getlength(_drawable(t, font))) for t in row_titles) + 2 * pad
    top = 18 if title else 0
    width = left + sum(col_w) + pad * (n_cols + 1)
    height = top + sum(h + cap_h for h in row_h) + pad * (len(tiles) + 1)
    sheet = Image.new("RGB", (max(width, 1), max(height, 1)), background)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 3), _drawable(title, font), fill=(0, 0, 0), font=font)
    y = top + pad
    for r, row in enumerate(tiles):
        x = left + pad
        if row_titles is not None:
            draw.text(
                (pad, y + cap_h + row_h[r] // 2 - 6),
                _drawable(row_titles[r], font),
                fill=(0, 0, 0),
                font=font,
            )
        for c in range(n_cols):
            tile = row[c] if c < len(row) else None
            if captions is not None and c < len(captions[r]) and captions[r][c]:
                draw.text((x, y), _drawable(captions[r][c], font), fill=(0, 0, 0), font=font)
            if tile is not None:
                sheet.paste(Image.fromarray(tile), (x, y + cap_h))
            x += col_w[c] + pad
        y += row_h[r] + cap_h + pad
    return np.asarray(sheet, dtype=np.uint8).copy()


def banner(
    image: object, text: str, color: RGB = (255, 255, 0), background: RGB = (0, 0, 0)
) -> np.ndarray:
    """``text`` on a strip over the top rows of ``image`` (same size; clipped if too narrow)."""
    img = check_rgb(image)
    font = ImageFont.load_default()
    text = _drawable(text, font)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    h = min(13, img.shape[0])
    draw.rectangle((0, 0, img.shape[1] - 1, h - 1), fill=background)
    draw.text((2, 0), text, fill=color, font=font)
    return np.asarray(pil, dtype=np.uint8).copy()


def save_png(path: str | Path, image: object, metadata: dict[str, str] | None = None) -> Path:
    """Write an (H, W, 3) uint8 image as PNG (parent folders created); ``metadata`` becomes
    PNG text chunks (e.g. ``{"Comment": "RANDOM WEIGHTS — plumbing only"}``)."""
    img = check_rgb(image)
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: the file name must end in .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    info = None
    if metadata:
        info = PngInfo()
        for key, value in metadata.items():
            info.add_itxt(key, value)
    Image.fromarray(img).save(path, format="PNG", pnginfo=info)
    return path
