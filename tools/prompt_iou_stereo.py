"""Pixel-prompt IoU on the simulated stereo rig: ours vs the SAM teacher on the same frames.

For frames of a hold-out scene (the node quality test's: seed 200005, 128x96 images, 96x72 model
input), a pixel at the centre of the largest chair region of the left camera is prompted twice:
through ``SemanticSplatPipeline.segment_pixel`` (the SAM decoder on our rendered segmentation
field, what ``~/segment_point`` answers) and through the SAM teacher on the image itself. Each
takes the best of its three masks against the true chair region, as the node quality test does.

    .venv/bin/python tools/prompt_iou_stereo.py [--checkpoint PATH] [--frames 20]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.ros.sim_rig import SimRig, SimRigConfig

W, H, IW, IH = 128, 96, 96, 72


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="", help="model (default: the bundled one)")
    parser.add_argument("--frames", type=int, default=20, help="frames, 1.5 s apart")
    parser.add_argument("--seed", type=int, default=200005, help="scene seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chair = CLASS_NAMES.index("chair")
    rig = SimRig(SimRigConfig(rig="stereo", scene_seed=args.seed, width=W, height=H))
    pipeline = SemanticSplatPipeline(
        PipelineConfig(model_checkpoint=args.checkpoint, input_width=IW, input_height=IH)
    )
    ours, teacher = [], []
    for t in 0.5 + 1.5 * np.arange(args.frames):
        frame = rig.frame_at(float(t))
        regions, n = ndimage.label(frame.labels[0] == chair)
        if n == 0:
            continue
        sizes = ndimage.sum(np.ones_like(regions), regions, range(1, n + 1))
        k = int(np.argmax(sizes)) + 1
        if sizes[k - 1] < 0.01 * regions.size:
            continue
        target = regions == k
        v, u = np.unravel_index(
            int(np.argmax(ndimage.distance_transform_edt(target))), target.shape
        )
        frames = [
            CameraFrame(f"cam{i}", frame.images[i], frame.K[i], frame.c2w[i], float(t))
            for i in range(len(frame.images))
        ]
        scene = pipeline.encode(frames)
        segments = pipeline.segment_pixel(scene, "cam0", u + 0.5, v + 0.5)
        ours.append(max(_iou(s.masks["cam0"], target) for s in segments))
        h, w = scene.depth.shape[-2:]
        prompt = torch.tensor([[[(u + 0.5) * w / W - 0.5, (v + 0.5) * h / H - 0.5]]])
        with torch.no_grad():
            embedding = pipeline.sam.embed(scene.images[:1])
            logits = pipeline.sam.predict_masks(embedding, prompt, (h, w)).logits[0, 0]
        masks = [scene.resize_to_camera((m > 0).to(torch.uint8), 0).astype(bool) for m in logits]
        teacher.append(max(_iou(m, target) for m in masks))
        print(f"t={t:5.1f} s  ours {ours[-1]:.2f}  teacher {teacher[-1]:.2f}", flush=True)
    if not ours:
        raise SystemExit("no frame shows a chair covering 1% of the left image")
    print(
        f"{len(ours)} frames: mean best-of-3 IoU ours {np.mean(ours):.3f}, teacher"
        f" {np.mean(teacher):.3f}; ours >= 0.5 in {np.mean(np.array(ours) >= 0.5):.0%} of frames"
    )


if __name__ == "__main__":
    main()
