"""launch/bringup.launch.py, loaded through the stand-in launch modules in test/launch_standins."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from semanticsplat_ros.ros.params import load_params_file, read_params_file

ROOT = Path(__file__).resolve().parents[1]
STANDINS = Path(__file__).resolve().parent / "launch_standins"
LAUNCH_FILE = ROOT / "launch" / "bringup.launch.py"
_SHADOWED = ("launch", "launch_ros", "ament_index_python")


def _is_shadowed(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _SHADOWED)


@pytest.fixture
def bringup():
    """The launch file as a module, importing the stand-ins; sys.path/modules restored after."""
    saved = {k: v for k, v in sys.modules.items() if _is_shadowed(k)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(STANDINS))
    try:
        spec = importlib.util.spec_from_file_location("bringup_launch", LAUNCH_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        import launch

        assert Path(launch.__file__).is_relative_to(STANDINS), "stand-in launch not used"
        yield module
    finally:
        sys.path.remove(str(STANDINS))
        for name in [k for k in sys.modules if _is_shadowed(k)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _context(module: ModuleType, **overrides: str):
    """A LaunchContext holding every argument's default, then ``overrides``."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument

    description = module.generate_launch_description()
    configs = {
        a.name: a.default_value
        for a in description.entities
        if isinstance(a, DeclareLaunchArgument)
    }
    unknown = set(overrides) - set(configs)
    assert not unknown, f"not launch arguments: {unknown}"
    configs.update(overrides)
    return description, LaunchContext(configs)


def _nodes(description, context) -> dict[str, object]:
    """Nodes that would start, by name: conditions evaluated, opaque functions executed."""
    from launch.actions import OpaqueFunction
    from launch_ros.actions import Node

    nodes = {}
    for entity in description.entities:
        produced = entity.execute(context) if isinstance(entity, OpaqueFunction) else [entity]
        for action in produced:
            if not isinstance(action, Node):
                continue
            if action.condition is None or action.condition.evaluate(context):
                nodes[action.name] = action
    return nodes


def test_arguments_and_defaults(bringup):
    from launch.actions import DeclareLaunchArgument

    description = bringup.generate_launch_description()
    args = {a.name: a for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(args) == {
        "namespace",
        "params_file",
        "use_sim_time",
        "with_sim_rig",
        "with_rviz",
        "remappings",
    }
    assert args["namespace"].default_value == ""
    assert args["use_sim_time"].default_value == "false"
    assert args["with_sim_rig"].default_value == "true"
    assert args["with_rviz"].default_value == "false"
    params_file = Path(args["params_file"].default_value)
    assert params_file == ROOT / "config" / "bringup.yaml" and params_file.is_file()
    assert all(a.description for a in args.values())


def test_default_graph_is_node_plus_sim_rig(bringup):
    description, context = _context(bringup)
    nodes = _nodes(description, context)
    assert set(nodes) == {"semanticsplat_node", "sim_rig"}
    node = nodes["semanticsplat_node"]
    assert (node.package, node.executable) == ("semanticsplat_ros", "semanticsplat_node")
    assert node.remappings == []
    params_file, overrides = node.parameters
    assert params_file.perform(context) == str(ROOT / "config" / "bringup.yaml")
    assert overrides == {"use_sim_time": False}
    assert node.namespace.perform(context) == ""
    rig = nodes["sim_rig"]
    assert (rig.package, rig.executable) == ("semanticsplat_ros", "sim_rig")
    assert rig.parameters[0].perform(context) == str(ROOT / "config" / "bringup.yaml")
    assert rig.parameters[1]["use_sim_time"].perform(context) == "false"


def test_arguments_reach_the_nodes(bringup):
    description, context = _context(
        bringup,
        namespace="robot1",
        params_file="/tmp/robot1.yaml",
        use_sim_time="true",
        with_sim_rig="false",
        with_rviz="true",
        remappings="head_left/image_raw:=/cam0/color/image_raw; head_left/camera_info:=/cam0/info",
    )
    nodes = _nodes(description, context)
    assert set(nodes) == {"semanticsplat_node", "rviz2"}
    node = nodes["semanticsplat_node"]
    assert node.namespace.perform(context) == "robot1"
    assert node.parameters[0].perform(context) == "/tmp/robot1.yaml"
    assert node.parameters[1] == {"use_sim_time": True}
    assert node.remappings == [
        ("head_left/image_raw", "/cam0/color/image_raw"),
        ("head_left/camera_info", "/cam0/info"),
    ]
    rviz = nodes["rviz2"]
    assert (
        rviz.arguments[0] == "-d"
        and Path(rviz.arguments[1]) == ROOT / "config" / "semanticsplat.rviz"
    )
    assert Path(rviz.arguments[1]).is_file()
    assert rviz.namespace.perform(context) == "robot1"


def test_bad_arguments_fail_clearly(bringup):
    description, context = _context(bringup, remappings="no_separator")
    with pytest.raises(ValueError, match="must look like from:=to"):
        _nodes(description, context)
    description, context = _context(bringup, with_sim_rig="maybe")
    with pytest.raises(ValueError, match="expected 'true' or 'false'"):
        _nodes(description, context)


def test_default_params_file_is_valid_for_both_nodes():
    path = ROOT / "config" / "bringup.yaml"
    params = load_params_file(path)
    assert params.camera_names == ["head_left", "head_right"]
    assert params.cameras[0].image_topic == "head_left/image_raw"
    # The same sections apply inside a namespace (keys are /**/<node>).
    assert load_params_file(path, namespace="/robot1").camera_names == params.camera_names
    rig = read_params_file(path, node_name="sim_rig")
    assert rig["rig"] == "stereo" and rig["cameras"] == params.camera_names
    assert "rig" not in read_params_file(path)  # sections do not leak between nodes


def test_rviz_config_shows_the_node_outputs():
    import yaml

    config = yaml.safe_load((ROOT / "config" / "semanticsplat.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "world"
    displays = {d["Name"]: d for d in manager["Displays"]}
    topics = {
        d.get("Topic", {}).get("Value")
        for d in displays.values()
        if isinstance(d.get("Topic"), dict)
    }
    assert {
        "semanticsplat_node/semantic_cloud",
        "semanticsplat_node/gaussians",
        "semanticsplat_node/map_cloud",
    } <= topics
    cloud = next(
        d
        for d in displays.values()
        if d.get("Topic", {}).get("Value") == "semanticsplat_node/semantic_cloud"
    )
    assert (
        cloud["Class"] == "rviz_default_plugins/PointCloud2"
        and cloud["Color Transformer"] == "RGB8"
    )
    assert any(d["Class"] == "rviz_default_plugins/Image" for d in displays.values())
    semantic_map = displays["Semantic map"]
    assert semantic_map["Class"] == "rviz_default_plugins/PointCloud2" and semantic_map["Enabled"]
    assert displays["Semantic map (labels)"]["Channel Name"] == "label"


# --------------------------------------------------------------------------------------------
# The parameter schema behind the params file (ros/params.py)
# --------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_params_defaults_are_valid_and_per_camera_topics_default_relative():
    from semanticsplat_ros.ros.params import validate_params

    params = validate_params({"cameras": ["front", "wrist"], "wrist.image_topic": "/arm/image"})
    assert [(c.name, c.image_topic, c.camera_info_topic) for c in params.cameras] == [
        ("front", "front/image_raw", "front/camera_info"),
        ("wrist", "/arm/image", "wrist/camera_info"),
    ]
    assert params.prompts == params.classes and params.device == "auto"


def test_params_file_errors_list_every_problem(tmp_path):
    path = _write(
        tmp_path,
        """
/**/semanticsplat_node:
  ros__parameters:
    cameras: [left, 2bad]
    near: 1
    far: 0.5
    device: tpu
    text_encoder: "open_clip:"
    sync_slop_s: 3.0
    classes: [a, b]
    class_prompts: [x]
    publsh_depth: true
    left:
      image_topic: "bad topic"
""",
    )
    with pytest.raises(ValueError) as info:
        load_params_file(path)
    message = str(info.value)
    for expected in (
        "camera name '2bad'",
        "near must be a float; write 1.0",
        "device must be one of auto, cpu, cuda; got 'tpu'",
        "text_encoder must be one of auto, minilm, open_clip:ARCH:PATH",
        "sync_slop_s must be <= 1.0",
        "unknown parameter 'publsh_depth' (did you mean 'publish_depth'?)",
        "left.image_topic 'bad topic' is not a valid ROS topic name",
    ):
        assert expected in message, message


def test_params_cross_checks(tmp_path):
    path = _write(
        tmp_path,
        """
semanticsplat_node:
  ros__parameters:
    near: 2.0
    far: 1.0
    classes: [a, b]
    class_prompts: [x]
""",
    )
    with pytest.raises(ValueError, match=r"near \(2.0\) must be < far \(1.0\)"):
        load_params_file(path)
    path = _write(
        tmp_path,
        """
semanticsplat_node:
  ros__parameters:
    classes: [a, b]
    class_prompts: [x]
""",
    )
    with pytest.raises(ValueError, match="class_prompts has 1 entries but classes has 2"):
        load_params_file(path)


def test_params_node_key_matching(tmp_path):
    path = _write(
        tmp_path,
        """
/**:
  ros__parameters:
    fixed_frame: odom
/robot1/semanticsplat_node:
  ros__parameters:
    fixed_frame: map
other_node:
  ros__parameters:
    fixed_frame: nowhere
""",
    )
    assert load_params_file(path).fixed_frame == "odom"
    assert load_params_file(path, namespace="robot1").fixed_frame == "map"
    with pytest.raises(FileNotFoundError):
        load_params_file(tmp_path / "missing.yaml")


@pytest.mark.ros
def test_params_declared_on_a_real_node_match_the_file():
    import rclpy
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    from semanticsplat_ros.ros.declare import declare_node_parameters

    path = ROOT / "config" / "bringup.yaml"
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
    try:
        node = rclpy.create_node("semanticsplat_node", context=context)
        params = declare_node_parameters(node)
        assert params == load_params_file(path)
        slop = node.describe_parameter("sync_slop_s")
        assert slop.type == ParameterType.PARAMETER_DOUBLE
        assert (slop.floating_point_range[0].from_value, slop.floating_point_range[0].to_value) == (
            0.0,
            1.0,
        )
        assert node.describe_parameter("cloud_stride").integer_range[0].to_value == 64
        assert node.describe_parameter("device").additional_constraints == "one of: auto, cpu, cuda"
        assert node.get_parameter("class_prompts").type_ == Parameter.Type.STRING_ARRAY
        assert node.get_parameter("head_right.image_topic").value == "head_right/image_raw"
        # rclpy enforces the declared range at run time.
        result = node.set_parameters([Parameter("sync_slop_s", value=5.0)])[0]
        assert not result.successful
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
