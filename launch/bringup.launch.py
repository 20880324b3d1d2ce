"""Bring up semanticsplat_node, optionally with the synthetic camera rig and RViz.

    ros2 launch semanticsplat_ros bringup.launch.py
    ros2 launch semanticsplat_ros bringup.launch.py with_sim_rig:=false namespace:=robot1 \
        params_file:=/path/to/my.yaml remappings:="head_left/image_raw:=/cam0/color/image_raw"

Arguments:
  namespace     ROS namespace of every node started here (default: none).
  params_file   parameters YAML for semanticsplat_node and sim_rig
                (default: share/semanticsplat_ros/config/bringup.yaml).
  use_sim_time  true to follow /clock (bag playback, simulators).
  with_sim_rig  true to start sim_rig, the synthetic multi-camera rig (no hardware needed).
  with_rviz     true to start rviz2 with config/semanticsplat.rviz.
  remappings    extra remappings for semanticsplat_node: "from:=to" pairs separated by ';'.

`semanticsplat bringup` starts the same graph from the same YAML where ros2 launch is missing.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "semanticsplat_ros"


def parse_remappings(text: str) -> list[tuple[str, str]]:
    """``"a:=b; c:=d"`` -> ``[("a", "b"), ("c", "d")]``; ValueError for a malformed pair."""
    pairs = []
    for item in text.replace(",", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        source, sep, target = item.partition(":=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"remapping {item!r} must look like from:=to")
        pairs.append((source.strip(), target.strip()))
    return pairs


def _semanticsplat_node(context, *args, **kwargs):
    """The node, built at launch time so that ``remappings`` (a string argument) is parsed."""
    remappings = parse_remappings(LaunchConfiguration("remappings").perform(context))
    return [
        Node(
            package=PACKAGE,
            executable="semanticsplat_node",
            name="semanticsplat_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[
                LaunchConfiguration("params_file"),
                {"use_sim_time": _is_true(LaunchConfiguration("use_sim_time").perform(context))},
            ],
            remappings=remappings,
            output="screen",
            emulate_tty=True,
        )
    ]


def _is_true(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    default_params = os.path.join(share, "config", "bringup.yaml")
    rviz_config = os.path.join(share, "config", "semanticsplat.rviz")
    namespace = LaunchConfiguration("namespace")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of every node"
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description="parameters YAML for semanticsplat_node and sim_rig",
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="follow /clock"
            ),
            DeclareLaunchArgument(
                "with_sim_rig",
                default_value="true",
                description="start the synthetic multi-camera rig",
            ),
            DeclareLaunchArgument("with_rviz", default_value="false", description="start rviz2"),
            DeclareLaunchArgument(
                "remappings",
                default_value="",
                description="extra semanticsplat_node remappings, 'from:=to' separated by ';'",
            ),
            OpaqueFunction(function=_semanticsplat_node),
            Node(
                package=PACKAGE,
                executable="sim_rig",
                name="sim_rig",
                namespace=namespace,
                parameters=[params_file, {"use_sim_time": use_sim_time}],
                output="screen",
                condition=IfCondition(LaunchConfiguration("with_sim_rig")),
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                namespace=namespace,
                arguments=["-d", rviz_config],
                parameters=[{"use_sim_time": use_sim_time}],
                condition=IfCondition(LaunchConfiguration("with_rviz")),
            ),
        ]
    )
