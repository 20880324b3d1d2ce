"""``semanticsplat cache-teachers``: a dataset's teacher features, computed once (``frame_cache``).

Example (then ``semanticsplat train --stage 1 --data DIR --teacher-cache OUT ...``)::

    semanticsplat cache-teachers --data data/own --sam vit_b:/w/sam_vit_b_01ec64.pth \\
        --language open_clip:ViT-B-16:/w/open_clip_vit_b_16.bin --out data/own_teachers

Before computing anything it prints what it will write and the estimated size on disk; run it
again after an interruption and it continues at the first missing shard. Bad input (a missing
folder or file, a bad spec, a cache of other teachers at ``--out``) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from semanticsplat_ros.device import DEVICES, resolve_device
from semanticsplat_ros.teachers.frame_cache import (
    FIELDS,
    frame_features,
    iter_scenes,
    plan_frame_cache,
    write_frame_cache,
)
from semanticsplat_ros.teachers.spec import (
    LANGUAGE_SPEC_FORMS,
    SAM_SPEC_FORMS,
    LanguageSpec,
    SamSpec,
    load_language_teacher,
    load_sam_teacher,
    spec_to_checkpoint_dict,
)

PROG = "semanticsplat cache-teachers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of ScanNet-layout scenes")
    parser.add_argument("--sam", default="tiny", help=f"SAM teacher: {SAM_SPEC_FORMS}")
    parser.add_argument(
        "--language", default="tiny_lseg", help=f"language teacher: {LANGUAGE_SPEC_FORMS}"
    )
    parser.add_argument("--out", help="cache folder (default: DATA/teacher_cache)")
    parser.add_argument("--height", type=int, default=64, help="training image rows (pixels)")
    parser.add_argument("--width", type=int, default=64, help="training image columns (pixels)")
    parser.add_argument(
        "--hcam-points-per-side",
        type=int,
        default=8,
        help="point grid of SAM's automatic masks (the loss's hcam_points_per_side)",
    )
    parser.add_argument("--frames-per-shard", type=int, default=64, help="frames per shard file")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per teacher forward")
    parser.add_argument(
        "--max-shards", type=int, help="stop after writing this many shards (resume later)"
    )
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:<index>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cache_teachers(args: argparse.Namespace) -> int:
    """The command's work; returns the number of shards written."""
    for name in ("height", "width", "hcam_points_per_side", "frames_per_shard", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    sam_spec, language_spec = SamSpec.parse(args.sam), LanguageSpec.parse(args.language)
    scenes = list(iter_scenes(args.data))
    out = Path(args.out) if args.out else Path(args.data) / "teacher_cache"
    device = resolve_device(args.device)
    start = time.perf_counter()
    sam = load_sam_teacher(sam_spec, device)
    language = load_language_teacher(language_spec, device).teacher
    # One frame through both teachers gives every stored shape (and fails fast on bad weights).
    probe = scenes[0].load_views([0], args.height, args.width).images.to(device)
    got = frame_features(probe, sam, language, args.hcam_points_per_side)
    shapes = {f: [int(x) for x in got[f].shape[1:]] for f in FIELDS}
    plan = plan_frame_cache(
        scenes,
        out,
        spec_to_checkpoint_dict(sam_spec, language_spec),
        shapes,
        args.height,
        args.width,
        args.hcam_points_per_side,
        args.frames_per_shard,
    )
    frames = sum(len(s) for s in scenes)
    shards = sum(-(-len(s) // args.frames_per_shard) for s in scenes)  # ceil division per scene
    sys.stdout.write(
        f"teacher cache {out}: {len(scenes)} scenes, {frames} frames at "
        f"{args.height}x{args.width}, {shards} shards ({len(plan.missing)} to write); "
        f"about {plan.total_bytes / 2**20:.1f} MiB in all "
        f"(sam {shapes['sam']}, language {shapes['lang']} per frame, float16); "
        f"teachers loaded in {time.perf_counter() - start:.1f} s\n"
    )
    sys.stdout.flush()
    t0 = time.perf_counter()
    written = write_frame_cache(
        plan,
        scenes,
        sam,
        language,
        device,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        max_shards=args.max_shards,
    )
    left = len(plan.missing) - written
    state = "complete" if left == 0 else f"{left} shards left (run again to resume)"
    sys.stdout.write(f"wrote {written} shards in {time.perf_counter() - t0:.1f} s; cache {state}\n")
    return written


def run(args: argparse.Namespace) -> int:
    try:
        cache_teachers(args)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2
    return 0


__all__ = ["add_arguments", "cache_teachers", "run"]
