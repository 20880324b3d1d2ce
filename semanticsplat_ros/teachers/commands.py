"""``semanticsplat train-teachers``: train the tiny default SAM and LSeg teachers.

Example (the committed checkpoints; see assets/checkpoints/README.md)::

    semanticsplat train-teachers --seeds 0:300 --steps 1200 --out semanticsplat_ros/assets/checkpoints
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from tqdm import tqdm

from semanticsplat_ros.teachers.defaults import CHECKPOINTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default="0:300", help="training scenes START:END or a split")
    parser.add_argument("--steps", type=int, default=1200, help="optimizer steps per teacher")
    parser.add_argument("--out", type=Path, default=CHECKPOINTS, help="checkpoint folder")
    parser.add_argument(
        "--which", choices=("sam", "lseg", "both"), default="both", help="teachers to train"
    )
    parser.add_argument("--size", type=int, default=64, help="training image side in pixels")
    parser.add_argument("--views-per-scene", type=int, default=2, help="views rendered per scene")
    parser.add_argument(
        "--style",
        default="classic",
        help="world styles of the views, comma-separated (classic, varied): the pool holds"
        " --views-per-scene views of every scene in each",
    )
    parser.add_argument(
        "--pool",
        type=Path,
        default=None,
        help="cache file for the rendered views (reused if present)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--init-sam",
        type=Path,
        default=None,
        help="continue training from this tiny SAM checkpoint",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument(
        "--vocabulary",
        choices=("names", "open"),
        default="names",
        help="tiny LSeg texts: the class names only (default), or the open class vocabulary",
    )
    parser.add_argument(
        "--vocabulary-file",
        type=Path,
        default=None,
        help="class vocabulary YAML for --vocabulary open (default: the shipped one)",
    )
    parser.add_argument(
        "--texts-per-step",
        type=int,
        default=1,
        help="--vocabulary open: train texts sampled per class per step",
    )


def _bar(total: int, desc: str):
    bar = tqdm(total=total, desc=desc, dynamic_ncols=True, mininterval=2.0)

    def progress(step: int, stats: dict[str, float]) -> None:
        bar.update(1)
        if stats and step % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()}, refresh=False)

    return bar, progress


def run(args: argparse.Namespace) -> int:
    from semanticsplat_ros.data.splits import parse_seeds
    from semanticsplat_ros.data.styled import check_style
    from semanticsplat_ros.teachers.lseg import TinyLSegConfig, save_tiny_lseg
    from semanticsplat_ros.teachers.sam import TinySamConfig, save_tiny_sam
    from semanticsplat_ros.teachers.train import (
        TinyLSegTraining,
        TinySamTraining,
        load_pool,
        render_pool,
        save_pool,
        train_tiny_lseg,
        train_tiny_sam,
    )

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    styles = tuple(check_style(s.strip()) for s in args.style.split(","))
    if "held-out" in styles:
        raise ValueError("--style held-out is the evaluation's: train on classic and varied")
    if args.pool is not None and args.pool.is_file():
        pool = load_pool(args.pool)
        print(f"loaded {len(pool)} views from {args.pool}")
    else:
        t0 = time.time()
        bar, progress = _bar(len(seeds) * len(styles), "render views")
        pool = render_pool(seeds, args.size, args.size, args.views_per_scene, progress, styles)
        bar.close()
        print(f"rendered {len(pool)} views in {time.time() - t0:.0f} s")
        if args.pool is not None:
            save_pool(pool, args.pool)
    meta = {
        "seeds": args.seeds,
        "styles": list(styles),
        "steps": args.steps,
        "views": len(pool),
        "seed": args.seed,
        "lr": args.lr,
        "init_sam": str(args.init_sam) if args.init_sam else None,
    }
    if args.which in ("sam", "both"):
        from semanticsplat_ros.teachers.sam import load_tiny_sam

        init = load_tiny_sam(args.init_sam) if args.init_sam is not None else None
        config = TinySamConfig(image_size=args.size)
        bar, progress = _bar(args.steps, "tiny SAM")
        training = TinySamTraining(steps=args.steps, seed=args.seed, lr=args.lr)
        teacher, stats = train_tiny_sam(pool, config, training, progress, init)
        bar.close()
        path = save_tiny_sam(args.out / "tiny_sam.pt", teacher.sam, config, {**meta, **stats})
        print(f"tiny SAM: {stats} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.which in ("lseg", "both"):
        from semanticsplat_ros.teachers.text import shared_minilm

        config = TinyLSegConfig(image_size=args.size)
        vocab = {"vocabulary": args.vocabulary, "texts_per_step": args.texts_per_step}
        if args.vocabulary_file is not None:
            vocab["vocabulary_file"] = str(args.vocabulary_file)
        training = TinyLSegTraining(steps=args.steps, seed=args.seed, lr=args.lr, **vocab)
        bar, progress = _bar(args.steps, "tiny LSeg")
        model, stats = train_tiny_lseg(pool, shared_minilm(), config, training, progress)
        bar.close()
        vocab["vocabulary_file"] = training.vocabulary_file
        path = save_tiny_lseg(args.out / "tiny_lseg.pt", model, {**meta, **vocab, **stats})
        print(f"tiny LSeg: {stats} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
