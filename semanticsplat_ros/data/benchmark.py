"""``semanticsplat bench data``: scene generation and ray-casting times (median after warm-up),
for the classic world and for the varied one (its shadows, lamps, ambient occlusion, photo
textures and camera effects on)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import rig_cameras
from semanticsplat_ros.data.styled import styled_scene
from semanticsplat_ros.data.synthetic import ViewSampling, make_example
from semanticsplat_ros.data.world import make_scene
from semanticsplat_ros.data.world_varied import make_varied_scene

TYPICAL_SEED = 100_025
"""A validation scene of typical size (42 primitives; the mean over val seeds is 41)."""


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(device: str = "auto", quick: bool = False) -> dict:
    """Times in seconds: ``render_2x128_s`` (2 stereo views at 128×128) and more."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    repeats = 5 if quick else 20
    scene = make_scene(TYPICAL_SEED)
    c2w, K = rig_cameras(scene, "stereo", 3.0, 128, 128)
    c2w, K = c2w.to(device), K.to(device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def render_2x128() -> None:
        render_views(scene, c2w, K, 128, 128)
        sync()

    varied = styled_scene(TYPICAL_SEED, "varied")
    vc2w, vK = (x.to(device) for x in rig_cameras(varied, "stereo", 3.0, 128, 128))

    def render_varied_2x128() -> None:
        render_views(varied, vc2w, vK, 128, 128)
        sync()

    varied_sampling = ViewSampling(style="varied")

    result: dict = {
        "device": device,
        "threads": torch.get_num_threads(),
        "seed": TYPICAL_SEED,
        "num_primitives": scene.num_primitives,
        "render_2x128_s": _median_time(render_2x128, repeats),
        "make_scene_s": _median_time(lambda: make_scene(TYPICAL_SEED), repeats),
        "make_example_2c2t_64_s": _median_time(
            lambda: make_example(TYPICAL_SEED, 64, 64, num_context=2, num_target=2), repeats
        ),
        "varied_num_primitives": varied.num_primitives,
        "varied_render_2x128_s": _median_time(render_varied_2x128, repeats),
        "make_varied_scene_s": _median_time(lambda: make_varied_scene(TYPICAL_SEED), repeats),
        "make_example_varied_2c2t_64_s": _median_time(
            lambda: make_example(
                TYPICAL_SEED, 64, 64, num_context=2, num_target=2, sampling=varied_sampling
            ),
            repeats,
        ),
    }
    if not quick:
        c4, k4 = rig_cameras(scene, "ring4", 3.0, 256, 256)
        c4, k4 = c4.to(device), k4.to(device)

        def render_4x256() -> None:
            render_views(scene, c4, k4, 256, 256)
            sync()

        result["render_4x256_s"] = _median_time(render_4x256, 10)
    result["target_render_2x128_s"] = 0.05
    return result
