"""The parameter schema of ``semanticsplat_node``: one list, used three ways. Pure Python (no
ROS), so the docs generator and the demo read it anywhere.

1. ``ros.declare.declare_node_parameters(node)`` declares every parameter on an rclpy node with a
   ``ParameterDescriptor`` built from its ``ParamSpec`` and returns the validated ``NodeParams``.
2. ``load_params_file(path)`` reads a ROS 2 parameters YAML (``config/bringup.yaml``) without ROS,
   with the same rules rcl applies (node-name keys with ``/**`` wildcards, ``ros__parameters``,
   nested keys joined by ``.``, an int is not a double) and returns ``NodeParams``.
3. ``validate_params(values)`` turns a flat ``{name: value}`` into ``NodeParams`` or raises one
   ValueError listing every problem (the pipeline's own rules included: ``PipelineConfig``
   validates itself, and its message is listed).

Per-camera parameters are ``<camera>.image_topic`` and ``<camera>.camera_info_topic`` for each
name in ``cameras``; they default to ``<camera>/image_raw`` and ``<camera>/camera_info``
(relative: resolved in the node's namespace, as the sim rig publishes them).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.device import DEVICES
from semanticsplat_ros.model.cpu_runtime import RUNTIMES
from semanticsplat_ros.pipeline_config import SEGMENT_REFINEMENTS, PipelineConfig

ParamKind = Literal["bool", "int", "float", "str", "str_list"]

NODE_NAME = "semanticsplat_node"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, type, default, what it means, and its allowed values.

    low/high: inclusive numeric range (int/float kinds), None = unbounded on that side.
    choices:  allowed strings (str kind); a choice ending in ':' allows any suffix after it,
              shown as the choice followed by ``suffix_form`` (``shown_choices``).
    """

    name: str
    kind: ParamKind
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    suffix_form: str = "<...>"
    """How the suffix of a choice ending in ':' is written in messages and docs (``ARCH:PATH``)."""

    def shown_choices(self) -> tuple[str, ...]:
        """The choices as messages, descriptors and docs write them (``open_clip:ARCH:PATH``)."""
        return tuple(f"{c}{self.suffix_form}" if c.endswith(":") else c for c in self.choices)

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None if it is."""
        kind = self.kind
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "float":
            if isinstance(value, int) and not isinstance(value, bool):
                return f"{self.name} must be a float; write {value}.0 (ROS does not cast int to double)"
            ok = isinstance(value, float)
        elif kind == "str":
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if not ok:
            return f"{self.name} must be {_KIND_WORDS[kind]}, got {value!r}"
        if kind in ("int", "float"):
            if kind == "float" and not math.isfinite(value):
                return f"{self.name} must be finite, got {value}"
            if self.low is not None and value < self.low:
                return f"{self.name} must be >= {self.low}, got {value}"
            if self.high is not None and value > self.high:
                return f"{self.name} must be <= {self.high}, got {value}"
        if kind == "str" and self.choices:
            allowed = any(
                value.startswith(c) and len(value) > len(c) if c.endswith(":") else value == c
                for c in self.choices
            )
            if not allowed:
                shown = ", ".join(self.shown_choices())
                return f"{self.name} must be one of {shown}; got {value!r}"
        return None


_KIND_WORDS = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a float",
    "str": "a string",
    "str_list": "a list of strings",
}

NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "cameras",
        "str_list",
        ["camera"],
        "Camera names, in the order the model sees them; each has <name>.image_topic and"
        " <name>.camera_info_topic.",
        read_only=True,
    ),
    ParamSpec(
        "fixed_frame",
        "str",
        "world",
        "TF frame of the semantic cloud, the Gaussians and service answers (e.g. map, odom).",
    ),
    ParamSpec(
        "model_checkpoint",
        "str",
        "",
        "SemanticSplat checkpoint: a path or a bundled model's name (small, small_stereo);"
        " empty = small.",
        read_only=True,
    ),
    ParamSpec(
        "sam_checkpoint",
        "str",
        "",
        "SAM teacher (mask decoder for point prompts): tiny, tiny:PATH, vit_b:PATH, vit_l:PATH"
        " or vit_h:PATH (segment_anything weights); empty = tiny (the bundled tiny SAM).",
        read_only=True,
    ),
    ParamSpec(
        "clip_checkpoint",
        "str",
        "",
        "Language teacher: tiny_lseg, tiny_lseg:PATH or open_clip:ARCH:PATH (an open_clip ViT"
        " weights file, e.g. open_clip:ViT-B-16:/w/clip.bin); empty = tiny_lseg (bundled).",
        read_only=True,
    ),
    ParamSpec(
        "text_encoder",
        "str",
        "auto",
        "Text encoder for queries: auto (the language teacher's own: all-MiniLM-L6-v2 for"
        " tiny_lseg, CLIP's text tower for open_clip), minilm (tiny_lseg only) or"
        " open_clip:ARCH:PATH, equal to clip_checkpoint.",
        choices=("auto", "minilm", "open_clip:"),
        read_only=True,
        suffix_form="ARCH:PATH",
    ),
    ParamSpec(
        "device",
        "str",
        "auto",
        "Torch device: auto (cuda when available), cpu or cuda.",
        choices=DEVICES,
        read_only=True,
    ),
    ParamSpec(
        "runtime",
        "str",
        "auto",
        "Encoder runtime: auto (onnx on the CPU, torch on CUDA), torch (eager) or onnx (the"
        " model exported to ONNX and run on OpenVINO, CPU only; exported once per checkpoint and"
        " input size, cached under"
        " $SEMANTICSPLAT_CACHE_DIR or ~/.cache/semanticsplat_ros).",
        choices=RUNTIMES,
        read_only=True,
    ),
    ParamSpec(
        "torch_threads",
        "int",
        1,
        "CPU threads of torch inside the node (0 = torch's default, one per core). One is the "
        "default: on a CPU, torch's worker threads compete with the ROS callbacks for the cores "
        "and the GIL, and the node encodes slower with more (BENCHMARKS.md, node).",
        0,
        256,
        read_only=True,
    ),
    ParamSpec(
        "input_width",
        "int",
        96,
        "Model input width in pixels, a multiple of 8 (images are resized); the bundled small "
        "model was trained at 64x64.",
        32,
        4096,
    ),
    ParamSpec(
        "input_height",
        "int",
        72,
        "Model input height in pixels, a multiple of 8 (images are resized).",
        32,
        4096,
    ),
    ParamSpec(
        "near",
        "float",
        0.0,
        "Nearest depth candidate, metres; 0 = the near plane the model was trained with.",
        0.0,
        100.0,
    ),
    ParamSpec(
        "far",
        "float",
        10.0,
        "Farthest depth candidate, metres (> near); the small model was trained on rooms up to "
        "about 10 m.",
        0.02,
        1000.0,
    ),
    ParamSpec(
        "classes",
        "str_list",
        list(CLASS_NAMES),
        "Class names for labels, class masks and the semantic cloud (label = index).",
    ),
    ParamSpec(
        "class_prompts",
        "str_list",
        [],
        "Text embedded per class (same length as classes); empty = use the class names.",
    ),
    ParamSpec(
        "rate_limit_hz",
        "float",
        0.0,
        "Most inferences per second; 0 = as fast as frames and the model allow.",
        0.0,
        1000.0,
    ),
    ParamSpec(
        "sync_slop_s",
        "float",
        0.02,
        "Largest stamp spread (s) among the images of one synchronised set.",
        0.0,
        1.0,
    ),
    ParamSpec(
        "sync_queue_size",
        "int",
        5,
        "Unmatched images kept per camera while waiting for the others.",
        1,
        100,
        read_only=True,
    ),
    ParamSpec(
        "sync_camera_info",
        "bool",
        False,
        "Synchronise camera_info with images (true) or use each camera's latest (false).",
        read_only=True,
    ),
    ParamSpec(
        "rectified",
        "bool",
        False,
        "Images are the rectified stream: use camera_info P and ignore D (else D must be zero).",
    ),
    ParamSpec(
        "qos_reliability",
        "str",
        "best_effort",
        "Reliability of image/camera_info subscriptions: best_effort (sensor data) or reliable.",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
    ParamSpec(
        "qos_depth", "int", 5, "History depth of image subscriptions.", 1, 100, read_only=True
    ),
    ParamSpec(
        "tf_cache_s", "float", 10.0, "Seconds of TF history kept.", 0.5, 300.0, read_only=True
    ),
    ParamSpec(
        "tf_tolerance_s",
        "float",
        0.05,
        "How far (s) past the newest TF an image stamp may be and still use the newest TF.",
        0.0,
        1.0,
    ),
    ParamSpec("publish_depth", "bool", True, "Publish ~/<camera>/depth (32FC1, metres)."),
    ParamSpec(
        "publish_labels",
        "bool",
        True,
        "Publish ~/<camera>/labels and ~/<camera>/class_masks/<class>.",
    ),
    ParamSpec("publish_semantic_cloud", "bool", True, "Publish ~/semantic_cloud."),
    ParamSpec("publish_gaussians", "bool", False, "Publish ~/gaussians (large; for RViz)."),
    ParamSpec(
        "cloud_stride",
        "int",
        2,
        "Use every n-th pixel (each axis) for ~/semantic_cloud and ~/gaussians.",
        1,
        64,
    ),
    ParamSpec(
        "min_opacity",
        "float",
        0.05,
        "Gaussians below this opacity are left out of the published clouds.",
        0.0,
        1.0,
    ),
    ParamSpec(
        "query_threshold",
        "float",
        0.5,
        "Default cosine-score threshold of ~/query_text (requests may override).",
        0.0,
        1.0,
    ),
    ParamSpec(
        "segment_refinement",
        "str",
        "object",
        "How ~/segment_point's masks use the language field's labels: none = the SAM decoder's"
        " masks as decoded; class = each clipped to the prompted pixel's connected class region;"
        " object = as class, and the large level is that whole region.",
        choices=SEGMENT_REFINEMENTS,
        read_only=True,
    ),
    ParamSpec(
        "diagnostics_period_s",
        "float",
        1.0,
        "Period of /diagnostics messages, seconds.",
        0.1,
        60.0,
    ),
    ParamSpec(
        "map_enabled",
        "bool",
        True,
        "Fuse every encoded scene into the persistent semantic map in fixed_frame (~/map_cloud,"
        " MAP-scope ~/query_text, ~/segment_point for points no camera sees, ~/save_map,"
        " ~/load_map, ~/clear_map).",
        read_only=True,
    ),
    ParamSpec(
        "map_voxel_size",
        "float",
        0.05,
        "Edge of a map voxel, metres.",
        0.01,
        1.0,
        read_only=True,
    ),
    ParamSpec(
        "map_max_voxels",
        "int",
        200_000,
        "Most voxels the map holds (the oldest, then the farthest from the cameras, go first);"
        " about 0.9 kB each with the bundled models.",
        1_000,
        50_000_000,
        read_only=True,
    ),
    ParamSpec(
        "map_max_range_m",
        "float",
        6.0,
        "Pixels farther than this (metres) are not fused into the map and carve no further.",
        0.1,
        100.0,
        read_only=True,
    ),
    ParamSpec(
        "map_publish_period_s",
        "float",
        2.0,
        "Period of ~/map_cloud, seconds (published only while it has subscribers).",
        0.1,
        3600.0,
    ),
    ParamSpec(
        "viewer_port",
        "int",
        0,
        "Serve the browser viewer (docs/viewer.md) on this TCP port; 0 = off. A busy port"
        " makes the viewer take the next free one (the log says which).",
        0,
        65535,
        read_only=True,
    ),
    ParamSpec(
        "viewer_host",
        "str",
        "127.0.0.1",
        "Interface the viewer binds: loopback by default; 0.0.0.0 serves every interface"
        " (anyone who can reach the port sees the scene and can run queries).",
        read_only=True,
    ),
    ParamSpec(
        "random_weights",
        "bool",
        False,
        "Build the model and teachers with random weights instead of loading checkpoints;"
        " plumbing tests only (outputs are meaningless).",
        read_only=True,
    ),
    ParamSpec(
        "autostart",
        "bool",
        True,
        "Configure and activate the lifecycle node at start (ros2 run / semanticsplat bringup);"
        " false = wait for a lifecycle manager.",
        read_only=True,
    ),
)
"""Node-wide parameters (``use_sim_time`` is declared by rclpy itself and not listed)."""

_CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TOPIC = re.compile(r"^[~/]?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def is_camera_name(name: str) -> bool:
    """Whether ``name`` may name a camera: a letter, then letters, digits and underscores."""
    return bool(_CAMERA_NAME.match(name))


def camera_parameters(camera: str) -> tuple[ParamSpec, ...]:
    """The two per-camera parameters of ``camera``."""
    return (
        ParamSpec(
            f"{camera}.image_topic",
            "str",
            f"{camera}/image_raw",
            f"sensor_msgs/Image topic of camera {camera} (rgb8, bgr8, rgba8, bgra8 or mono8).",
            read_only=True,
        ),
        ParamSpec(
            f"{camera}.camera_info_topic",
            "str",
            f"{camera}/camera_info",
            f"sensor_msgs/CameraInfo topic of camera {camera}.",
            read_only=True,
        ),
    )


@dataclass(frozen=True)
class CameraTopics:
    """Where one camera publishes."""

    name: str
    image_topic: str
    camera_info_topic: str


@dataclass(frozen=True)
class NodeParams:
    """Validated parameters of ``semanticsplat_node`` (see ``NODE_PARAMETERS`` for meanings)."""

    cameras: tuple[CameraTopics, ...]
    fixed_frame: str
    model_checkpoint: str
    sam_checkpoint: str
    clip_checkpoint: str
    text_encoder: str
    device: str
    runtime: str
    torch_threads: int
    input_width: int
    input_height: int
    near: float
    far: float
    classes: tuple[str, ...]
    class_prompts: tuple[str, ...]
    rate_limit_hz: float
    sync_slop_s: float
    sync_queue_size: int
    sync_camera_info: bool
    rectified: bool
    qos_reliability: str
    qos_depth: int
    tf_cache_s: float
    tf_tolerance_s: float
    publish_depth: bool
    publish_labels: bool
    publish_semantic_cloud: bool
    publish_gaussians: bool
    cloud_stride: int
    min_opacity: float
    query_threshold: float
    segment_refinement: str
    diagnostics_period_s: float
    map_enabled: bool
    map_voxel_size: float
    map_max_voxels: int
    map_max_range_m: float
    map_publish_period_s: float
    viewer_port: int
    viewer_host: str
    random_weights: bool = False
    autostart: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Parameters not in the schema that were allowed through (``allow_unknown=True``)."""

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def prompts(self) -> tuple[str, ...]:
        """Text per class: class_prompts, or the class names when none are given."""
        return self.class_prompts or self.classes


def all_specs(cameras: Iterable[str]) -> tuple[ParamSpec, ...]:
    """Node-wide specs followed by each camera's specs."""
    specs = list(NODE_PARAMETERS)
    for camera in cameras:
        specs.extend(camera_parameters(camera))
    return tuple(specs)


def check_camera_names(value: Any, spec: ParamSpec) -> tuple[list[str], list[str]]:
    """(the usable, de-duplicated camera names, the problems with ``value``) for a ``cameras``
    parameter: a non-empty list of unique names made of letters, digits and underscores."""
    problem = spec.check(value)
    if problem:
        return [], [problem]
    cameras = list(value)
    problems = []
    if not cameras:
        problems.append('cameras must name at least one camera, e.g. cameras:="[front]"')
    for name in cameras:
        if not _CAMERA_NAME.match(name):
            problems.append(
                f"camera name {name!r} must start with a letter and hold only letters,"
                " digits and underscores"
            )
    if len(set(cameras)) != len(cameras):
        problems.append(f"camera names must be unique, got {cameras}")
    return [c for c in dict.fromkeys(cameras) if _CAMERA_NAME.match(c)], problems


def validate_params(values: Mapping[str, Any], allow_unknown: bool = False) -> NodeParams:
    """``NodeParams`` of a flat ``{name: value}`` mapping, defaults filling the gaps.

    Raises ValueError listing every problem: wrong type, out of range, not an allowed choice,
    bad camera names or topics, near >= far, class_prompts of another length than classes, and
    (unless ``allow_unknown``) parameters that are not in the schema (typos).
    """
    by_name = {s.name: s for s in NODE_PARAMETERS}
    cameras, problems = check_camera_names(
        values.get("cameras", by_name["cameras"].default), by_name["cameras"]
    )
    specs = {s.name: s for s in all_specs(dict.fromkeys(cameras))}
    resolved: dict[str, Any] = {}
    for name, spec in specs.items():
        value = values.get(name, spec.default)
        problem = spec.check(value)
        if problem:
            problems.append(problem)
        resolved[name] = value
    unknown = {k: v for k, v in values.items() if k not in specs and k != "use_sim_time"}
    if unknown and not allow_unknown:
        for name in sorted(unknown):
            hint = _closest(name, specs)
            problems.append(
                f"unknown parameter {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            )
    for camera in cameras:
        for key in ("image_topic", "camera_info_topic"):
            topic = resolved[f"{camera}.{key}"]
            if isinstance(topic, str) and not _TOPIC.match(topic):
                problems.append(f"{camera}.{key} {topic!r} is not a valid ROS topic name")
    if not problems:
        if resolved["near"] >= resolved["far"]:
            problems.append(f"near ({resolved['near']}) must be < far ({resolved['far']})")
        if not resolved["classes"]:
            problems.append("classes must hold at least one class name")
        if len(set(resolved["classes"])) != len(resolved["classes"]):
            problems.append(f"class names must be unique, got {resolved['classes']}")
        if resolved["class_prompts"] and len(resolved["class_prompts"]) != len(resolved["classes"]):
            problems.append(
                f"class_prompts has {len(resolved['class_prompts'])} entries but classes has"
                f" {len(resolved['classes'])}; give one prompt per class or none"
            )
        if not resolved["fixed_frame"]:
            problems.append("fixed_frame must not be empty")
    if not problems:
        try:
            PipelineConfig.from_parameters(resolved)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("invalid semanticsplat_node parameters:\n  - " + "\n  - ".join(problems))
    node_values = {s.name: resolved[s.name] for s in NODE_PARAMETERS if s.name != "cameras"}
    for name in ("classes", "class_prompts"):
        node_values[name] = tuple(node_values[name])
    return NodeParams(
        cameras=tuple(
            CameraTopics(c, resolved[f"{c}.image_topic"], resolved[f"{c}.camera_info_topic"])
            for c in cameras
        ),
        extra=dict(unknown) if allow_unknown else {},
        **node_values,
    )


def _closest(name: str, specs: Mapping[str, ParamSpec]) -> str | None:
    match = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.75)
    return match[0] if match else None


# --------------------------------------------------------------------------------------------
# ROS 2 parameters YAML, read without ROS
# --------------------------------------------------------------------------------------------


def _node_key_matches(key: str, fq_name: str) -> bool:
    """rcl's matching of a parameters-file node key against a fully qualified node name."""
    if key in ("/**", "**"):
        return True
    pattern = key if key.startswith("/") else "/" + key
    regex = ""
    for part in re.split(r"(/\*\*|\*)", pattern):
        if part == "/**":
            regex += r"(/[^/]+)*"
        elif part == "*":
            regex += r"[^/]*"
        else:
            regex += re.escape(part)
    return re.fullmatch(regex, fq_name) is not None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def read_params_file(path: str | Path, node_name: str = NODE_NAME, namespace: str = "/") -> dict:
    """Flat ``{name: value}`` for node ``namespace/node_name`` from a ROS 2 parameters YAML.

    Sections apply in file order (later ones override): keys ``/**``, ``node``, ``/ns/node``,
    ``/**/node`` and ``*`` wildcards, each holding ``ros__parameters``. Raises FileNotFoundError
    or ValueError (bad YAML, bad structure).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of node names at the top level")
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    fq_name = f"{ns}/{node_name}"
    flat: dict[str, Any] = {}
    for key, section in doc.items():
        key = str(key)
        if not isinstance(section, dict):
            raise ValueError(f"{path}: section {key!r} must be a mapping")
        # A namespace key may nest the node key (``ns: {node: {ros__parameters: ...}}``).
        stack = [(key, section)]
        while stack:
            name, body = stack.pop()
            if "ros__parameters" in body:
                if _node_key_matches(name, fq_name):
                    params = body["ros__parameters"]
                    if not isinstance(params, dict):
                        raise ValueError(f"{path}: {name}.ros__parameters must be a mapping")
                    _flatten("", params, flat)
            else:
                for k, v in body.items():
                    if isinstance(v, dict):
                        stack.append((f"{name.rstrip('/')}/{k}", v))
    return flat


def load_params_file(
    path: str | Path, node_name: str = NODE_NAME, namespace: str = "/"
) -> NodeParams:
    """Validated ``NodeParams`` from a parameters YAML (see ``read_params_file``)."""
    values = read_params_file(path, node_name, namespace)
    try:
        return validate_params(values)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def check_parameter_update(name: str, value: Any, cameras: Iterable[str]) -> str | None:
    """For ``add_on_set_parameters_callback``: why a runtime change is refused, or None.

    (rclpy enforces types and ranges; this adds choices and cross-checks per parameter.)
    """
    specs = {s.name: s for s in all_specs(cameras)}
    spec = specs.get(name)
    if spec is None:
        return None if name == "use_sim_time" else f"unknown parameter {name!r}"
    if isinstance(value, tuple | list):
        value = list(value)
    return spec.check(value)
