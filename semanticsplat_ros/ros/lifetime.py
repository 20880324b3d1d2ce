"""Process lifetime helpers shared by the package's executables (no rclpy import here)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence


def run_shutdown_steps(program: str, steps: Sequence[Callable[[], object]]) -> None:
    """Attempt every step in order; a failing step is reported on stderr (with its traceback,
    under the ``program`` name) and does not keep the later steps from running."""
    for step in steps:
        try:
            step()
        except Exception:
            sys.stderr.write(f"{program}: while shutting down:\n{traceback.format_exc()}")
