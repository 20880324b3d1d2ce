"""``semanticsplat bench model``: forward latency and peak memory of the small config (2 views,
128×128), and the parameter counts of the small and paper configs.

The measurement runs in a fresh Python process, so that the peak memory is the model's alone
(not that of benchmarks run before it in ``bench all``).
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from semanticsplat_ros.model.semanticsplat import (
    SemanticSplat,
    SemanticSplatConfig,
    count_parameters,
)
from semanticsplat_ros.model.testing import random_views


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def benchmark(device: str = "auto", quick: bool = False) -> dict:
    """Median forward latency (ms, no grad) and peak memory of the small config, measured in a
    fresh process (``measure``)."""
    cmd = [sys.executable, "-m", __name__, device, "quick" if quick else "full"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"model benchmark process failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(device: str = "auto", quick: bool = False) -> dict:
    """Median forward latency (ms, no grad) and peak memory of the small config, in this process.

    CUDA: ``torch.cuda.max_memory_allocated`` during the forward passes. CPU: the process's peak
    RSS (``peak_rss_mb``: interpreter, torch, weights and the passes — meaningful in a fresh
    process) and its growth over the timed passes after a warm-up pass has allocated the
    allocator's pools (a lower bound of the first-call cost).
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
        rss_before = peak_rss_bytes()
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
                "peak_rss_mb": peak_rss_bytes() / 2**20,
                "peak_rss_growth_mb": (peak_rss_bytes() - rss_before) / 2**20,
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


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2] == "quick")))
