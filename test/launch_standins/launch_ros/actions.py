"""Stand-in ``launch_ros.actions``: ``Node`` records its arguments (tests only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Keyword arguments launch_ros.actions.Node forwards to launch.actions.ExecuteProcess.
_EXECUTE_PROCESS_KWARGS = {
    "condition",
    "output",
    "emulate_tty",
    "respawn",
    "respawn_delay",
    "additional_env",
    "sigterm_timeout",
    "sigkill_timeout",
    "cwd",
    "prefix",
}


class Node:
    def __init__(
        self,
        *,
        executable: str,
        package: str | None = None,
        name: str | None = None,
        namespace: Any = None,
        exec_name: str | None = None,
        parameters: Iterable[Any] | None = None,
        remappings: Iterable[tuple[Any, Any]] | None = None,
        ros_arguments: Iterable[Any] | None = None,
        arguments: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - _EXECUTE_PROCESS_KWARGS
        if unknown:
            raise TypeError(f"Node() got unexpected keyword arguments {sorted(unknown)}")
        self.executable = executable
        self.package = package
        self.name = name
        self.namespace = namespace
        self.exec_name = exec_name
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.ros_arguments = list(ros_arguments or [])
        self.arguments = list(arguments or [])
        self.condition = kwargs.pop("condition", None)
        self.process_kwargs = kwargs


class PushRosNamespace:
    def __init__(self, namespace: Any) -> None:
        self.namespace = namespace
