"""The README's viewer picture: the bundled model's sim scene in ``SceneViewer``, screenshotted
by a real headless Chromium (``semanticsplat_ros.viewer.screenshot``, the test's code).

    .venv/bin/python tools/viewer_screenshot.py [--out docs/images/viewer.png]
        [--mode rgb|class|segmentation|language|query] [--query chair] [--size 1200x760]

``--query`` runs a text query first (its heat, points and box are drawn; the mode switches to
``query`` unless ``--mode`` says otherwise). Needs a headless Chromium: .ci/install-browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.viewer import (
    SceneViewer,
    ViewerConfig,
    pipeline_point_prompt,
    pipeline_text_query,
)
from semanticsplat_ros.viewer.screenshot import save_screenshot
from semanticsplat_ros.viewer.splats import COLOR_MODES


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/viewer.png"))
    parser.add_argument("--mode", choices=COLOR_MODES, default=None)
    parser.add_argument("--query", default="chair", help="text query to run first ('' = none)")
    parser.add_argument("--size", type=parse_size, default=(1200, 760))
    parser.add_argument("--seed", type=int, default=0, help="sim rig scene seed")
    args = parser.parse_args()

    pipeline = SemanticSplatPipeline(
        PipelineConfig(model_checkpoint="small_stereo", input_width=96, input_height=72)
    )
    rig = SimRig(SimRigConfig(scene_seed=args.seed))
    frame = rig.render(0.0)
    frames = [
        CameraFrame(name, frame.images[i], frame.K[i], frame.c2w[i], stamp=0.0)
        for i, name in enumerate(rig.cameras)
    ]
    scene = pipeline.encode(frames)
    stats = {"rate_hz": 2.0, "latency_ms": round(1000 * scene.timings["total"], 1)}
    with SceneViewer(
        ViewerConfig(port=0),
        pipeline_text_query(pipeline),
        pipeline_point_prompt(pipeline),
        stats=stats,
    ) as viewer:
        viewer.update_scene(scene)
        viewer.flush()
        if args.query:
            print(viewer.run_text_query(args.query))
        if args.mode:
            viewer.set_mode(args.mode)
        viewer.flush()
        width, height = args.size
        save_screenshot(viewer.url, args.out, width, height, min_wait_s=3.0)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
