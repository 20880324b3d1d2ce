"""Parameters on an rclpy node, from the pure schema in ``params.py``.

``descriptor(spec)`` is a ``ParamSpec`` as an ``rcl_interfaces/ParameterDescriptor`` (description,
type, ``FloatingPointRange`` / ``IntegerRange``, allowed values in ``additional_constraints``,
read-only); ``declare_parameter(node, spec)`` declares one and returns its value;
``declare_node_parameters(node)`` declares all of ``semanticsplat_node``'s and returns them
validated. Any node with a ``ParamSpec`` list (the recorder too) declares through these.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from semanticsplat_ros.ros.params import (
    NODE_PARAMETERS,
    NodeParams,
    ParamSpec,
    camera_parameters,
    is_camera_name,
    validate_params,
)
from semanticsplat_ros.ros.recorder_params import (
    RECORDER_PARAMETERS,
    RecorderParams,
    validate_recorder_params,
)

_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "float": ParameterType.PARAMETER_DOUBLE,
    "str": ParameterType.PARAMETER_STRING,
    "str_list": ParameterType.PARAMETER_STRING_ARRAY,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ``rcl_interfaces/ParameterDescriptor`` of a spec (ranges, choices, read-only)."""
    d = ParameterDescriptor(
        name=spec.name,
        type=_TYPES[spec.kind],
        description=spec.description,
        read_only=spec.read_only,
    )
    if spec.kind == "float" and (spec.low is not None or spec.high is not None):
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.low if spec.low is not None else -1e308),
                to_value=float(spec.high if spec.high is not None else 1e308),
                step=0.0,
            )
        ]
    if spec.kind == "int" and (spec.low is not None or spec.high is not None):
        d.integer_range = [
            IntegerRange(
                from_value=int(spec.low if spec.low is not None else -(2**63)),
                to_value=int(spec.high if spec.high is not None else 2**63 - 1),
                step=1,
            )
        ]
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.shown_choices())
    return d


def declare_parameter(node: Node, spec: ParamSpec) -> Any:
    """Declare one parameter and return its value (the override, else the default); string
    lists come back as lists."""
    d = descriptor(spec)
    if isinstance(spec.default, list) and not spec.default:
        # An empty list would be typed as a byte array: declare the type only, then set the
        # empty default unless an override (params file, command line) already gave a value. A
        # read-only parameter cannot be set after declaring it: "not given" reads as empty.
        node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, d)
        try:
            return list(node.get_parameter(spec.name).value)
        except ParameterUninitializedException:
            if not spec.read_only:
                node.set_parameters([Parameter(spec.name, Parameter.Type.STRING_ARRAY, [])])
            return []
    node.declare_parameter(spec.name, spec.default, d)
    value = node.get_parameter(spec.name).value
    return list(value) if spec.kind == "str_list" else value


def declare_with_cameras(node: Node, specs: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Declare ``specs`` (which hold ``cameras``), then the topics of each camera they name;
    returns every value by name, unvalidated."""
    values: dict[str, Any] = {spec.name: declare_parameter(node, spec) for spec in specs}
    for camera in values["cameras"]:
        if is_camera_name(camera):
            for spec in camera_parameters(camera):
                values[spec.name] = declare_parameter(node, spec)
    return values


def declare_node_parameters(node: Node) -> NodeParams:
    """Declare every parameter of ``semanticsplat_node`` (node-wide, then per camera) and return
    them validated.

    Raises ValueError (listing every problem) when the values are invalid; rclpy itself raises
    for an override of the wrong type or outside a range.
    """
    return validate_params(declare_with_cameras(node, NODE_PARAMETERS))


def declare_recorder_parameters(node: Node) -> RecorderParams:
    """Declare every parameter of ``semanticsplat_recorder`` and return them validated (raises
    as ``declare_node_parameters``)."""
    return validate_recorder_params(declare_with_cameras(node, RECORDER_PARAMETERS))
