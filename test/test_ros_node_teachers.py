"""semanticsplat_node on the simulated stereo rig with the released teacher architectures.

segment_anything vit_b (``sam_checkpoint: vit_b:PATH``) and open_clip ViT-B-16
(``clip_checkpoint: open_clip:ViT-B-16:PATH``, ``text_encoder: auto`` = CLIP's text tower), their
random weights saved as files (conftest's ``released``); the model is built with random weights
at the teachers' widths (``random_weights``: SAM 256, language 512). The rig and the node run as
processes (``quality_graph.running_graph``, with this file's parameters); the probe calls both
query services. Plumbing, not quality: every answer must be well formed, at the camera's
resolution, finite, and the point prompt's object must hold the prompted pixel.

Cost: SAM vit_b embeds each view at 1024x1024 on every encode (about a minute per stereo set on
two CPU cores), so the node encodes once (``rate_limit_hz``) and the services answer on that
scene without waiting for the next encode to release the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quality_graph import CAMERAS, graph_yaml, running_graph
from rcl_interfaces.srv import GetParameters

from semanticsplat_msgs.srv import MapFile, QueryText, SegmentPoint
from semanticsplat_ros.mapping.io import read_map
from semanticsplat_ros.ros.conversions import cloud_to_semantic, image_to_numpy

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NODE = "/semanticsplat_node"
W, H = 64, 48  # sim rig images = model input: no resize, the smallest input the model takes
RATE_HZ = 2.0


def _params_yaml(released: dict[str, Path]):
    """The ``params_yaml`` of ``running_graph``: this test's parameters."""
    node = {
        "model_checkpoint": None,
        "random_weights": True,
        "sam_checkpoint": f"vit_b:{released['sam']}",
        "clip_checkpoint": f"open_clip:ViT-B-16:{released['clip']}",
        "text_encoder": "auto",
        "device": "cpu",
        "torch_threads": 0,
        "input_width": W,
        "input_height": H,
        "rate_limit_hz": 0.001,
    }
    rig = {"rate_hz": RATE_HZ, "width": W, "height": H}
    return lambda path, loop_s: graph_yaml(path, loop_s, node=node, rig=rig)


@pytest.fixture(scope="module")
def live(released, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teachers")
    params = _params_yaml(released)
    with running_graph(tmp, loop_s=1.0 / RATE_HZ, frames=1, params_yaml=params) as graph:
        yield graph


def _mask(segment, camera: str) -> np.ndarray:
    msg = segment.masks[list(segment.camera_names).index(camera)]
    assert (msg.encoding, msg.width, msg.height) == ("mono8", W, H)
    assert msg.header.frame_id == f"{camera}_optical_frame"
    mask = image_to_numpy(msg)
    assert set(np.unique(mask)) <= {0, 255}
    return mask == 255


@pytest.mark.real_architectures
@pytest.mark.timeout(480)
def test_vit_b_and_vit_b_16_teachers_answer_both_services(live, released, tmp_path):
    # The node runs with the teachers it was given.
    names = ["sam_checkpoint", "clip_checkpoint", "text_encoder", "random_weights"]
    get = live.node.create_client(GetParameters, f"{NODE}/get_parameters")
    values = live.call(get, GetParameters.Request(names=names)).values
    assert [v.string_value for v in values[:3]] == [
        f"vit_b:{released['sam']}",
        f"open_clip:ViT-B-16:{released['clip']}",
        "auto",
    ]
    assert values[3].bool_value

    # Text query: CLIP's text tower against the 512-d language field.
    query = live.node.create_client(QueryText, f"{NODE}/query_text")
    res = live.call(query, QueryText.Request(texts=["a chair", "the floor"], threshold=0.01))
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["a chair", "the floor"]
    for s in res.segments:
        assert list(s.camera_names) == list(CAMERAS)
        assert s.header.frame_id == "world" and s.points.header.frame_id == "world"
        assert np.isfinite(s.score) and 0.0 <= s.score <= 1.0
        counts = [int(_mask(s, c).sum()) for c in CAMERAS]
        assert list(s.pixel_counts) == counts
        pts = cloud_to_semantic(s.points)
        assert np.all(np.isfinite(pts.xyz)) and len(pts.xyz) <= sum(counts)
    # Nearly every pixel scores above a threshold this low: the answer is not empty.
    assert sum(sum(s.pixel_counts) for s in res.segments) > 0

    # Pixel prompt: SAM vit_b's mask decoder on the rendered 256-d segmentation embedding.
    seg = live.node.create_client(SegmentPoint, f"{NODE}/segment_point")
    u, v = 40, 20
    req = SegmentPoint.Request(
        prompt_type=SegmentPoint.Request.PIXEL, camera_name="head_left", u=float(u), v=float(v)
    )
    res = live.call(seg, req)
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["small", "medium", "large"]
    small, medium, large = (_mask(s, "head_left") for s in res.segments)
    # segment_refinement object: the large level is the prompted pixel's class region, and the
    # decoder's small / medium masks (empty ones allowed: random weights) are clipped to it.
    assert large[v, u] and large.sum() == res.segments[2].pixel_counts[0]
    assert not (small & ~large).any() and not (medium & ~large).any()
    for s in res.segments:
        assert s.header.frame_id == "world" and s.points.header.frame_id == "world"
        assert np.isfinite(s.score) and 0.0 <= s.score <= 1.0
        pts = cloud_to_semantic(s.points)
        c = np.array([s.centroid.x, s.centroid.y, s.centroid.z])
        assert np.all(np.isfinite(c)) == bool(len(pts.xyz)), (c, len(pts.xyz))
        assert s.box.size.x >= 0 and s.box.size.y >= 0 and s.box.size.z >= 0
    assert len(cloud_to_semantic(res.segments[2].points).xyz) > 0  # the prompted object in 3D

    # What the node loaded: its map is in CLIP ViT-B-16's 512-d text space.
    save = live.node.create_client(MapFile, f"{NODE}/save_map")
    saved = live.call(save, MapFile.Request(path=str(tmp_path / "map.ply")))
    assert saved.success, saved.message
    identity = read_map(tmp_path / "map.ply").identity
    assert (identity.text_encoder, identity.feature_dim) == ("open_clip:ViT-B-16", 512)
    assert identity.model == "random-weights"
