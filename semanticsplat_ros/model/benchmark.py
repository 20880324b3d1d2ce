"""``semanticsplat bench model``: forward latency of the small config (2 views, 128×128) in torch
eager (``eager_ms``) and, on the CPU, on the ONNX export run by OpenVINO (``runtime_ms``, the
node's default ``runtime: auto``; ``runtime_speedup`` = eager / runtime, ``runtime_export_s`` the
one-time export and compile, ``runtime_depth_max_abs_m`` the largest depth difference between
the two), peak memory, and the parameter counts of the small and paper configs.

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
import tempfile
import time
from collections.abc import Callable

import torch

from semanticsplat_ros.data.types import Views
from semanticsplat_ros.model.cpu_runtime import OnnxEncoder
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

    def timed(forward: Callable[[], object]) -> list[float]:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward()
            sync()
            times.append((time.perf_counter() - t0) * 1000.0)
        return times

    with torch.no_grad():
        out = model(views)  # warm-up
        sync()
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        rss_before = peak_rss_bytes()
        times = timed(lambda: model(views))
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
        runtime = _runtime(model, views, out.depth, timed) if dev.type == "cpu" else {}
    eager_ms = statistics.median(times)
    return {
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "config": "small",
        "views": 2,
        "height": size,
        "width": size,
        "num_gaussians": int(out.gaussians.num_gaussians),
        "eager_ms": eager_ms,
        "eager_ms_min": min(times),
        "runtime": "onnx" if runtime else "torch",
        "runtime_ms": runtime.get("runtime_ms", eager_ms),
        "runtime_speedup": eager_ms / runtime.get("runtime_ms", eager_ms),
        **{k: v for k, v in runtime.items() if k != "runtime_ms"},
        "repeats": repeats,
        **memory,
        "params": {
            "small": count_parameters(model),
            "paper": count_parameters(SemanticSplat(SemanticSplatConfig.paper())),
        },
    }


def _runtime(
    model: SemanticSplat,
    views: Views,
    depth: torch.Tensor,
    timed: Callable[[Callable[[], object]], list[float]],
) -> dict[str, float]:
    """The ONNX export on OpenVINO (exported into a fresh cache, so the export is timed too)."""
    with tempfile.TemporaryDirectory(prefix="semanticsplat_bench_onnx_") as cache:
        encoder = OnnxEncoder(model, cache_dir=cache)
        t0 = time.perf_counter()
        first = encoder(views)
        export_s = time.perf_counter() - t0
        times = timed(lambda: encoder(views))
    return {
        "runtime_ms": statistics.median(times),
        "runtime_ms_min": min(times),
        "runtime_export_s": export_s,
        "runtime_depth_max_abs_m": float((first.depth - depth).abs().max()),
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2] == "quick")))
