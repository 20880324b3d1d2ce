"""``semanticsplat bench model``: forward latency and peak memory of the small config (2 views,
128×128), and the parameter counts of the small and paper configs."""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time

import torch

from semanticsplat_ros.model.semanticsplat import (
    SemanticSplat,
    SemanticSplatConfig,
    count_parameters,
)
from semanticsplat_ros.model.testing import random_views


def _rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def benchmark(device: str = "auto", quick: bool = False) -> dict:
    """Median forward latency (ms, no grad) and peak memory of the small config.

    CUDA: ``torch.cuda.max_memory_allocated`` during the forward passes. CPU: the growth of the
    process's peak RSS over the forward passes, measured after a warm-up pass has already
    allocated the allocator's pools (so it is a lower bound of the first-call cost).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    size = 64 if quick else 128
    repeats = 2 if quick else 10
    torch.manual_seed(0)
    model = SemanticSplat(SemanticSplatConfig.small()).to(dev).eval()
    views = random_views(1, 2, size, size).to(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    with torch.no_grad():
        model(views)  # warm-up
        sync()
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        rss_before = _rss_bytes()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model(views)
            sync()
            times.append((time.perf_counter() - t0) * 1000.0)
        if dev.type == "cuda":
            peak = torch.cuda.max_memory_allocated(dev)
            memory = {
                "peak_allocated_mb": peak / 2**20,
                "peak_over_weights_mb": (peak - base) / 2**20,
            }
        else:
            memory = {
                "peak_rss_mb": _rss_bytes() / 2**20,
                "peak_rss_growth_mb": (_rss_bytes() - rss_before) / 2**20,
            }
    return {
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "config": "small",
        "views": 2,
        "height": size,
        "width": size,
        "num_gaussians": int(out.gaussians.num_gaussians),
        "forward_ms_median": statistics.median(times),
        "forward_ms_min": min(times),
        "repeats": repeats,
        **memory,
        "params": {
            "small": count_parameters(model),
            "paper": count_parameters(SemanticSplat(SemanticSplatConfig.paper())),
        },
    }
