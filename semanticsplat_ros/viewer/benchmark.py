"""``semanticsplat bench viewer``: encoding with the browser viewer on against off, one run.

The node's inference loop without ROS: the bundled stereo model (``small_stereo``, the demo's
96x72 input) encodes the sim rig's stereo sets one after another, each scene fused into a
``SemanticMap``. Rounds alternate three phases of ``sets_per_phase`` sets each, so that any drift
of the machine's load hits all three alike:

- ``off``: nothing is handed to the viewer and no client is connected (as ``viewer_port`` 0);
- ``on``: every scene, the map and the figures go to the ``SceneViewer`` (as the node does) and
  a websocket client speaking viser's protocol receives everything a browser would;
- ``hanging``: the same, but the client connects and never reads (a browser tab that hangs).

Only ``pipeline.encode`` is timed; the viewer's thread converts and sends concurrently, in the
same process. ``encode_ratio_on`` / ``encode_ratio_hanging`` are the medians' ratios to ``off``
(the issue asks for <= 1.10). A browser on this machine also renders the splats in software
(SwiftShader), which is a separate process and not the node's cost: it is not run here.
"""

from __future__ import annotations

import statistics
import threading
import time
from contextlib import contextmanager
from typing import Any

import torch
import viser
import websockets.sync.client as ws_client

from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.mapping import MapConfig, map_for_model
from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.viewer.callbacks import pipeline_point_prompt, pipeline_text_query
from semanticsplat_ros.viewer.server import SceneViewer, ViewerConfig

PHASES = ("off", "on", "hanging")


class ReadingClient:
    """A websocket client of the viewer that reads every message (bytes counted)."""

    def __init__(self, url: str) -> None:
        self.bytes = 0
        self.messages = 0
        self._stop = threading.Event()
        self._ws = ws_client.connect(
            url, subprotocols=[f"viser-v{viser.__version__}"], max_size=None, open_timeout=30
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:  # closed
                return
            self.bytes += len(message)
            self.messages += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._ws.close()


@contextmanager
def _client(phase: str, url: str):
    if phase == "off":
        yield None
        return
    if phase == "on":
        client = ReadingClient(url)
        try:
            yield client
        finally:
            client.close()
        return
    hung = ws_client.connect(url, subprotocols=[f"viser-v{viser.__version__}"], open_timeout=30)
    try:
        yield None  # connected, never read
    finally:
        hung.close()


def _frames(quick: bool) -> list[list[CameraFrame]]:
    rig = SimRig(SimRigConfig())
    sets = []
    for k in range(2 if quick else 6):
        t = 0.4 * k
        frame = rig.render(t)
        sets.append(
            [
                CameraFrame(name, frame.images[i], frame.K[i], frame.c2w[i], stamp=t)
                for i, name in enumerate(rig.cameras)
            ]
        )
    return sets


def benchmark(device: str = "auto", quick: bool = False) -> dict[str, Any]:
    """Encode seconds per set with the viewer off, on and with a hanging client."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    rounds, per_phase = (2, 3) if quick else (6, 8)
    pipeline = SemanticSplatPipeline(
        PipelineConfig(
            model_checkpoint="small_stereo", input_width=96, input_height=72, device=device
        )
    )
    sets = _frames(quick)
    warmup = [pipeline.encode(frames) for frames in sets[:2]]
    smap = map_for_model(MapConfig(), pipeline.model, "small_stereo", "minilm", pipeline.classes)
    for scene in warmup:
        smap.fuse(scene, pipeline.class_embeddings)
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    received = {"bytes": 0, "messages": 0}
    viewer = SceneViewer(
        ViewerConfig(port=0), pipeline_text_query(pipeline), pipeline_point_prompt(pipeline)
    )
    url = f"ws://127.0.0.1:{viewer.port}"
    k = 0
    started = time.perf_counter()
    try:
        for _ in range(rounds):
            for phase in PHASES:
                with _client(phase, url) as client:
                    for _ in range(per_phase):
                        frames = sets[k % len(sets)]
                        k += 1
                        t0 = time.perf_counter()
                        scene = pipeline.encode(frames)
                        times[phase].append(time.perf_counter() - t0)
                        smap.fuse(scene, pipeline.class_embeddings)
                        if phase != "off":
                            viewer.update_scene(scene)
                            viewer.update_map(smap)
                            viewer.update_stats({"encode_s": times[phase][-1], "sets": k})
                    viewer.flush(30.0)
                    if client is not None:
                        received["bytes"] += client.bytes
                        received["messages"] += client.messages
        timings = dict(viewer.timings)
    finally:
        viewer.stop()
    median = {p: statistics.median(times[p]) for p in PHASES}
    return {
        "encode_s_median_off": round(median["off"], 4),
        "encode_s_median_on": round(median["on"], 4),
        "encode_s_median_hanging": round(median["hanging"], 4),
        "encode_ratio_on": round(median["on"] / median["off"], 3),
        "encode_ratio_hanging": round(median["hanging"] / median["off"], 3),
        "viewer_convert_s": round(timings.get("convert_s", float("nan")), 4),
        "viewer_draw_s": round(timings.get("draw_s", float("nan")), 4),
        "viewer_map_s": round(timings.get("map_s", float("nan")), 4),
        "client_mib_received": round(received["bytes"] / 2**20, 2),
        "client_messages": received["messages"],
        "map_voxels": len(smap),
        "seconds": round(time.perf_counter() - started, 1),
        "config": {
            "model": "small_stereo",
            "input": "2x96x72",
            "rounds": rounds,
            "sets_per_phase": per_phase,
            "device": str(pipeline.device),
            "torch_threads": torch.get_num_threads(),
        },
    }
