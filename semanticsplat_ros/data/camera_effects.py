"""A camera's image formation beyond the ideal render: exposure, white balance, vignetting, blur,
sensor noise, a tone curve and JPEG compression, deterministic in a numpy Generator.

The renders are treated as linear intensities in [0, 1]. ``apply_effects`` runs the stages in the
order a camera does: optics (defocus / motion blur, then vignetting), scene-to-sensor gains
(exposure × per-channel white balance), sensor noise (Gaussian read noise plus shot noise that
grows with sqrt(intensity)), saturation (clamp to [0, 1]), the tone curve ``x ** gamma`` and last
the codec (JPEG through OpenCV: the library ROS's ``compressed_image_transport`` encodes with,
already an ``exec_depend`` of this package, and it works on numpy arrays without a PIL round trip).

A stage whose parameter is at its identity value is skipped, and a view whose effects are all at
identity comes back bit for bit unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

SHOT_NOISE_RATIO = 2.0
"""Shot-noise std at full white as a multiple of the read-noise std ``noise_sigma``: the noise
std at intensity x is ``noise_sigma * sqrt(1 + SHOT_NOISE_RATIO**2 * x)``."""

MAX_BLUR_SIGMA = 5.0
"""Largest accepted ``blur_sigma`` (pixels)."""


@dataclass(frozen=True)
class CameraEffects:
    """One camera model's departures from the ideal render (the defaults are the identity)."""

    noise_sigma: float = 0.0
    """Read-noise std in [0, 0.2] (intensity units); shot noise scales with it (SHOT_NOISE_RATIO)."""
    blur_sigma: float = 0.0
    """Gaussian defocus / motion blur std in pixels, [0, MAX_BLUR_SIGMA]; 0 = none."""
    vignetting: float = 0.0
    """Fraction in [0, 0.6] by which brightness falls at the image corners (cos^4-like falloff)."""
    gamma: float = 1.0
    """Tone curve exponent in [0.8, 1.25]: output = x ** gamma (> 1 darkens the mid-tones)."""
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Per-channel (R, G, B) gains, each in [0.5, 2]."""
    exposure: float = 1.0
    """Overall gain in [0.25, 4] (values above 1 saturate bright regions)."""
    jpeg_quality: int = 0
    """0 = no JPEG, else an OpenCV JPEG quality in [30, 95]."""

    def __post_init__(self) -> None:
        wb = tuple(float(g) for g in self.white_balance)
        object.__setattr__(self, "white_balance", wb)
        if not 0.0 <= self.noise_sigma <= 0.2:
            raise ValueError(f"noise_sigma must be in [0, 0.2], got {self.noise_sigma}")
        if not 0.0 <= self.blur_sigma <= MAX_BLUR_SIGMA:
            raise ValueError(f"blur_sigma must be in [0, {MAX_BLUR_SIGMA}], got {self.blur_sigma}")
        if not 0.0 <= self.vignetting <= 0.6:
            raise ValueError(f"vignetting must be in [0, 0.6], got {self.vignetting}")
        if not 0.8 <= self.gamma <= 1.25:
            raise ValueError(f"gamma must be in [0.8, 1.25], got {self.gamma}")
        if len(wb) != 3 or not all(0.5 <= g <= 2.0 for g in wb):
            raise ValueError(f"white_balance must be 3 gains in [0.5, 2], got {wb}")
        if not 0.25 <= self.exposure <= 4.0:
            raise ValueError(f"exposure must be in [0.25, 4], got {self.exposure}")
        q = self.jpeg_quality
        if isinstance(q, bool) or int(q) != q or not (q == 0 or 30 <= q <= 95):
            raise ValueError(f"jpeg_quality must be 0 or an int in [30, 95], got {q}")
        object.__setattr__(self, "jpeg_quality", int(q))

    @property
    def is_identity(self) -> bool:
        """True when applying these effects leaves an image unchanged."""
        return self == NONE


NONE = CameraEffects()
"""The identity: an ideal camera."""


def _optional(rng: np.random.Generator, p: float, low: float, high: float) -> float:
    """0 with probability 1 - p, else uniform in [low, high]."""
    return float(rng.uniform(low, high)) if rng.random() < p else 0.0


def sample_effects(rng: np.random.Generator) -> CameraEffects:
    """A random camera, from cheap robot webcams to good stereo cameras.

    5% ideal (NONE); 30% good (industrial / stereo) cameras: little noise, mostly sharp, mild
    vignetting, mostly raw frames; 45% webcams: visible noise and vignetting, JPEG 60-95 most of
    the time; 20% poor (low light, motion, heavy compression): strong noise, blur and JPEG 30-75.
    Within a tier each effect may be absent (blur and JPEG often are).
    """
    tier = rng.choice(4, p=[0.05, 0.30, 0.45, 0.20])
    if tier == 0:
        return NONE
    # (noise range, blur p / range, vignetting range, gamma half-width, WB half-width,
    #  exposure range, JPEG p / range)
    noise, blur_p, blur, vig, dgamma, dwb, expo, jpeg_p, jpeg = {
        1: ((0.002, 0.01), 0.3, (0.3, 0.8), (0.0, 0.15), 0.05, 0.03, (0.9, 1.1), 0.3, (85, 95)),
        2: ((0.01, 0.04), 0.6, (0.5, 1.5), (0.1, 0.45), 0.15, 0.10, (0.7, 1.4), 0.8, (60, 95)),
        3: ((0.03, 0.08), 0.9, (1.0, 2.5), (0.2, 0.6), 0.20, 0.15, (0.5, 1.6), 0.9, (30, 75)),
    }[int(tier)]
    gamma = 1.0 + rng.uniform(-dgamma, dgamma)
    return CameraEffects(
        noise_sigma=float(rng.uniform(*noise)),
        blur_sigma=_optional(rng, blur_p, *blur),
        vignetting=float(rng.uniform(*vig)),
        gamma=float(np.clip(gamma, 0.8, 1.25)),
        white_balance=tuple(float(g) for g in 1.0 + rng.uniform(-dwb, dwb, 3)),
        exposure=float(rng.uniform(*expo)),
        jpeg_quality=int(rng.integers(jpeg[0], jpeg[1] + 1)) if rng.random() < jpeg_p else 0,
    )


def _gaussian_blur(x: Float[Tensor, "n 3 h w"], sigma: float) -> Float[Tensor, "n 3 h w"]:
    """Separable Gaussian blur (reflect padding, radius ceil(3 sigma) clipped to the image)."""
    h, w = x.shape[-2:]
    radius = max(1, math.ceil(3.0 * sigma))
    ry, rx = min(radius, h - 1), min(radius, w - 1)
    if ry < 1 or rx < 1:
        return x
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    gx, gy = g[radius - rx : radius + rx + 1], g[radius - ry : radius + ry + 1]
    gx, gy = gx / gx.sum(), gy / gy.sum()
    # Every channel as its own single-channel image: a plain conv2d, faster on CPU than groups=3.
    n, c = x.shape[:2]
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (rx, rx, 0, 0), mode="reflect"), gx.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, ry, ry), mode="reflect"), gy.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def _radius2(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Float[Tensor, "h w"]:
    """Squared distance of pixel centres from the image centre, 1 at the corners."""
    y = torch.arange(h, device=device, dtype=dtype) + 0.5 - h / 2
    x = torch.arange(w, device=device, dtype=dtype) + 0.5 - w / 2
    return (y[:, None] ** 2 + x[None, :] ** 2) / ((h / 2) ** 2 + (w / 2) ** 2)


def _jpeg(image: Float[Tensor, "3 h w"], quality: int) -> Float[Tensor, "3 h w"]:
    """Round trip through an OpenCV JPEG at ``quality`` (8-bit, RGB in and out)."""
    rgb = (image.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0)
    bgr = np.ascontiguousarray(rgb.cpu().numpy()[:, :, ::-1])
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a JPEG")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return torch.from_numpy(out).permute(2, 0, 1).to(image.device, image.dtype) / 255.0


def _per_view(effects: CameraEffects | Sequence[CameraEffects], v: int) -> list[CameraEffects]:
    if isinstance(effects, CameraEffects):
        return [effects] * v
    out = list(effects)
    if len(out) != v:
        raise ValueError(f"got {len(out)} effect sets for {v} views")
    return out


def apply_effects(
    images: Float[Tensor, "v 3 h w"],
    effects: CameraEffects | Sequence[CameraEffects],
    rng: np.random.Generator,
) -> Float[Tensor, "v 3 h w"]:
    """``images`` (linear RGB in [0, 1]) as the camera(s) ``effects`` would record them.

    ``effects`` is one set for every view (a rig's cameras share a model) or one per view. The
    output is in [0, 1] with the input's shape, dtype and device, and deterministic in
    (images, effects, rng state); each call takes exactly one draw from ``rng`` (the seed of the
    noise), identity or not. Views whose effects are the identity come back exactly unchanged
    (all identity: ``images`` itself is returned).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (v, 3, h, w), got {tuple(images.shape)}")
    v, _, h, w = images.shape
    per_view = _per_view(effects, v)
    seed = int(rng.integers(0, 2**63 - 1))
    identity = [e.is_identity for e in per_view]
    if all(identity):
        return images
    dev = images.device
    x = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32)

    def column(values: list[float]) -> Tensor:
        return torch.tensor(values, dtype=x.dtype, device=dev).view(v, 1, 1, 1)

    for sigma in sorted({e.blur_sigma for e in per_view} - {0.0}):
        idx = [i for i, e in enumerate(per_view) if e.blur_sigma == sigma]
        x = x.clone() if x is images else x
        x[idx] = _gaussian_blur(x[idx], sigma)
    if any(e.vignetting > 0 for e in per_view):
        # cos^4 falloff of an equivalent lens, its focal length chosen so the corners lose
        # exactly ``vignetting``: factor = (1 + a r^2)^-2 with (1 + a)^-2 = 1 - vignetting.
        a = column([(1.0 - e.vignetting) ** -0.5 - 1.0 for e in per_view])
        x = x * (1.0 + a * _radius2(h, w, dev, x.dtype)) ** -2
    gains = [[e.exposure * g for g in e.white_balance] for e in per_view]
    if any(g != 1.0 for row in gains for g in row):
        x = x * torch.tensor(gains, dtype=x.dtype, device=dev).view(v, 3, 1, 1)
    if any(e.noise_sigma > 0 for e in per_view):
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn((v, 3, h, w), generator=gen, dtype=torch.float32)
        std = column([e.noise_sigma for e in per_view])
        x = x + std * torch.sqrt(1.0 + SHOT_NOISE_RATIO**2 * x.clamp(min=0)) * noise.to(
            dev, x.dtype
        )
    x = x.clamp(0.0, 1.0)
    if any(e.gamma != 1.0 for e in per_view):
        x = x ** column([e.gamma for e in per_view])
    out = x.to(images.dtype)
    for i, e in enumerate(per_view):
        if e.jpeg_quality:
            out[i] = _jpeg(out[i], e.jpeg_quality)
    if any(identity):
        out[torch.tensor(identity, device=dev)] = images[torch.tensor(identity, device=dev)]
    return out
