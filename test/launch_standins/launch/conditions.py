"""Stand-in ``launch.conditions`` (tests only)."""

from __future__ import annotations

from typing import Any

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def _text(value: Any, context: Any) -> str:
    return value.perform(context) if hasattr(value, "perform") else str(value)


class IfCondition:
    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression

    def evaluate(self, context: Any) -> bool:
        # The real IfCondition accepts exactly these spellings and raises otherwise.
        value = _text(self.predicate_expression, context).strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"IfCondition expected 'true' or 'false', got {value!r}")


class UnlessCondition(IfCondition):
    def evaluate(self, context: Any) -> bool:
        return not super().evaluate(context)
