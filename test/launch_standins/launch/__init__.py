"""Stand-in for ROS 2 ``launch``: records the description instead of running it (tests only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class LaunchContext:
    """Holds ``launch_configurations`` (argument name -> string value), like the real one."""

    def __init__(self, launch_configurations: dict[str, str] | None = None) -> None:
        self.launch_configurations: dict[str, str] = dict(launch_configurations or {})


class LaunchDescription:
    def __init__(self, initial_entities: Iterable[Any] | None = None) -> None:
        self.entities: list[Any] = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)

    def describe_sub_entities(self) -> list[Any]:
        return list(self.entities)


__all__ = ["LaunchContext", "LaunchDescription"]
