"""Stand-in ``launch.actions`` (tests only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Action:
    def __init__(self, *, condition: Any = None) -> None:
        self.condition = condition


class DeclareLaunchArgument(Action):
    def __init__(
        self,
        name: str,
        *,
        default_value: Any = None,
        description: str | None = None,
        choices: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.default_value = default_value
        self.description = description
        self.choices = list(choices) if choices is not None else None


class OpaqueFunction(Action):
    def __init__(
        self,
        *,
        function: Callable[..., Any],
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **rest: Any,
    ) -> None:
        super().__init__(**rest)
        self.function = function
        self.args = list(args or [])
        self.kwargs = dict(kwargs or {})

    def execute(self, context: Any) -> list[Any]:
        return list(self.function(context, *self.args, **self.kwargs) or [])


class GroupAction(Action):
    def __init__(
        self, actions: Iterable[Any], *, scoped: bool = True, forwarding: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.actions = list(actions)
        self.scoped = scoped
        self.forwarding = forwarding
