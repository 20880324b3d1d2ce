"""``semanticsplat bench render``: forward and forward+backward time of ``render``.

Scenes come from :func:`semanticsplat_ros.render.scenes.random_scene` (per-pixel-like Gaussians
at 1–5 m with 1–3 px footprints), 3 colour + 32 feature channels. Each timing is the median of
several repeats after a warm-up. ``fwd_s`` is an inference forward (no autograd);
``fwd_bwd_s`` a forward with autograd plus the backward of a random linear loss on colour,
features, depth and alpha. The dense reference is timed where its estimated memory fits in
8 GiB (it runs without warm-up: one call takes seconds), otherwise ``dense_fwd_bwd_s`` and ``speedup`` are null.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from semanticsplat_ros.device import resolve_device
from semanticsplat_ros.render.dense import dense_memory_bytes
from semanticsplat_ros.render.rasterizer import get_rasterizer, render
from semanticsplat_ros.render.scenes import random_scene
from semanticsplat_ros.render.types import Gaussians

CASES: list[tuple[str, int, int, int, int]] = [
    # name, views, height, width, gaussians
    ("2x64x64_8k", 2, 64, 64, 8192),
    ("2x128x128_32k", 2, 128, 128, 32768),
    ("4x256x256_262k", 4, 256, 256, 262144),
]
FEATURES = 32
DENSE_LIMIT_BYTES = 8 << 30


def _median_time(
    fn: Callable[[], object], repeats: int, warmup: int, device: torch.device
) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_case(
    views: int,
    height: int,
    width: int,
    gaussians: int,
    device: torch.device,
    backend: str,
    repeats: int,
    time_forward: bool = True,
    warmup: int = 1,
) -> tuple[float | None, float]:
    gs, w2c, K = random_scene(1, views, height, width, gaussians, FEATURES, seed=0)
    gs, w2c, K = gs.to(device), w2c.to(device), K.to(device)
    params = Gaussians(*(t.clone().requires_grad_(True) for t in gs._fields()))
    gen = torch.Generator().manual_seed(1)
    weights = [
        torch.randn(1, views, c, height, width, generator=gen).to(device)
        for c in (3, FEATURES, 1, 1)
    ]

    def forward() -> None:
        with torch.no_grad():
            render(gs, w2c, K, width, height, backend=backend)

    def forward_backward() -> None:
        out = render(params, w2c, K, width, height, backend=backend)
        maps = (out.color, out.features, out.depth, out.alpha)
        loss = sum((m * w).sum() for m, w in zip(maps, weights, strict=True))
        loss.backward()

    fwd = _median_time(forward, repeats, warmup, device) if time_forward else None
    fwd_bwd = _median_time(forward_backward, repeats, warmup, device)
    return fwd, fwd_bwd


def benchmark(device: str = "auto", quick: bool = False) -> dict:
    """Time the rasterizer on the standard cases; ``quick`` runs the first case only."""
    dev = resolve_device(device)
    backend = get_rasterizer("auto", dev).name
    cases = CASES[:1] if quick else CASES
    repeats = 2 if quick else 5
    results = []
    for name, views, height, width, n in cases:
        fwd, fwd_bwd = _time_case(views, height, width, n, dev, backend, repeats)
        dense = None
        if dense_memory_bytes(views, height, width, n) <= DENSE_LIMIT_BYTES:
            _, dense = _time_case(
                views,
                height,
                width,
                n,
                dev,
                "dense",
                1 if quick else 3,
                time_forward=False,
                warmup=0,
            )
        results.append(
            {
                "name": name,
                "backend": backend,
                "views": views,
                "height": height,
                "width": width,
                "gaussians": n,
                "channels": 3 + FEATURES,
                "fwd_s": None if fwd is None else round(fwd, 5),
                "fwd_bwd_s": round(fwd_bwd, 5),
                "dense_fwd_bwd_s": None if dense is None else round(dense, 5),
                "speedup": None if dense is None else round(dense / fwd_bwd, 2),
            }
        )
    return {"device": str(dev), "torch_threads": torch.get_num_threads(), "cases": results}
