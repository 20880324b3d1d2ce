"""Stand-in ``launch.substitutions`` (tests only)."""

from __future__ import annotations

from typing import Any


class LaunchConfiguration:
    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name = variable_name
        self.default = default

    def perform(self, context: Any) -> str:
        configs = context.launch_configurations
        if self.variable_name in configs:
            return str(configs[self.variable_name])
        if self.default is not None:
            return str(self.default)
        raise KeyError(f"launch configuration {self.variable_name!r} is not set")

    def __repr__(self) -> str:
        return f"LaunchConfiguration({self.variable_name!r})"
