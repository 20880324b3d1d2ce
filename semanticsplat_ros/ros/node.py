"""``semanticsplat_node``: the lifecycle node around ``SemanticSplatPipeline``.

The node is thin: messages -> ``CameraFrame``s -> ``pipeline.encode`` -> messages. Conversions live
in ``conversions.py`` (images, camera_info, clouds), ``services.py`` (service requests and
responses), ``time_sync.py`` (approximate-time sets), ``tf_buffer.py`` (poses) and
``outputs.py`` (the published messages, pure functions tested without a running graph).

Lifecycle (as the ROS 2 lifecycle demos and yolo_ros):

* ``__init__``: declare every parameter (``declare.declare_node_parameters``: descriptors, ranges).
* ``on_configure``: read and validate the parameters, load the model and teachers, start the TF
  listener and the camera synchroniser. A failure (missing checkpoint, bad parameters) returns
  FAILURE with the reason logged, leaving the node unconfigured.
* ``on_activate``: create publishers, the image/camera_info subscriptions, the services, the
  diagnostics timer, and start the inference and output threads. ``on_deactivate`` undoes
  exactly that.
* ``on_cleanup``: drop the pipeline, the latest scene, TF and the synchroniser (and empty the
  CUDA cache when the model ran on a GPU).

``main()`` configures and activates at start when ``autostart`` is true (the default, so that
``ros2 run`` and ``semanticsplat bringup`` just work) and exits 0 on SIGINT/SIGTERM.

Threads: image and camera_info callbacks only queue messages in ``CameraSetSync``. A dedicated
inference thread takes the newest complete set (older unprocessed sets are superseded, never
queued), looks up each camera's pose in ``fixed_frame`` at its image stamp, encodes, swaps the
latest scene in atomically and hands it to the output thread, which publishes it and fuses it
into the map while the next set encodes. Services run in their own callback group on the
multi-threaded executor, so they answer on the latest scene while inference runs. /tf and
/tf_static are taken in on a node and thread of their own (``<name>_tf_listener``, as tf2_ros's
``spin_thread``), so camera streams that saturate the executor cannot delay the poses.

Topics (relative to the node, ``~/``):

* ``~/<camera>/depth``: sensor_msgs/Image 32FC1, metres, the image's header.
* ``~/<camera>/labels``: class ids (mono8; mono16 with more than 256 classes), the image's header.
* ``~/<camera>/class_masks/<class>``: mono8, 255 where the label is that class, 0 elsewhere, the
  image's header. ``<class>`` is the class name made a valid topic token
  (``class_topic_names``: lower case, other characters -> ``_``; "dining table" ->
  ``dining_table``). The topics follow ``~/set_classes``.
* ``~/semantic_cloud``: PointCloud2 x y z rgb label score in ``fixed_frame`` (every
  ``cloud_stride``-th pixel of every camera, Gaussians below ``min_opacity`` left out).
* ``~/gaussians``: PointCloud2 of the Gaussians (``conversions.GAUSSIAN_CLOUD_FIELDS``) with the
  first three PCA components of the segmentation feature as ``feature_rgb``.
* ``/diagnostics``: diagnostic_msgs/DiagnosticArray every ``diagnostics_period_s``: rate,
  latency, drops, skipped sets and the last error.

An output is computed only while its topic has subscribers. Bad input never stops the node: a set
with a wrong encoding, a camera_info of another size, a missing or NaN pose is skipped and the
reason reported in the diagnostics; stamps outside the slop never form a set.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy._rclpy_pybind11 import RCLError
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from semanticsplat_msgs.srv import MapFile, QueryText, SegmentPoint, SetClasses
from semanticsplat_ros.pipeline import (
    CameraFrame,
    EncodedScene,
    PipelineConfig,
    SemanticSplatPipeline,
)
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    check_image_matches_camera_info,
    check_rigid,
    image_to_rgb8,
    make_header,
    stamp_to_seconds,
)
from semanticsplat_ros.ros.declare import declare_node_parameters
from semanticsplat_ros.ros.handoff import LatestHandoff
from semanticsplat_ros.ros.lifetime import run_shutdown_steps
from semanticsplat_ros.ros.map_host import MapHost
from semanticsplat_ros.ros.node_stats import NodeStats, diagnostic_status
from semanticsplat_ros.ros.outputs import (
    CameraOutputs,
    class_topic_names,
    gaussians_msg,
    semantic_cloud_msg,
)
from semanticsplat_ros.ros.params import (
    NODE_NAME,
    NodeParams,
    all_specs,
    check_parameter_update,
    validate_params,
)
from semanticsplat_ros.ros.services import (
    LatestScene,
    answer_query_text,
    answer_segment_point,
    answer_set_classes,
)
from semanticsplat_ros.ros.tf_buffer import TransformLookup, wait_for_lookup
from semanticsplat_ros.ros.tf_listener import make_transform_lookup
from semanticsplat_ros.ros.time_sync import CameraFrameSet, CameraSetSync
from semanticsplat_ros.ros.viewer_host import NodeViewer

TF_WAIT_S = 0.5
"""How long the inference thread waits for a camera's TF at the image stamp to arrive."""

GIL_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of the node's process (Python's 5 ms starved the TF, executor and
output threads behind the encoding thread; see docs/architecture.md)."""

# ------------------------------------------------------------------------------ The node


class SemanticSplatNode(LifecycleNode):
    """The lifecycle node (see the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._params: NodeParams = declare_node_parameters(self)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.pipeline: SemanticSplatPipeline | None = None
        self.latest: LatestScene | None = None
        self.stats = NodeStats()
        self.configure_error = ""
        self._lookup: TransformLookup | None = None
        self._sync: CameraSetSync[Image, CameraInfo] | None = None
        self._received: dict[str, int] = {}
        self._scene_lock = threading.Lock()
        self._outputs_lock = threading.Lock()
        self._camera_outputs: dict[str, CameraOutputs] = {}
        self._mask_classes: tuple[str, ...] = ()
        self._cloud_pub: Any = None
        self._gaussians_pub: Any = None
        self.map_host: MapHost | None = None
        self.viewer: NodeViewer | None = None
        self._map_pub: Any = None
        self._map_timer: Any = None
        self._diagnostics_pub: Any = None
        self._input_subscriptions: list[Any] = []
        self._service_servers: list[Any] = []
        self._diagnostics_timer: Any = None
        self._worker: threading.Thread | None = None
        self._output: LatestHandoff[_Encoded] | None = None
        self._stop = threading.Event()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()

    # ---------------------------------------------------------------- parameters

    @property
    def params(self) -> NodeParams:
        return self._params

    def _read_parameters(self) -> NodeParams:
        cameras = list(self.get_parameter("cameras").value)
        values: dict[str, Any] = {"cameras": cameras}
        for spec in all_specs(cameras):
            if spec.name == "cameras" or not self.has_parameter(spec.name):
                continue
            value = self.get_parameter(spec.name).value
            values[spec.name] = list(value) if spec.kind == "str_list" else value
        return validate_params(values)

    def _check_parameters(self, parameters: list[Any]) -> SetParametersResult:
        cameras = list(self.get_parameter("cameras").value)
        for p in parameters:
            reason = check_parameter_update(p.name, p.value, cameras)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Any]) -> None:
        # Rates, outputs and thresholds apply at once; model and topic parameters are read-only
        # or take effect at the next configure.
        try:
            self._params = self._read_parameters()
        except ValueError as exc:
            self.get_logger().warning(f"parameters are inconsistent, keeping the old ones: {exc}")
            return
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.config.query_threshold = min(max(self._params.query_threshold, 1e-3), 1 - 1e-3)

    # ---------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = self._read_parameters()
            if len(params.cameras) < 2:
                raise ValueError(
                    f"semanticsplat needs at least 2 cameras, got {params.camera_names}"
                )
            config = PipelineConfig.from_parameters(params)
            if params.torch_threads > 0:
                torch.set_num_threads(params.torch_threads)
            started = time.perf_counter()
            self.pipeline = SemanticSplatPipeline(config)
            prepare_s = self.pipeline.prepare(len(params.cameras))
            self.map_host = MapHost.for_node(params, self.pipeline) if params.map_enabled else None
            self.viewer = NodeViewer(params, self.pipeline) if params.viewer_port else None
        except Exception as exc:  # report why configure failed and stay alive
            self.configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self.configure_error}")
            self.pipeline = None
            self.map_host = None
            return TransitionCallbackReturn.FAILURE
        self._params = params
        self._sync = CameraSetSync(
            params.camera_names,
            params.sync_slop_s,
            queue_size=params.sync_queue_size,
            sync_camera_info=params.sync_camera_info,
        )
        self._lookup = make_transform_lookup(
            self,
            cache_duration=params.tf_cache_s,
            tolerance=params.tf_tolerance_s,
            on_error=lambda message: self.stats.error(f"TF: {message}", skipped=False),
            spin_thread=True,  # /tf keeps up even when camera streams saturate our executor
        )
        self._received = dict.fromkeys(params.camera_names, 0)
        self.configure_error = ""
        self.get_logger().info(
            f"configured in {time.perf_counter() - started:.1f} s: cameras"
            f" {params.camera_names}, input {params.input_width}x{params.input_height},"
            f" device {self.pipeline.device}, runtime {self.pipeline.runtime}"
            + (f" ({self.pipeline.runtime_fallback})" if self.pipeline.runtime_fallback else "")
            + f", first encode {prepare_s:.1f} s"
            + (" (RANDOM WEIGHTS: plumbing only)" if params.random_weights else "")
            + (f"; viewer at {self.viewer.url}" if self.viewer is not None else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.pipeline is None or self._sync is None:
            self.get_logger().error("activate called on an unconfigured node")
            return TransitionCallbackReturn.FAILURE
        try:
            self._create_outputs()
            self._create_inputs()
        except Exception as exc:
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._destroy_active()
            return TransitionCallbackReturn.FAILURE
        self._stop.clear()
        self._output = LatestHandoff(self._finish, "semanticsplat_outputs", self._output_failed)
        self._worker = threading.Thread(
            target=self._inference_loop, name="semanticsplat_inference", daemon=True
        )
        self._worker.start()
        self.get_logger().info("active")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_active()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        return TransitionCallbackReturn.SUCCESS

    def teardown(self) -> None:
        """Stop inference, destroy every entity created by activate/configure, free memory."""
        self._destroy_active()
        self._free()

    def _free(self) -> None:
        lookup, self._lookup = self._lookup, None
        if lookup is not None:
            lookup.close()
        on_cuda = self.pipeline is not None and self.pipeline.device.type == "cuda"
        self.latest = None
        self.pipeline = None
        self.map_host = None
        viewer, self.viewer = self.viewer, None
        if viewer is not None:
            viewer.stop()
        self._sync = None
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

    # ---------------------------------------------------------------- entities

    def _output_qos(self) -> QoSProfile:
        return QoSProfile(
            depth=2,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )

    def _create_class_mask_publishers(self, classes: Sequence[str]) -> None:
        qos = self._output_qos()
        tokens = class_topic_names(classes)
        for camera, outputs in self._camera_outputs.items():
            for pub in outputs.class_masks:
                self.destroy_publisher(pub)
            outputs.class_masks = [
                self.create_publisher(Image, f"~/{camera}/class_masks/{t}", qos) for t in tokens
            ]
        self._mask_classes = tuple(classes)

    def _create_outputs(self) -> None:
        qos = self._output_qos()
        with self._outputs_lock:
            for camera in self._params.camera_names:
                self._camera_outputs[camera] = CameraOutputs(
                    depth=self.create_publisher(Image, f"~/{camera}/depth", qos),
                    labels=self.create_publisher(Image, f"~/{camera}/labels", qos),
                    class_masks=[],
                )
            if self.pipeline is not None:
                self._create_class_mask_publishers(self.pipeline.classes)
            self._cloud_pub = self.create_publisher(PointCloud2, "~/semantic_cloud", qos)
            self._gaussians_pub = self.create_publisher(PointCloud2, "~/gaussians", qos)
            self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            if self.map_host is not None:
                self._map_pub = self.create_publisher(PointCloud2, "~/map_cloud", qos)
        self._service_servers = [
            self.create_service(
                SegmentPoint,
                "~/segment_point",
                self._on_segment_point,
                callback_group=self._service_group,
            ),
            self.create_service(
                QueryText, "~/query_text", self._on_query_text, callback_group=self._service_group
            ),
            self.create_service(
                SetClasses,
                "~/set_classes",
                self._on_set_classes,
                callback_group=self._service_group,
            ),
        ]
        self._diagnostics_timer = self.create_timer(
            self._params.diagnostics_period_s, self._publish_diagnostics
        )
        host = self.map_host
        if host is not None:
            group = self._service_group
            self._service_servers += [
                self.create_service(MapFile, "~/save_map", self._on_save_map, callback_group=group),
                self.create_service(MapFile, "~/load_map", self._on_load_map, callback_group=group),
                self.create_service(
                    Trigger, "~/clear_map", self._on_clear_map, callback_group=group
                ),
            ]
            self._map_timer = self.create_timer(
                self._params.map_publish_period_s, self._publish_map
            )

    def _create_inputs(self) -> None:
        p = self._params
        qos = QoSProfile(
            depth=p.qos_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if p.qos_reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        for camera in p.cameras:
            self._input_subscriptions.append(
                self.create_subscription(
                    CameraInfo,
                    camera.camera_info_topic,
                    lambda msg, c=camera.name: self._on_camera_info(c, msg),
                    qos,
                    callback_group=self._input_group,
                )
            )
            self._input_subscriptions.append(
                self.create_subscription(
                    Image,
                    camera.image_topic,
                    lambda msg, c=camera.name: self._on_image(c, msg),
                    qos,
                    callback_group=self._input_group,
                )
            )

    def _destroy_active(self) -> None:
        self._stop.set()
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=60.0)
        output, self._output = self._output, None
        if output is not None:
            output.stop()
        for sub in self._input_subscriptions:
            self.destroy_subscription(sub)
        self._input_subscriptions = []
        for srv in self._service_servers:
            self.destroy_service(srv)
        self._service_servers = []
        for name in ("_diagnostics_timer", "_map_timer"):
            timer = getattr(self, name)
            if timer is not None:
                self.destroy_timer(timer)
                setattr(self, name, None)
        with self._outputs_lock:
            for outputs in self._camera_outputs.values():
                for pub in (outputs.depth, outputs.labels, *outputs.class_masks):
                    self.destroy_publisher(pub)
            self._camera_outputs = {}
            for name in ("_cloud_pub", "_gaussians_pub", "_diagnostics_pub", "_map_pub"):
                pub = getattr(self, name)
                if pub is not None:
                    self.destroy_publisher(pub)
                    setattr(self, name, None)

    # ---------------------------------------------------------------- input callbacks

    def _on_image(self, camera: str, msg: Image) -> None:
        sync = self._sync
        if sync is None:
            return
        self._received[camera] = self._received.get(camera, 0) + 1
        try:
            sync.add_image(camera, stamp_to_seconds(msg.header.stamp), msg)
        except (KeyError, ValueError) as exc:
            self.stats.error(f"camera {camera!r}: image dropped: {exc}", skipped=False)

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        sync = self._sync
        if sync is None:
            return
        try:
            sync.add_camera_info(camera, stamp_to_seconds(msg.header.stamp), msg)
        except (KeyError, ValueError) as exc:
            self.stats.error(f"camera {camera!r}: camera_info dropped: {exc}", skipped=False)

    # ---------------------------------------------------------------- inference thread

    def _inference_loop(self) -> None:
        last_start = -math.inf
        while not self._stop.is_set():
            sync, params = self._sync, self._params
            if sync is None:
                return
            if params.rate_limit_hz > 0:
                wait = last_start + 1.0 / params.rate_limit_hz - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
            frame_set = sync.wait_for_set(timeout=0.2)
            if frame_set is None or self._stop.is_set():
                continue
            last_start = time.monotonic()
            try:
                self._process(frame_set, params)
            except Exception as exc:  # inference must never kill the node
                if not rclpy.ok(context=self.context):
                    return
                self.stats.error(f"internal error ({type(exc).__name__}): {exc}", skipped=True)
                self.get_logger().error(
                    f"inference failed:\n{traceback.format_exc()}", throttle_duration_sec=5.0
                )

    def _skip(self, message: str) -> None:
        self.stats.error(message, skipped=True)
        self.get_logger().warning(f"skipped a camera set: {message}", throttle_duration_sec=2.0)

    def _lookup_pose(self, frame_id: str, stamp: float) -> np.ndarray:
        """T_fixed_camera at ``stamp``, waiting up to TF_WAIT_S for the transform to arrive."""
        lookup = self._lookup
        if lookup is None:
            raise LookupError("TF is not running")
        return wait_for_lookup(
            lookup, self._params.fixed_frame, frame_id, stamp, TF_WAIT_S, self._stop
        )

    def _process(self, frame_set: CameraFrameSet[Image, CameraInfo], params: NodeParams) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        started = time.monotonic()
        frames: list[CameraFrame] = []
        headers: dict[str, Header] = {}
        for f in frame_set.frames:
            try:
                intrinsics = camera_info_to_intrinsics(f.camera_info, rectified=params.rectified)
                check_image_matches_camera_info(f.image, intrinsics)
                rgb = image_to_rgb8(f.image)
            except (ValueError, TypeError) as exc:
                self._skip(f"camera {f.camera!r}: {exc}")
                return
            frame_id = f.image.header.frame_id or intrinsics.frame_id
            if not frame_id:
                self._skip(f"camera {f.camera!r}: image and camera_info have no frame_id")
                return
            try:
                c2w = check_rigid(
                    self._lookup_pose(frame_id, f.stamp), name=f"pose of {frame_id!r}"
                )
            except (LookupError, ValueError) as exc:
                self._skip(
                    f"camera {f.camera!r}: no valid pose of {frame_id!r} in"
                    f" {params.fixed_frame!r} at {f.stamp:.6f} s: {exc}"
                )
                return
            frames.append(CameraFrame(f.camera, rgb, intrinsics.K, c2w, f.stamp))
            headers[f.camera] = f.image.header
        encode_started = time.monotonic()
        try:
            scene = pipeline.encode(frames, params.near or None, params.far)
        except ValueError as exc:
            self._skip(f"encode refused the set: {exc}")
            return
        encode_s = time.monotonic() - encode_started
        latest = LatestScene(scene, headers)
        with self._scene_lock:
            self.latest = latest
        if (output := self._output) is not None:  # publishing and fusion beside the next encode
            output.put(
                _Encoded(latest, params, frame_set.stamp, time.monotonic() - started, encode_s)
            )

    def _finish(self, done: _Encoded) -> None:
        """On the output thread: publish a set's outputs, fuse it into the map, count it."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        self._publish_outputs(done.latest, done.params)
        fusion = self._fuse(done.latest.scene, pipeline)
        now = self.get_clock().now().nanoseconds * 1e-9
        self.stats.done(now - done.stamp, done.processing_s, done.encode_s, fusion)
        if (viewer := self.viewer) is not None:
            viewer.show(done.latest.scene, self.map_host.map if self.map_host else None, self.stats)

    def _output_failed(self, exc: BaseException) -> None:
        if rclpy.ok(context=self.context):
            self.stats.error(f"internal error publishing ({type(exc).__name__}): {exc}", False)
            trace = "".join(traceback.format_exception(exc))
            self.get_logger().error(f"publishing failed:\n{trace}", throttle_duration_sec=5.0)

    def _fuse(self, scene: EncodedScene, pipeline: SemanticSplatPipeline) -> float | None:
        """Fuse the scene into the map; seconds it took (None without a map or on failure)."""
        host = self.map_host
        if host is None:
            return None
        started = time.perf_counter()
        try:
            host.fuse(scene, pipeline)
        except (ValueError, TypeError) as exc:
            self.stats.error(f"map: the scene was not fused: {exc}", skipped=False)
            return None
        return time.perf_counter() - started

    def _map_header(self) -> Header:
        host = self.map_host
        stamp = host.map.stamp if host is not None and host.map.stamp is not None else 0.0
        return make_header(self._params.fixed_frame, stamp)

    def _publish_map(self) -> None:
        pub, host = self._map_pub, self.map_host
        if pub is None or host is None or not pub.get_subscription_count():
            return
        try:
            pub.publish(host.cloud_msg(self._map_header()))
        except Exception:  # the map cloud must not take the node down
            self.get_logger().error(
                f"map_cloud failed:\n{traceback.format_exc()}", throttle_duration_sec=10.0
            )

    # ---------------------------------------------------------------- outputs

    def _publish_outputs(self, latest: LatestScene, params: NodeParams) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        scene = latest.scene
        with self._outputs_lock:
            for i, camera in enumerate(scene.names):
                outputs = self._camera_outputs.get(camera)
                if outputs is not None:
                    masks = self._mask_classes == scene.classes
                    outputs.publish(
                        scene, i, latest.image_headers[camera], params.publish_depth,
                        params.publish_labels, masks,
                    )  # fmt: skip
            cloud_header = latest.header(params.fixed_frame)
            pub = self._cloud_pub
            if params.publish_semantic_cloud and pub is not None and pub.get_subscription_count():
                pub.publish(
                    semantic_cloud_msg(
                        pipeline, scene, cloud_header, params.cloud_stride, params.min_opacity
                    )
                )
            pub = self._gaussians_pub
            if params.publish_gaussians and pub is not None and pub.get_subscription_count():
                pub.publish(
                    gaussians_msg(scene, cloud_header, params.cloud_stride, params.min_opacity)
                )

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's one DiagnosticStatus (also used by tests and the benchmark)."""
        extra = {"cameras": ",".join(self._params.camera_names)}
        extra["images_received"] = ",".join(
            f"{c}={self._received.get(c, 0)}" for c in self._params.camera_names
        )
        extra["map_voxels"] = str(len(self.map_host.map)) if self.map_host is not None else "off"
        return diagnostic_status(
            self.stats,
            self._sync,
            configured=self.pipeline is not None,
            period_s=self._params.diagnostics_period_s,
            extra=extra,
            name=f"{self.get_name()}: pipeline",
            hardware_id=self.get_fully_qualified_name(),
        )

    def _publish_diagnostics(self) -> None:
        pub = self._diagnostics_pub
        if pub is None:
            return
        try:
            msg = DiagnosticArray(status=[self.diagnostic_status()])
            msg.header.stamp = self.get_clock().now().to_msg()
            pub.publish(msg)
        except Exception:  # diagnostics must not take the node down
            self.get_logger().error(
                f"diagnostics failed:\n{traceback.format_exc()}", throttle_duration_sec=10.0
            )

    # ---------------------------------------------------------------- services

    def _log_internal(self, trace: str) -> None:
        self.get_logger().error(f"service failed:\n{trace}")

    def _on_segment_point(
        self, request: SegmentPoint.Request, response: SegmentPoint.Response
    ) -> SegmentPoint.Response:
        pipeline = self.pipeline
        if pipeline is None:
            return SegmentPoint.Response(success=False, message="the node is not configured")
        host = self.map_host
        return answer_segment_point(
            pipeline,
            self.latest,
            request,
            self._params.fixed_frame,
            self._lookup,
            self._log_internal,
            from_map=(lambda p: host.segment_point(p, self._map_header())) if host else None,
        )

    def _on_query_text(
        self, request: QueryText.Request, response: QueryText.Response
    ) -> QueryText.Response:
        pipeline = self.pipeline
        if pipeline is None:
            return QueryText.Response(success=False, message="the node is not configured")
        scope = int(request.scope)
        if scope == QueryText.Request.MAP:
            host = self.map_host
            if host is None:
                return QueryText.Response(
                    success=False, message="scope MAP: the map is off (map_enabled is false)"
                )
            return host.query(pipeline, request, self._map_header())
        if scope != QueryText.Request.VIEW:
            return QueryText.Response(
                success=False,
                message=f"scope must be VIEW ({QueryText.Request.VIEW}) or MAP"
                f" ({QueryText.Request.MAP}), got {scope}",
            )
        return answer_query_text(
            pipeline, self.latest, request, self._params.fixed_frame, self._log_internal
        )

    def _on_save_map(
        self, request: MapFile.Request, response: MapFile.Response
    ) -> MapFile.Response:
        host = self.map_host
        return host.save(request) if host else MapFile.Response(message="the map is off")

    def _on_load_map(
        self, request: MapFile.Request, response: MapFile.Response
    ) -> MapFile.Response:
        host = self.map_host
        return host.load(request) if host else MapFile.Response(message="the map is off")

    def _on_clear_map(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        host = self.map_host
        return host.clear(request) if host else Trigger.Response(message="the map is off")

    def _on_set_classes(
        self, request: SetClasses.Request, response: SetClasses.Response
    ) -> SetClasses.Response:
        pipeline = self.pipeline
        if pipeline is None:
            return SetClasses.Response(success=False, message="the node is not configured")
        before = self.latest
        result, relabelled = answer_set_classes(pipeline, before, request, self._log_internal)
        if not result.success:
            return result
        with self._scene_lock:
            if self.latest is before:
                self.latest = relabelled
        try:
            with self._outputs_lock:
                if self._camera_outputs:
                    self._create_class_mask_publishers(pipeline.classes)
        except Exception as exc:
            self.get_logger().error(f"could not recreate class mask topics: {exc}")
            result.message += f" (class mask topics not updated: {exc})"
        return result


# ---------------------------------------------------------------------------- Executable


@dataclass(frozen=True)
class _Encoded:
    """An encoded set handed to the output thread, with what the inference thread measured."""

    latest: LatestScene
    params: NodeParams
    stamp: float
    processing_s: float
    encode_s: float


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``semanticsplat_node`` (takes ``--ros-args ...``); 0 on SIGINT/SIGTERM."""

    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    node: SemanticSplatNode | None = None
    executor: MultiThreadedExecutor | None = None
    try:
        try:
            node = SemanticSplatNode()
        except (ValueError, TypeError, ParameterException) as exc:
            sys.stderr.write(f"semanticsplat_node: error: {exc}\n")
            return 1
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        if node.params.autostart:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                sys.stderr.write(
                    f"semanticsplat_node: error: configure failed: {node.configure_error}\n"
                )
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                sys.stderr.write("semanticsplat_node: error: activate failed (see the log)\n")
                return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        # SIGTERM shuts the context down while the executor waits or a callback publishes.
        if rclpy.ok():
            raise
    finally:
        # Shutting down: each step is attempted, and failures are reported, not raised.
        steps = []
        if node is not None:
            steps.append(node.teardown)
        if executor is not None:
            steps.append(lambda: executor.shutdown(timeout_sec=1.0))
        if node is not None:
            steps.append(node.destroy_node)
        steps.append(rclpy.try_shutdown)
        run_shutdown_steps("semanticsplat_node", steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
