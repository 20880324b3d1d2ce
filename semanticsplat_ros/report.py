"""The demo's outputs from what it collected: figures, ``summary.json``, ``index.md``, the summary.

Pure: numpy arrays in (``Collected``, gathered from the running graph by
``ros.demo_client``), files out. Nothing here imports rclpy; ``ros.demo`` runs the graph, encodes
the same frames in-process (``pipeline``), writes ``scene.ply`` (``export``) and then calls
``write_report``.

Images are (H, W, 3) uint8 RGB; depth maps (H, W) float32 metres (z-depth, NaN / 0 = unknown);
label images (H, W) integer class ids (``data.classes``), ``UNKNOWN_LABEL`` = no class; masks
(H, W) bool. Stamps are ROS stamps in nanoseconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.metrics import relative_depth_errors
from semanticsplat_ros.pipeline import EncodedScene
from semanticsplat_ros.visualize import (
    RANDOM_WEIGHTS_LABEL,
    banner,
    depth_range,
    depth_to_rgb,
    draw_marker,
    image_grid,
    legend_strip,
    overlay_labels,
    overlay_mask,
    pca_rgb,
    save_png,
)

QUERIES: tuple[str, ...] = ("chair", "table", "couch", "bed")
"""Text queries sent to ``~/query_text``."""

QUERY_CLASSES: dict[str, str] = {"couch": "sofa", "sofa": "sofa", "desk": "table"}
"""Ground-truth class of a query text that is not a class name itself."""

PROMPT_CLASSES: tuple[str, ...] = ("chair", "table", "sofa", "bed", "others")
"""Classes tried, in order, for the pixel prompt (the first with enough pixels wins)."""

UNKNOWN_LABEL = 255
"""``gt_labels`` value of pixels with no class (sim_rig)."""

PLY_NAME = "scene.ply"
"""The in-process encode's Gaussians, written by the caller of ``write_report``."""

LABEL_ALPHA = 0.55
"""Opacity of the class colours over the image in label figures."""

MASK_DIM = 0.3
"""How much the outside of a service mask is darkened in its figure."""


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def query_class(text: str) -> str | None:
    """Ground-truth class name of a query text, or None if it names no class."""
    t = text.strip().lower()
    if t in CLASS_ID:
        return t
    return QUERY_CLASSES.get(t)


def safe_name(text: str) -> str:
    """A file-name token for a query text ("dining table" -> ``dining_table``)."""
    token = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return token or "query"


def interior_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of a pixel deep inside ``mask`` (the last pixels left by repeated 4-erosion,
    the one nearest their centroid). ValueError for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ValueError("interior_pixel needs a non-empty 2-D mask")
    while True:
        p = np.pad(m, 1, constant_values=False)
        eroded = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        if not eroded.any():
            break
        m = eroded
    rows, cols = np.nonzero(m)
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[k]), int(cols[k])


def pick_prompt_pixel(gt_labels: np.ndarray, min_fraction: float = 0.003) -> tuple[int, int, str]:
    """(row, col, class) of a pixel on an object: the first class of ``PROMPT_CLASSES`` that
    covers at least ``min_fraction`` of the (H, W) label image, else the image centre
    ("none")."""
    lab = np.asarray(gt_labels)
    for name in PROMPT_CLASSES:
        mask = lab == CLASS_ID[name]
        if mask.sum() >= max(1, min_fraction * lab.size):
            r, c = interior_pixel(mask)
            return r, c, name
    return lab.shape[0] // 2, lab.shape[1] // 2, "none"


def label_agreement(pred: np.ndarray, gt: np.ndarray, unknown: int = UNKNOWN_LABEL) -> float:
    """Fraction of pixels with a known ground-truth class whose predicted class equals it (NaN
    when no pixel has one). ValueError if the shapes differ."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"label shapes differ: predicted {p.shape}, ground truth {g.shape}")
    known = g != unknown
    if not known.any():
        return float("nan")
    return float((p[known].astype(np.int64) == g[known].astype(np.int64)).mean())


def depth_median_relative_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Median |pred - gt| / gt over pixels where both depths are finite and > 0 (NaN if there
    are none). Any shape, the same for both; ValueError if they differ."""
    rel, _ = relative_depth_errors(pred, gt)
    return float(np.median(rel)) if rel.size else float("nan")


def pooled_mask_iou(pred: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray]) -> float:
    """IoU of camera -> (H, W) masks, intersection and union pooled over the cameras both have
    (NaN when both are empty there). ValueError if a camera's two masks differ in shape."""
    inter = union = 0
    for cam, p in pred.items():
        if cam not in gt:
            continue
        pm, gm = np.asarray(p, dtype=bool), np.asarray(gt[cam], dtype=bool)
        if pm.shape != gm.shape:
            raise ValueError(f"camera {cam!r}: mask shapes differ: {pm.shape} vs {gm.shape}")
        inter += int((pm & gm).sum())
        union += int((pm | gm).sum())
    return inter / union if union else float("nan")


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _pooled(maps: Mapping[str, np.ndarray], cams: Sequence[str]) -> np.ndarray:
    return np.concatenate([maps[cam].ravel() for cam in cams])


# --------------------------------------------------------------------------------------------
# What the demo collects from the running graph (plain numpy, no messages)
# --------------------------------------------------------------------------------------------


@dataclass
class SegmentOut:
    """One Segment of a service response."""

    label: str
    score: float
    masks: dict[str, np.ndarray]
    """Camera -> (H, W) bool."""
    stamps: dict[str, int]
    """Camera -> stamp (ns) of the image the mask belongs to."""
    num_points: int


@dataclass
class CallOut:
    """One service round trip."""

    name: str
    success: bool
    message: str
    seconds: float
    segments: list[SegmentOut] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    """What was asked, as written to summary.json."""


@dataclass
class Collected:
    """Everything the demo took from the running graph, per camera name."""

    cameras: list[str]
    stamp_ns: int
    """Stamp of the first complete scene."""
    first_output_s: float
    """Seconds from starting the graph to the first complete scene."""
    images: dict[str, np.ndarray]
    """(H, W, 3) uint8 rig images at ``stamp_ns``."""
    K: dict[str, np.ndarray]
    """(3, 3) intrinsics, pixels."""
    c2w: dict[str, np.ndarray]
    """(4, 4) camera-to-fixed-frame poses from TF at ``stamp_ns``, metres."""
    depth: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    gt_depth: dict[str, np.ndarray]
    gt_labels: dict[str, np.ndarray]
    cloud_points: int
    gaussians: int
    diagnostics: dict[str, str]
    calls: list[CallOut]
    prompt: tuple[int, int, str]
    """(row, col, class) of the pixel prompt in the first camera."""
    frames_at: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    """(camera, stamp) -> rig image, for the stamps the service masks refer to."""
    gt_labels_at: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)

    def frame_for(self, cam: str, stamp: int) -> np.ndarray:
        """The rig image of ``cam`` at ``stamp`` (that of the scene if it was not kept)."""
        return self.frames_at.get((cam, stamp), self.images[cam])


@dataclass(frozen=True)
class ReportSettings:
    """How the run was made, as the report states it."""

    random_weights: bool
    """Outputs come from an untrained network: every file says so."""
    model_checkpoint: str
    """The checkpoint given ("" = the params file's)."""
    scene_seed: int
    image_size: tuple[int, int]
    """(height, width) of the rig images, pixels."""
    input_size: tuple[int, int]
    """(height, width) of the model input, pixels."""
    class_names: tuple[str, ...]
    """The node's classes (label ids index them)."""

    def __post_init__(self) -> None:
        for name in ("image_size", "input_size"):
            size = getattr(self, name)
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(f"{name} must be (height, width) in pixels, got {size}")
        if not self.class_names:
            raise ValueError("class_names must not be empty")

    @property
    def rw(self) -> str:
        """Suffix of captions of random-weight outputs."""
        return " (random weights)" if self.random_weights else ""

    @property
    def rw_title(self) -> str:
        """Suffix of figure titles of random-weight outputs."""
        return f" - {RANDOM_WEIGHTS_LABEL}" if self.random_weights else ""


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


class Writer:
    """Writes the output files and remembers a caption per file for index.md."""

    def __init__(self, out: Path, random_weights: bool) -> None:
        self.out = out
        self.random_weights = random_weights
        self.captions: dict[str, str] = {}

    def png(self, name: str, image: np.ndarray, caption: str, stamp: bool = True) -> None:
        """Save a figure; with random weights, ``stamp`` writes the label over its top rows
        (figures with a title carry the label in the title instead). The PNG text chunk
        ``Comment`` carries it in every file."""
        meta = {"Software": "semanticsplat demo", "Description": caption}
        if self.random_weights:
            meta["Comment"] = RANDOM_WEIGHTS_LABEL
            if stamp:
                image = banner(image, RANDOM_WEIGHTS_LABEL)
        save_png(self.out / name, image, meta)
        self.captions[name] = caption

    def note(self, name: str, caption: str) -> None:
        self.captions[name] = caption


def _resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.NEAREST))


def _write_camera_figures(
    w: Writer,
    c: Collected,
    settings: ReportSettings,
    depth_err: Mapping[str, float],
    agree: Mapping[str, float],
) -> None:
    """Per camera: the input, the ground truth and the published outputs."""
    rw = settings.rw
    stamp_s = c.stamp_ns * 1e-9
    for cam in c.cameras:
        near, far = depth_range(c.gt_depth[cam])
        w.png(
            f"rgb_{cam}.png", c.images[cam], f"{cam}: the rig image (stamp {stamp_s:.3f} s)", False
        )
        w.png(
            f"depth_{cam}.png",
            depth_to_rgb(c.depth[cam], near, far),
            f"{cam}: published depth ~/{cam}/depth (turbo, {near:.1f}-{far:.1f} m, near = red);"
            f" median abs rel {depth_err[cam]:.3f}{rw}",
        )
        w.png(
            f"gt_depth_{cam}.png",
            depth_to_rgb(c.gt_depth[cam], near, far),
            f"{cam}: ground-truth depth from sim_rig, same colour scale",
            False,
        )
        w.png(
            f"labels_{cam}.png",
            overlay_labels(c.images[cam], c.labels[cam], LABEL_ALPHA),
            f"{cam}: published labels ~/{cam}/labels over the image; agreement with ground truth"
            f" {agree[cam]:.1%}{rw}",
        )
        w.png(
            f"gt_labels_{cam}.png",
            overlay_labels(c.images[cam], c.gt_labels[cam].astype(np.int64), LABEL_ALPHA),
            f"{cam}: ground-truth labels from sim_rig",
            False,
        )


def _segment_tiles(
    c: Collected, seg: SegmentOut, marker: tuple[str, float, float] | None
) -> list[np.ndarray | None]:
    """One tile per camera: the segment's mask over the frame it refers to (None where the
    segment has no mask), the prompt marker (camera, u, v) drawn in its camera."""
    tiles: list[np.ndarray | None] = []
    for cam in c.cameras:
        if cam not in seg.masks:
            tiles.append(None)
            continue
        img = overlay_mask(c.frame_for(cam, seg.stamps[cam]), seg.masks[cam], dim_outside=MASK_DIM)
        if marker is not None and marker[0] == cam:
            img = draw_marker(img, marker[1], marker[2])
        tiles.append(img)
    return tiles


def _pixel_counts(masks: Mapping[str, np.ndarray]) -> dict[str, int]:
    return {cam: int(m.sum()) for cam, m in masks.items()}


def _write_prompt_figures(w: Writer, c: Collected, settings: ReportSettings) -> dict[str, Any]:
    """A figure per level of each ``~/segment_point`` answer; returns their summary entries."""
    calls = {call.name: call for call in c.calls}
    cams = c.cameras
    row, col, cls = c.prompt
    prompt_summary: dict[str, Any] = {}
    for name, prefix, marker in (
        ("segment_point_pixel", "point_prompt", (cams[0], float(col), float(row))),
        ("segment_point_3d", "point3d_prompt", None),
    ):
        call = calls.get(name)
        if call is None:
            continue
        entry: dict[str, Any] = {
            "request": call.request,
            "success": call.success,
            "message": call.message,
            "round_trip_s": call.seconds,
            "levels": [],
        }
        if marker:
            form = f"pixel ({col}, {row}) of {cams[0]} (a {cls} pixel in the ground truth)"
        else:
            form = "3D point ({:.2f}, {:.2f}, {:.2f}) in {}".format(
                *call.request.get("point", [math.nan] * 3), call.request.get("frame_id")
            )
        for seg in call.segments:
            entry["levels"].append(
                {
                    "level": seg.label,
                    "score": seg.score,
                    "pixels": _pixel_counts(seg.masks),
                    "points": seg.num_points,
                }
            )
            caption = [
                f"{cam}: {int(seg.masks[cam].sum())} px" if cam in seg.masks else cam
                for cam in cams
            ]
            grid = image_grid(
                [_segment_tiles(c, seg, marker)],
                captions=[caption],
                title=f"~/segment_point {seg.label} mask, score {seg.score:.2f}{settings.rw_title}",
            )
            w.png(
                f"{prefix}_{seg.label}.png",
                grid,
                f"~/segment_point at {form}: the {seg.label} mask in every camera (score"
                f" {seg.score:.2f}, {seg.num_points} 3D points){settings.rw}",
                stamp=False,
            )
        prompt_summary[name] = entry
    return prompt_summary


def _gt_masks(c: Collected, seg: SegmentOut, gt_name: str | None) -> dict[str, np.ndarray]:
    """Camera -> ground-truth mask of class ``gt_name`` in the frame each answer mask refers
    to (cameras whose frame was not kept are left out)."""
    gt_masks: dict[str, np.ndarray] = {}
    if gt_name is None:
        return gt_masks
    for cam in seg.masks:
        gt = c.gt_labels_at.get((cam, seg.stamps[cam]))
        if gt is not None and gt.shape == seg.masks[cam].shape:
            gt_masks[cam] = gt == CLASS_ID[gt_name]
    return gt_masks


def _write_query_figures(w: Writer, c: Collected, settings: ReportSettings) -> dict[str, Any]:
    """A figure per ``~/query_text`` answer against its ground-truth class; returns their
    summary entries (IoU pooled over the cameras)."""
    qcall = next((call for call in c.calls if call.name == "query_text"), None)
    query_summary: dict[str, Any] = {}
    if qcall is None:
        return query_summary
    for seg in qcall.segments:
        gt_name = query_class(seg.label)
        gt_masks = _gt_masks(c, seg, gt_name)
        iou = pooled_mask_iou(seg.masks, gt_masks) if gt_masks else float("nan")
        query_summary[seg.label] = {
            "gt_class": gt_name,
            "score": seg.score,
            "iou": _finite_or_none(iou),
            "pixels": _pixel_counts(seg.masks),
            "points": seg.num_points,
        }
        rows = [_segment_tiles(c, seg, None)]
        titles = ["answer"]
        if gt_masks:
            rows.append(
                [
                    overlay_mask(
                        c.frame_for(cam, seg.stamps[cam]),
                        gt_masks[cam],
                        color=(40, 200, 40),
                        dim_outside=MASK_DIM,
                    )
                    if cam in gt_masks
                    else None
                    for cam in c.cameras
                ]
            )
            titles.append(f"gt {gt_name}")
        grid = image_grid(
            rows,
            captions=[list(c.cameras)] + [[] for _ in rows[1:]],
            row_titles=titles,
            title=f'~/query_text "{seg.label}": score {seg.score:.2f}, IoU vs {gt_name}:'
            f" {iou:.2f}{settings.rw_title}",
        )
        w.png(
            f"query_{safe_name(seg.label)}.png",
            grid,
            f'~/query_text "{seg.label}": answer masks (red) and the ground-truth'
            f" {gt_name} masks (green); IoU {iou:.2f}{settings.rw}",
            stamp=False,
        )
    return query_summary


def _write_feature_figures(
    w: Writer, scene: EncodedScene, cams: Sequence[str], settings: ReportSettings
) -> None:
    """PCA pictures of the in-process encode's segmentation and language fields, at the rig
    image size; and the caption of the PLY written from it."""
    height, width = settings.image_size
    for key, field_name, what in (
        ("seg", "seg_embeddings", "segmentation"),
        ("lang", "language", "language"),
    ):
        features = getattr(scene, field_name)
        tiles = [_resize_nearest(t, height, width) for t in pca_rgb(features)]
        w.png(
            f"pca_{key}.png",
            image_grid(
                [tiles], captions=[list(cams)], title=f"{what} field PCA{settings.rw_title}"
            ),
            f"the rendered {what} field ({features.shape[1]} channels) of each"
            " camera, first 3 principal components fitted over both views (same colour = same"
            f" feature){settings.rw}",
            stamp=False,
        )
    w.note(
        PLY_NAME,
        f"the {scene.gaussians.num_gaussians} semantic Gaussians of the in-process encode (3DGS"
        f" layout + f_seg_*, f_lang_*, label, score){settings.rw}",
    )


def _write_overview(w: Writer, c: Collected, settings: ReportSettings) -> None:
    """One sheet: every camera's image, labels and depth beside their ground truth."""
    overview_rows, titles = [], []
    for cam in c.cameras:
        near, far = depth_range(c.gt_depth[cam])
        overview_rows.append(
            [
                c.images[cam],
                overlay_labels(c.images[cam], c.gt_labels[cam].astype(np.int64), LABEL_ALPHA),
                overlay_labels(c.images[cam], c.labels[cam], LABEL_ALPHA),
                depth_to_rgb(c.gt_depth[cam], near, far),
                depth_to_rgb(c.depth[cam], near, far),
            ]
        )
        titles.append(cam)
    captions = [["rgb", "gt labels", "labels", "gt depth", "depth"] for _ in c.cameras]
    sheet = image_grid(
        overview_rows,
        captions=captions,
        row_titles=titles,
        title=f"semanticsplat demo{settings.rw_title}",
    )
    names = settings.class_names
    legend = legend_strip(sheet.shape[1], range(len(names)), names)
    w.png(
        "overview.png",
        np.concatenate([sheet, legend], axis=0),
        f"every camera: image, ground-truth and published labels, ground-truth and published"
        f" depth{settings.rw}",
        False,
    )


# --------------------------------------------------------------------------------------------
# Summary and index
# --------------------------------------------------------------------------------------------


def _diag_float(diagnostics: Mapping[str, str], key: str) -> float | None:
    try:
        return _finite_or_none(float(diagnostics[key]))
    except (KeyError, ValueError):
        return None


def _latency(c: Collected, scene: EncodedScene) -> dict[str, Any]:
    d = c.diagnostics
    return {
        "first_complete_scene_s": c.first_output_s,
        "node_latency_s_median": _diag_float(d, "latency_s_median"),
        "node_processing_s_median": _diag_float(d, "processing_s_median"),
        "node_rate_hz": _diag_float(d, "rate_hz"),
        "sets_encoded": int(d.get("sets_encoded", "0") or 0),
        "service_round_trip_s": {call.name: call.seconds for call in c.calls},
        "in_process_encode_s": {k: float(v) for k, v in scene.timings.items()},
    }


def write_report(
    out: Path, settings: ReportSettings, c: Collected, scene: EncodedScene
) -> dict[str, Any]:
    """Figures, ``summary.json`` and ``index.md`` under ``out``; returns the summary.

    ``scene``: the same frames encoded in-process (for the feature PCA); the caller writes its
    Gaussians to ``out / PLY_NAME``. Depth error is the median relative error against sim_rig's
    ground truth (per camera and pooled), label agreement the fraction of known pixels.
    """
    cams = c.cameras
    w = Writer(out, settings.random_weights)
    depth_err = {cam: depth_median_relative_error(c.depth[cam], c.gt_depth[cam]) for cam in cams}
    depth_err["all"] = depth_median_relative_error(
        _pooled(c.depth, cams), _pooled(c.gt_depth, cams)
    )
    agree = {cam: label_agreement(c.labels[cam], c.gt_labels[cam]) for cam in cams}
    agree["all"] = label_agreement(_pooled(c.labels, cams), _pooled(c.gt_labels, cams))

    _write_camera_figures(w, c, settings, depth_err, agree)
    prompt_summary = _write_prompt_figures(w, c, settings)
    query_summary = _write_query_figures(w, c, settings)
    _write_feature_figures(w, scene, cams, settings)
    _write_overview(w, c, settings)

    summary: dict[str, Any] = {
        "random_weights": settings.random_weights,
        "warning": RANDOM_WEIGHTS_LABEL if settings.random_weights else "",
        "model_checkpoint": settings.model_checkpoint or "default",
        "cameras": cams,
        "image_size": list(settings.image_size),
        "input_size": list(settings.input_size),
        "scene_seed": settings.scene_seed,
        "scene_stamp_s": c.stamp_ns * 1e-9,
        "latency": _latency(c, scene),
        "depth_median_abs_rel": {k: _finite_or_none(v) for k, v in depth_err.items()},
        "label_agreement": {k: _finite_or_none(v) for k, v in agree.items()},
        "point_prompt": prompt_summary,
        "queries": query_summary,
        "cloud_points": c.cloud_points,
        "gaussians_published": c.gaussians,
        "gaussians_exported": scene.gaussians.num_gaussians,
        "node_diagnostics": c.diagnostics,
        "graph_exit_codes": c.exit_codes,
    }
    w.note(
        "summary.json", "the numbers of this run (latencies, depth error, label agreement, IoUs)"
    )
    w.note("graph.log", "stdout/stderr of sim_rig and semanticsplat_node")
    w.note("index.md", "this index")
    summary["files"] = sorted(w.captions)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_index(out / "index.md", w.captions, settings.random_weights)
    return summary


def write_index(path: Path, captions: Mapping[str, str], random_weights: bool) -> None:
    """index.md: every file with its one-line caption (images inline)."""
    lines = ["# semanticsplat demo", ""]
    if random_weights:
        lines += [f"**{RANDOM_WEIGHTS_LABEL}**: outputs come from an untrained network.", ""]
    lines += ["| file | what it is |", "|---|---|"]
    for name in sorted(captions):
        lines.append(f"| [`{name}`]({name}) | {captions[name].replace('|', '/')} |")
    lines += [""]
    lines += [f"![{n}]({n})" for n in sorted(captions) if n.endswith(".png")]
    path.write_text("\n".join(lines) + "\n")


def format_summary(summary: Mapping[str, Any]) -> str:
    """The printed summary (a few aligned lines) of a ``write_report`` summary."""

    def f(x: Any, fmt: str = ".3f") -> str:
        return "n/a" if x is None else format(x, fmt)

    lat = summary["latency"]
    lines = []
    if summary["random_weights"]:
        lines.append(f"*** {RANDOM_WEIGHTS_LABEL} ***")
    lines.append(
        f"first complete scene   {f(lat['first_complete_scene_s'], '.1f')} s after start;"
        f" node latency {f(lat['node_latency_s_median'])} s (median),"
        f" {f(lat['node_rate_hz'], '.2f')} Hz, {lat['sets_encoded']} sets encoded"
    )
    trips = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in lat["service_round_trip_s"].items())
    lines.append(f"service round trips    {trips}")
    lines.append(
        f"in-process encode      {f(lat['in_process_encode_s'].get('total'))} s"
        f" ({summary['input_size'][1]}x{summary['input_size'][0]} input)"
    )
    de, la = summary["depth_median_abs_rel"], summary["label_agreement"]
    lines.append("depth median abs rel   " + ", ".join(f"{k} {f(v)}" for k, v in de.items()))
    lines.append(
        "label agreement        "
        + ", ".join(f"{k} {'n/a' if v is None else format(v, '.1%')}" for k, v in la.items())
    )
    for name, entry in summary["point_prompt"].items():
        if entry["success"]:
            scores = ", ".join(f"{lv['level']} {lv['score']:.2f}" for lv in entry["levels"])
            lines.append(f"{name:<22} {scores}")
        else:
            lines.append(f"{name:<22} failed: {entry['message']}")
    for text, q in summary["queries"].items():
        lines.append(
            f"query {text!r:<16} IoU vs {q['gt_class']}: {f(q['iou'], '.2f')},"
            f" score {q['score']:.2f}, {q['points']} points"
        )
    lines.append(
        f"semantic cloud         {summary['cloud_points']} points;"
        f" Gaussians published {summary['gaussians_published']},"
        f" exported {summary['gaussians_exported']}"
    )
    return "\n".join(lines)
