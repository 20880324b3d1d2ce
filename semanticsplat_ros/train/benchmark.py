"""``semanticsplat bench train``: seconds per training step and peak memory of the ``paper``
config (stages 1 and 2 at 256², batch 1, 2 context + 1 target views) distilling SAM ViT-B and
open_clip ViT-B-16 from a teacher feature cache, as a lab would train it.

Without ``--sam`` / ``--language`` the teachers are the released architectures with random
weights, saved as files first (the timings do not depend on the weights). The run writes one
synthetic ScanNet-layout scene, caches its teacher features (timed per frame), then trains a
fresh ``paper`` model for a few steps of stage 1 and, from it, stage 2. It runs in a fresh Python
process, so that the peak memory is its own. ``--quick``: 64², 2 steps per stage.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from semanticsplat_ros.data.commands import write_synthetic_scene
from semanticsplat_ros.data.scannet import ScanNetScene
from semanticsplat_ros.device import resolve_device
from semanticsplat_ros.model.benchmark import peak_rss_bytes
from semanticsplat_ros.teachers.frame_cache import (
    frame_features,
    plan_frame_cache,
    write_frame_cache,
)
from semanticsplat_ros.teachers.spec import (
    load_language_teacher,
    load_sam_teacher,
    spec_to_checkpoint_dict,
)
from semanticsplat_ros.teachers.stand_ins import save_released_stand_ins
from semanticsplat_ros.train.commands import load_config_file
from semanticsplat_ros.train.trainer import TrainConfig, Trainer

HCAM_POINTS = 4
"""Automatic-mask point grid of the cache (per side); the configs' 16 costs 16× the decoder."""


def benchmark(
    device: str = "auto", quick: bool = False, sam: str | None = None, language: str | None = None
) -> dict:
    """``measure`` in a fresh process."""
    cmd = [sys.executable, "-m", __name__, device, "quick" if quick else "full"]
    cmd += [sam or "", language or ""]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"train benchmark process failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cache(data: Path, out: Path, sam_spec: str, language_spec: str, size: int, dev) -> dict:
    """Write the teacher cache of the scenes under ``data``; returns its figures."""
    t0 = time.perf_counter()
    sam = load_sam_teacher(sam_spec, dev)
    lang = load_language_teacher(language_spec, dev).teacher
    load_s = time.perf_counter() - t0
    scenes = [ScanNetScene(p) for p in sorted(data.iterdir())]
    probe = scenes[0].load_views([0], size, size).images.to(dev)
    shapes = {
        f: [int(x) for x in v.shape[1:]]
        for f, v in frame_features(probe, sam, lang, HCAM_POINTS).items()
    }
    record = spec_to_checkpoint_dict(sam_spec, language_spec)
    plan = plan_frame_cache(
        scenes, out, record, shapes, size, size, HCAM_POINTS, frames_per_shard=8
    )
    t0 = time.perf_counter()
    write_frame_cache(plan, scenes, sam, lang, dev, batch_size=1, progress=False)
    frames = sum(len(s) for s in scenes)
    return {
        "teachers_load_s": load_s,
        "cache_s_per_frame": (time.perf_counter() - t0) / frames,
        "cache_mib_per_frame": plan.total_bytes / frames / 2**20,
    }


def _stage(
    stage: int, work: Path, specs: tuple[str, str], size: int, steps: int, dev, init=None
) -> dict:
    """Train ``steps`` steps of ``stage`` with the paper config from the cache; its figures."""
    data = load_config_file(f"paper_stage{stage}")
    data |= {
        "steps": steps, "height": size, "width": size, "batch_size": 1, "num_target": 1,
        "examples_per_scene": steps, "num_workers": 0, "warmup_steps": 1, "device": dev.type,
        "data": str(work / "data"), "teacher_cache": str(work / "cache"),
        "out": str(work / f"stage{stage}"), "init": init, "precision": "fp32",
        "log_every": 1000, "image_every": 1000, "checkpoint_every": 1000,
    }  # fmt: skip
    data["loss"] = {**data["loss"], "hcam_points_per_side": HCAM_POINTS}
    data["loss"] |= {"sam_teacher": specs[0], "language_teacher": specs[1]}
    if dev.type == "cuda":
        data["precision"] = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        torch.cuda.reset_peak_memory_stats(dev)
    result = Trainer(TrainConfig.from_dict(data)).train(progress=False)
    times = result.step_seconds
    out: dict[str, Any] = {
        "steps": result.step,
        "first_step_s": times[0],
        "step_s_median": statistics.median(times[1:] or times),
        "precision": data["precision"],
        "process_peak_rss_mib": peak_rss_bytes() / 2**20,
    }
    if dev.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out | {"model": str(result.model_path)}


def measure(device: str = "auto", quick: bool = False, sam: str = "", language: str = "") -> dict:
    """The figures of one run in this process (``benchmark`` runs it in a fresh one)."""
    dev = resolve_device(device)
    size, steps = (64, 2) if quick else (256, 3)
    with tempfile.TemporaryDirectory(prefix="semanticsplat-bench-train-") as tmp:
        work = Path(tmp)
        stand_in = not (sam and language)
        if stand_in:
            files = save_released_stand_ins(work)
            specs = (f"vit_b:{files['sam']}", f"open_clip:ViT-B-16:{files['clip']}")
        else:
            specs = (sam, language)
        write_synthetic_scene(work / "data", 0, size, size, views_per_scene=4)
        figures: dict[str, Any] = {
            "device": str(dev), "resolution": [size, size], "model": "paper",
            "teachers": list(specs) if not stand_in else ["vit_b (random)", "ViT-B-16 (random)"],
        }  # fmt: skip
        figures["cache"] = _cache(work / "data", work / "cache", *specs, size, dev)
        stage1 = _stage(1, work, specs, size, steps, dev)
        stage2 = _stage(2, work, specs, size, steps, dev, init=stage1.pop("model"))
        stage2.pop("model")
        figures["stage1"], figures["stage2"] = stage1, stage2
    return figures


if __name__ == "__main__":
    _device, _size, _sam, _language = sys.argv[1:5]
    print(json.dumps(measure(_device, _size == "quick", _sam, _language)))
