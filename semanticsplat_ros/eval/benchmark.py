"""``semanticsplat bench eval``: the evaluation protocols on a few hold-out scenes with the
default checkpoint — how long evaluation takes (per scene, feed-forward part) and the headline
figures it gives, so ``make bench`` shows speed and quality side by side.

The full tables come from ``semanticsplat eval`` (more scenes); these figures are the same
protocols on fewer scenes, so they are noisier.
"""

from __future__ import annotations

import time

import torch

FULL_SEEDS = range(200_000, 200_004)
QUICK_SEEDS = range(200_000, 200_001)

HEADLINE_KEYS = (
    "nvs.psnr",
    "nvs.ssim",
    "depth.abs_rel",
    "language.target.ours.miou",
    "language.target.teacher.miou",
    "language.consistency.ours",
    "language.consistency.teacher",
    "promptable.target.ours.miou",
    "promptable.target.teacher.miou",
)


def benchmark(device: str = "auto", quick: bool = False) -> dict:
    from semanticsplat_ros.data.synthetic import SyntheticDataset
    from semanticsplat_ros.device import resolve_device
    from semanticsplat_ros.eval.protocols import ProtocolSettings, evaluate_model, flatten
    from semanticsplat_ros.eval.teachers import class_queries
    from semanticsplat_ros.model.bundled import DEFAULT_MODEL_CHECKPOINT
    from semanticsplat_ros.model.semanticsplat import load_model, trained_near
    from semanticsplat_ros.teachers.lseg import load_tiny_lseg
    from semanticsplat_ros.teachers.sam import load_tiny_sam

    dev = resolve_device(device)
    seeds = QUICK_SEEDS if quick else FULL_SEEDS
    grid = 8 if quick else 32
    model, meta = load_model(DEFAULT_MODEL_CHECKPOINT, map_location=dev)
    trained = meta.get("train_config", {}) if isinstance(meta, dict) else {}
    h, w = int(trained.get("height", 64)), int(trained.get("width", 64))
    sam = load_tiny_sam().to(dev).eval()
    lang = load_tiny_lseg().to(dev).eval()
    class_embeddings = lang.text_encoder.encode(class_queries(None)).to(dev)
    dataset = SyntheticDataset(
        seeds, height=h, width=w, num_context=2, num_target=2, near=trained_near(meta)
    )
    start = time.perf_counter()
    results = evaluate_model(
        model, dataset, sam, lang, class_embeddings, ProtocolSettings(grid=grid),
        device=dev, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    flat = flatten(results)
    return {
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "checkpoint": DEFAULT_MODEL_CHECKPOINT.name,
        "seeds": f"{seeds.start}:{seeds.stop}",
        "resolution": [h, w],
        "grid": grid,
        "eval_s_per_scene": seconds / len(dataset),
        "feedforward_s": results.get("feedforward_s"),
        **{key: flat.get(key) for key in HEADLINE_KEYS},
    }
