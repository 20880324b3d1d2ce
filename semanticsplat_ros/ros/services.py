"""The node's services as pure functions: request message -> pipeline call -> response message.

``semanticsplat_node`` only forwards its ``~/segment_point``, ``~/query_text`` and
``~/set_classes`` calls here, so everything a caller can get wrong is tested without a running
ROS graph. Every function answers; none raises: any failure becomes ``success=false`` with a
message that says what was wrong (no scene yet, unknown camera, pixel outside the image, empty or
too long text, TF failure, ...).

Conventions at this boundary:

* Pixel prompts arrive in ROS's convention (pixel centres on integers, so a W-wide image spans
  ``u`` in ``[-0.5, W - 0.5)``); the pipeline puts centres at +0.5, so ``u_core = u + 0.5``.
* A POINT prompt is transformed from ``point.header.frame_id`` into ``fixed_frame`` with TF at
  ``point.header.stamp`` (a zero stamp means the latest transform, as in tf2). An empty
  ``frame_id`` means ``fixed_frame``.
* Results are ``semanticsplat_msgs/Segment``: ``header`` = (fixed_frame, the scene's stamp),
  masks mono8 (255 inside, 0 outside) with each camera image's own header, ``points`` the
  semantic PointCloud2 (x y z rgb label score), centroid and OrientedBox in fixed_frame with the
  box quaternion converted from the core's wxyz to geometry_msgs' xyzw.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import Header

from semanticsplat_msgs.msg import OrientedBox as OrientedBoxMsg
from semanticsplat_msgs.msg import Segment
from semanticsplat_msgs.srv import QueryText, SegmentPoint, SetClasses
from semanticsplat_ros.pipeline import (
    EncodedScene,
    PointNotVisibleError,
    SegmentResult,
    SemanticSplatPipeline,
)
from semanticsplat_ros.queries import MAX_QUERY_CHARS, OrientedBox, check_query_text
from semanticsplat_ros.ros.conversions import (
    make_header,
    numpy_to_image,
    semantic_cloud,
    stamp_to_nanoseconds,
    stamp_to_seconds,
    wxyz_to_quaternion_msg,
)
from semanticsplat_ros.ros.tf_buffer import TransformLookup

Response = TypeVar("Response")


@dataclass(frozen=True)
class LatestScene:
    """What the services answer on: the newest encoded scene and the headers of its images.

    The node replaces the whole object at once (an atomic attribute swap), so a service call
    reading it sees one consistent scene.
    """

    scene: EncodedScene
    image_headers: Mapping[str, Header]
    """Camera name -> header of the image that was encoded (masks carry it)."""

    def header(self, fixed_frame: str) -> Header:
        """Header of 3D results: the fixed frame at the scene's stamp, which is the newest image
        stamp of the set (copied exactly from that image's header, not through float seconds)."""
        if self.image_headers:
            newest = max(self.image_headers.values(), key=lambda h: stamp_to_nanoseconds(h.stamp))
            return Header(frame_id=fixed_frame, stamp=newest.stamp)
        return make_header(fixed_frame, float(self.scene.stamp))


NO_SCENE_MESSAGE = (
    "no encoded scene yet: the node has not processed a synchronised, posed set of camera images"
    " (check that every camera publishes image and camera_info and that TF resolves each camera"
    " in fixed_frame)"
)


# --------------------------------------------------------------------------------------------
# Results -> messages
# --------------------------------------------------------------------------------------------


def label_dtype_for(num_classes: int) -> type:
    """uint16 class ids in clouds unless there are more classes than that holds."""
    return np.uint16 if num_classes <= np.iinfo(np.uint16).max + 1 else np.uint32


def box_to_msg(box: OrientedBox) -> OrientedBoxMsg:
    """``semanticsplat_msgs/OrientedBox`` of the core's box (wxyz -> xyzw).

    An empty segment's box (NaN centre) keeps its NaN centre with an identity orientation.
    """
    center = np.asarray(box.center.detach().cpu().double().numpy(), dtype=np.float64)
    quat = np.asarray(box.quat_wxyz.detach().cpu().double().numpy(), dtype=np.float64)
    size = np.asarray(box.size.detach().cpu().double().numpy(), dtype=np.float64)
    try:
        orientation = wxyz_to_quaternion_msg(quat)
    except ValueError:
        orientation = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
    size = np.where(np.isfinite(size), np.maximum(size, 0.0), 0.0)
    return OrientedBoxMsg(
        center=Pose(
            position=Point(x=float(center[0]), y=float(center[1]), z=float(center[2])),
            orientation=orientation,
        ),
        size=Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2])),
    )


def segment_to_msg(
    result: SegmentResult,
    latest: LatestScene,
    fixed_frame: str,
) -> Segment:
    """``semanticsplat_msgs/Segment`` of one pipeline result (see the module docstring)."""
    scene = latest.scene
    header = latest.header(fixed_frame)
    msg = Segment(header=header, label=result.label, score=float(np.clip(result.score, 0, 1)))
    for name in scene.names:  # the scene's camera order, whatever order the dict has
        mask = result.masks.get(name)
        if mask is None:
            continue
        image_header = latest.image_headers.get(name, make_header("", float(scene.stamp)))
        pixels = np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)
        msg.camera_names.append(name)
        msg.masks.append(numpy_to_image(pixels, "mono8", image_header))
        msg.pixel_counts.append(int(np.count_nonzero(mask)))
    points = np.asarray(result.points, dtype=np.float32).reshape(-1, 3)
    finite = np.all(np.isfinite(points), axis=1)
    msg.points = semantic_cloud(
        points[finite],
        np.asarray(result.colors, dtype=np.uint8).reshape(-1, 3)[finite],
        np.asarray(result.point_labels).reshape(-1)[finite],
        np.asarray(result.point_scores, dtype=np.float32).reshape(-1)[finite],
        header,
        label_dtype=label_dtype_for(len(scene.classes)),
    )
    c = np.asarray(result.centroid, dtype=np.float64).reshape(3)
    msg.centroid = Point(x=float(c[0]), y=float(c[1]), z=float(c[2]))
    msg.box = box_to_msg(result.box)
    return msg


# --------------------------------------------------------------------------------------------
# Request checks (messages name the field and the rule)
# --------------------------------------------------------------------------------------------


def ros_pixel_to_core(u: float, v: float) -> tuple[float, float]:
    """ROS pixel (centres on integers) -> the pipeline's convention (centres at +0.5)."""
    return float(u) + 0.5, float(v) + 0.5


def check_ros_pixel(camera: str, u: float, v: float, width: int, height: int) -> None:
    """ValueError unless (u, v) lies in a ``width`` x ``height`` image (ROS convention)."""
    if not (math.isfinite(u) and math.isfinite(v)):
        raise ValueError(f"pixel ({u}, {v}) in camera {camera!r} is not finite")
    if not (-0.5 <= u < width - 0.5 and -0.5 <= v < height - 0.5):
        raise ValueError(
            f"pixel ({u:g}, {v:g}) is outside camera {camera!r}'s {width}x{height} image"
            f" (ROS pixel centres are integers: u in [0, {width - 1}], v in [0, {height - 1}])"
        )


def check_texts(texts: Sequence[str]) -> list[str]:
    """Stripped query texts, or ValueError naming the first bad one (``texts[i]: ...``)."""
    if len(texts) == 0:
        raise ValueError("texts is empty: give at least one query text")
    clean = []
    for i, text in enumerate(texts):
        if isinstance(text, str) and len(text) > 4 * MAX_QUERY_CHARS:
            # Do not echo or scan a huge text; say how long it was.
            raise ValueError(
                f"texts[{i}] has {len(text)} characters; the limit is {MAX_QUERY_CHARS}"
            )
        try:
            clean.append(check_query_text(text))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"texts[{i}]: {exc}") from None
    return clean


def point_to_fixed_frame(
    point: Any, fixed_frame: str, lookup: TransformLookup | None
) -> np.ndarray:
    """(3,) coordinates of a ``geometry_msgs/PointStamped`` in ``fixed_frame``.

    The transform is looked up at the point's stamp (zero = latest). Raises ValueError for NaN
    coordinates or when TF cannot resolve the frame (the TF error's text is included).
    """
    p = np.array([point.point.x, point.point.y, point.point.z], dtype=np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"point {p.tolist()} contains NaN or Inf")
    frame = point.header.frame_id.lstrip("/") or fixed_frame
    if frame == fixed_frame.lstrip("/"):
        return p
    if lookup is None:
        raise ValueError(f"cannot transform the point from {frame!r}: TF is not available")
    stamp_s = stamp_to_seconds(point.header.stamp)
    try:
        T = lookup.lookup(fixed_frame, frame, stamp_s if stamp_s > 0 else None)
    except LookupError as exc:
        raise ValueError(
            f"cannot transform the point from {frame!r} to {fixed_frame!r}: {exc}"
        ) from None
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"TF returned an invalid transform from {frame!r} to {fixed_frame!r}")
    return T[:3, :3] @ p + T[:3, 3]


# --------------------------------------------------------------------------------------------
# Service answers
# --------------------------------------------------------------------------------------------


def _answer(
    response_type: Callable[[], Response],
    work: Callable[[Response], str],
    on_internal_error: Callable[[str], None] | None,
) -> Response:
    """Run ``work`` on a fresh response: its return is the success message; any exception
    becomes success=false. Bad input (ValueError/TypeError/LookupError) gives its own message;
    anything else is an internal error, reported with its type (and the traceback to
    ``on_internal_error``)."""
    response = response_type()
    try:
        message = work(response)
    except (ValueError, TypeError, LookupError) as exc:
        response = response_type()
        response.success, response.message = False, str(exc) or type(exc).__name__
        return response
    except Exception as exc:  # a service must answer, whatever went wrong
        if on_internal_error is not None:
            on_internal_error(traceback.format_exc())
        response = response_type()
        response.success = False
        response.message = f"internal error ({type(exc).__name__}): {exc}"
        return response
    response.success, response.message = True, message
    return response


def answer_segment_point(
    pipeline: SemanticSplatPipeline,
    latest: LatestScene | None,
    request: SegmentPoint.Request,
    fixed_frame: str,
    lookup: TransformLookup | None = None,
    on_internal_error: Callable[[str], None] | None = None,
    from_map: Callable[[np.ndarray], tuple[list[Segment], str]] | None = None,
) -> SegmentPoint.Response:
    """``~/segment_point``: three hierarchical segments (small, medium, large). A POINT that
    no camera of the latest scene sees is answered by ``from_map`` (point in fixed_frame ->
    segments and a message) when given."""

    def work(response: SegmentPoint.Response) -> str:
        kind = int(request.prompt_type)
        if latest is None and not (kind == SegmentPoint.Request.POINT and from_map):
            raise ValueError(NO_SCENE_MESSAGE)
        if kind == SegmentPoint.Request.PIXEL:
            assert latest is not None
            scene = latest.scene
            name = request.camera_name
            if not name:
                raise ValueError(
                    f"camera_name is empty; a PIXEL prompt names one of the cameras {scene.names}"
                )
            if name not in scene.names:
                raise ValueError(f"unknown camera {name!r}; cameras in the scene: {scene.names}")
            H, W = scene.image_sizes[scene.names.index(name)]
            u, v = float(request.u), float(request.v)
            check_ros_pixel(name, u, v, W, H)
            results = pipeline.segment_pixel(scene, name, *ros_pixel_to_core(u, v))
            where = f"pixel ({u:g}, {v:g}) of camera {name!r}"
        elif kind == SegmentPoint.Request.POINT:
            p = point_to_fixed_frame(request.point, fixed_frame, lookup)
            where = f"point ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) in {fixed_frame!r}"
            try:
                if latest is None:
                    raise PointNotVisibleError(NO_SCENE_MESSAGE)
                results = pipeline.segment_point(latest.scene, p)
            except PointNotVisibleError as exc:
                if from_map is None:
                    raise
                try:
                    segments, message = from_map(p)
                except ValueError as missing:
                    raise ValueError(f"{exc}; nor does the semantic map: {missing}") from None
                response.segments = segments
                return f"{message} at {where}: {exc}"
        else:
            raise ValueError(
                f"prompt_type must be PIXEL ({SegmentPoint.Request.PIXEL}) or POINT"
                f" ({SegmentPoint.Request.POINT}), got {kind}"
            )
        response.segments = [segment_to_msg(r, latest, fixed_frame) for r in results]
        return f"3 segments at {where}"

    return _answer(SegmentPoint.Response, work, on_internal_error)


def answer_query_text(
    pipeline: SemanticSplatPipeline,
    latest: LatestScene | None,
    request: QueryText.Request,
    fixed_frame: str,
    on_internal_error: Callable[[str], None] | None = None,
) -> QueryText.Response:
    """``~/query_text``: one segment per text, answered on the cached language field."""

    def work(response: QueryText.Response) -> str:
        texts = check_texts(list(request.texts))
        if latest is None:
            raise ValueError(NO_SCENE_MESSAGE)
        # <= 0 selects the node's default; the pipeline refuses the rest outside (0, 1).
        results = pipeline.query_text(latest.scene, texts, float(request.threshold))
        response.segments = [segment_to_msg(r, latest, fixed_frame) for r in results]
        found = sum(1 for s in response.segments if any(s.pixel_counts))
        return f"{len(texts)} queries, {found} found in at least one camera"

    return _answer(QueryText.Response, work, on_internal_error)


def answer_set_classes(
    pipeline: SemanticSplatPipeline,
    latest: LatestScene | None,
    request: SetClasses.Request,
    on_internal_error: Callable[[str], None] | None = None,
) -> tuple[SetClasses.Response, LatestScene | None]:
    """``~/set_classes``: replace the class list; returns the response and the latest scene
    relabelled with the new classes (or ``latest`` unchanged when the call failed)."""
    relabelled: list[LatestScene | None] = [latest]

    def work(response: SetClasses.Response) -> str:
        names = list(request.names)
        prompts = list(request.prompts)
        if not names:
            raise ValueError("names is empty: give at least one class name")
        if prompts and len(prompts) != len(names):
            raise ValueError(
                f"got {len(prompts)} prompts for {len(names)} names; give one per name or none"
            )
        for field_name, texts in (("names", names), ("prompts", prompts)):
            if texts:
                try:
                    check_texts(texts)
                except ValueError as exc:
                    raise ValueError(f"{field_name}: {exc}") from None
        pipeline.set_classes(names, prompts)
        if latest is not None:
            relabelled[0] = LatestScene(pipeline.relabel(latest.scene), latest.image_headers)
        return f"{len(names)} classes: {', '.join(pipeline.classes)}"

    response = _answer(SetClasses.Response, work, on_internal_error)
    return response, relabelled[0] if response.success else latest
