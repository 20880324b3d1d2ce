"""The node quality test's two measures, in-process, over many frames of the simulated stereo rig.

For frames of a hold-out scene (the node quality test's: seed 200005, 128x96 images, 96x72 model
input by default):

* depth: the median relative error of the depth image the node publishes (``depth_image``,
  both cameras) against the true z-depth, along each pixel's ray;
* cloud: the issue's measure of the semantic cloud (``semantic_cloud``, both cameras): each
  point's distance to the nearest true surface (the true depth maps of both cameras, unprojected
  at the camera resolution) over its distance to the camera (``metrics.surface_distance_ratio``);
* pixel prompt: a pixel at the centre of the largest chair region of the left camera is prompted
  twice: through ``SemanticSplatPipeline.segment_pixel`` (the SAM decoder on our rendered
  segmentation field, refined with the labels as ``--refinement`` says, default object: what
  ``~/segment_point`` answers) and through the SAM teacher on the image itself. Each takes the
  best of its three masks against the true chair region, as the node quality test does.

    .venv/bin/python tools/stereo_quality.py [--checkpoint PATH] [--frames 20] [--input 96x72]
        [--seed 200005] [--refinement object|class|none]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.data.splits import parse_seeds
from semanticsplat_ros.geometry.projection import unproject_depth
from semanticsplat_ros.metrics import surface_distance_ratio
from semanticsplat_ros.pipeline import (
    SEGMENT_REFINEMENTS,
    CameraFrame,
    PipelineConfig,
    SemanticSplatPipeline,
)

W, H, IW, IH = 128, 96, 96, 72


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _cloud_errors(pipeline: SemanticSplatPipeline, scene, frame) -> np.ndarray:
    """The semantic cloud's points: distance to the true surfaces over distance to the camera."""
    cloud = pipeline.semantic_cloud(scene, stride=1)
    surface = []
    for i in range(len(frame.images)):
        depth = torch.as_tensor(frame.depth[i], dtype=torch.float32)
        K, c2w = (torch.as_tensor(m, dtype=torch.float32) for m in (frame.K[i], frame.c2w[i]))
        pts = unproject_depth(depth, K, c2w)
        surface.append(pts[depth > 0].numpy())
    centres = np.stack([np.asarray(c)[:3, 3] for c in frame.c2w])
    return surface_distance_ratio(cloud.xyz, centres, np.concatenate(surface))


def _rig_frames(seeds: range, frames: int):
    """(seed, t, stereo rig frame) for ``frames`` instants 1.5 s apart in each scene."""
    for seed in seeds:
        rig = SimRig(SimRigConfig(rig="stereo", scene_seed=seed, width=W, height=H))
        for t in 0.5 + 1.5 * np.arange(frames):
            yield seed, float(t), rig.frame_at(float(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        default="small_stereo",
        help="model: a file or a bundled name (default: small_stereo, config/bringup.yaml's)",
    )
    parser.add_argument("--frames", type=int, default=20, help="frames, 1.5 s apart")
    parser.add_argument(
        "--seed",
        default="200005",
        help="scene seed, or seeds START:END (each scene's frames in turn)",
    )
    parser.add_argument("--input", default=f"{IW}x{IH}", help="model input WxH (the node's)")
    parser.add_argument(
        "--refinement",
        choices=SEGMENT_REFINEMENTS,
        default="object",
        help="segment_refinement: how the prompt's masks use the labels (default: object, the node's)",
    )
    args = parser.parse_args()
    iw, ih = (int(x) for x in args.input.lower().split("x"))
    torch.set_num_threads(1)
    chair = CLASS_NAMES.index("chair")
    pipeline = SemanticSplatPipeline(
        PipelineConfig(
            model_checkpoint=args.checkpoint,
            input_width=iw,
            input_height=ih,
            segment_refinement=args.refinement,
        )
    )
    ours, teacher, depth_errors, cloud_errors, labelled_chair = [], [], [], [], []
    label_hits = np.zeros(2)  # pixels labelled as the truth, pixels with a true class
    seeds = parse_seeds(args.seed)
    for seed, t, frame in _rig_frames(seeds, args.frames):
        frames = [
            CameraFrame(f"cam{i}", frame.images[i], frame.K[i], frame.c2w[i], float(t))
            for i in range(len(frame.images))
        ]
        scene = pipeline.encode(frames)
        errors = []
        for i in range(len(frames)):
            gt, valid = frame.depth[i], frame.depth[i] > 0
            errors.append(np.abs(scene.depth_image(i)[valid] - gt[valid]) / gt[valid])
        depth_errors.append(np.concatenate(errors))
        label_images = [scene.label_image(i) for i in range(len(frames))]
        for labels, truth in zip(label_images, frame.labels, strict=True):
            valid = truth != 255
            label_hits += ((labels[valid] == truth[valid]).sum(), valid.sum())
        cloud_errors.append(_cloud_errors(pipeline, scene, frame))
        line = (
            f"{f'seed {seed} ' if len(seeds) > 1 else ''}t={t:5.1f} s"
            f"  depth {np.median(depth_errors[-1]):.3f}  cloud {np.median(cloud_errors[-1]):.3f}"
        )
        regions, n = ndimage.label(frame.labels[0] == chair)
        if n == 0:
            print(line, flush=True)
            continue
        sizes = ndimage.sum(np.ones_like(regions), regions, range(1, n + 1))
        k = int(np.argmax(sizes)) + 1
        if sizes[k - 1] < 0.01 * regions.size:
            print(line, flush=True)
            continue
        target = regions == k
        v, u = np.unravel_index(
            int(np.argmax(ndimage.distance_transform_edt(target))), target.shape
        )
        segments = pipeline.segment_pixel(scene, "cam0", u + 0.5, v + 0.5)
        ours.append(max(_iou(s.masks["cam0"], target) for s in segments))
        labelled_chair.append(bool(label_images[0][v, u] == chair))
        h, w = scene.depth.shape[-2:]
        prompt = torch.tensor([[[(u + 0.5) * w / W, (v + 0.5) * h / H]]])
        with torch.no_grad():
            embedding = pipeline.sam.embed(scene.images[:1])
            logits = pipeline.sam.predict_masks_at(embedding, prompt, (h, w)).logits[0, 0]
        masks = [scene.resize_to_camera((m > 0).to(torch.uint8), 0).astype(bool) for m in logits]
        teacher.append(max(_iou(m, target) for m in masks))
        print(f"{line}  prompt IoU ours {ours[-1]:.2f} teacher {teacher[-1]:.2f}", flush=True)
    all_errors = np.concatenate(depth_errors)
    print(
        f"{len(depth_errors)} frames: depth median relative error {np.median(all_errors):.3f}"
        f" (mean {all_errors.mean():.3f}); per-frame medians"
        f" {np.percentile([np.median(e) for e in depth_errors], [10, 50, 90]).round(3).tolist()}"
        " (p10 p50 p90)"
    )
    all_cloud = np.concatenate(cloud_errors)
    print(
        f"{len(cloud_errors)} frames: cloud distance to the true surfaces / distance to the camera:"
        f" median {np.median(all_cloud):.3f} (mean {all_cloud.mean():.3f}); per-frame medians"
        f" {np.percentile([np.median(e) for e in cloud_errors], [10, 50, 90]).round(3).tolist()}"
        " (p10 p50 p90)"
    )
    print(
        f"{len(depth_errors)} frames: labels agree with the true classes on"
        f" {label_hits[0] / label_hits[1]:.1%} of the pixels (both cameras; eval's Acc)"
    )
    if not ours:
        raise SystemExit("no frame shows a chair covering 1% of the left image")
    print(
        f"{len(ours)} frames: mean best-of-3 IoU ours {np.mean(ours):.3f}, teacher"
        f" {np.mean(teacher):.3f}; ours >= 0.5 in {np.mean(np.array(ours) >= 0.5):.0%} of frames;"
        f" the prompted pixel labelled chair in {np.mean(labelled_chair):.0%}"
    )


if __name__ == "__main__":
    main()
