"""``LatestHandoff``: a thread that works on the newest item handed to it (the node's output
thread: publishing and map fusion run beside the next encode, not after it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestHandoff(Generic[T]):
    """Runs ``work(item)`` on a thread of its own for each item ``put`` to it, newest first:
    ``put`` never blocks, and an item not yet taken when a newer one arrives is replaced by it
    (counted in ``replaced``). An exception from ``work`` goes to ``on_error`` and the thread
    carries on."""

    def __init__(
        self, work: Callable[[T], None], name: str, on_error: Callable[[BaseException], None]
    ) -> None:
        self._work = work
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: T | None = None
        self._busy = False
        self._stopping = False
        self.replaced = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = item
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every item put so far has been worked on; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._pending is None and not self._busy, timeout=timeout
            )

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the item in progress and the pending one, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                item, self._pending = self._pending, None
                if item is None:
                    return  # stopping, nothing left
                self._busy = True
            try:
                self._work(item)
            except Exception as exc:  # the output thread must not die
                self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
