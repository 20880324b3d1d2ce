"""Screenshots of a page in a real headless Chromium, for the viewer's tests and README image.

``HeadlessBrowser`` starts ``chromium-headless-shell`` (or another Chromium) with WebGL on
SwiftShader (software, so it runs on machines without a GPU) and drives it over the DevTools
protocol through a pipe (``--remote-debugging-pipe``: no port, standard library only).

    with HeadlessBrowser(width=960, height=640) as browser:
        browser.open(viewer.url)
        image = browser.wait_until_stable()   # (H, W, 3) uint8

``find_chromium`` looks for the binary (``$SEMANTICSPLAT_CHROMIUM`` first); it raises
FileNotFoundError naming ``.ci/install-browser`` when there is none.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CHROMIUM_ENV = "SEMANTICSPLAT_CHROMIUM"
CHROMIUM_NAMES = (
    "chromium-headless-shell",
    "headless_shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in containers
    "--use-angle=swiftshader",  # WebGL without a GPU
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-extensions",
    "--disable-background-networking",
    "--remote-debugging-pipe",
)
HIDE_NOTIFICATIONS_JS = """
(() => {
  const style = document.createElement('style');
  style.textContent = '.mantine-Notifications-root, [class*="Notification"] {display: none !important}';
  document.head.appendChild(style);
  return true;
})()
"""
"""Hides toasts (viser warns that WebGL runs in software) so screenshots show the scene."""


_TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class BrowserError(RuntimeError):
    """The browser died, timed out or answered a DevTools command with an error."""


def find_chromium() -> str:
    """Path of a headless Chromium: ``$SEMANTICSPLAT_CHROMIUM`` or the first of
    ``CHROMIUM_NAMES`` on PATH. FileNotFoundError when there is none."""
    configured = os.environ.get(CHROMIUM_ENV, "")
    if configured:
        path = shutil.which(configured)
        if path is None:
            raise FileNotFoundError(f"${CHROMIUM_ENV}={configured!r} is not an executable")
        return path
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    raise FileNotFoundError(
        "no headless Chromium found (looked for "
        + ", ".join(CHROMIUM_NAMES)
        + f"); install it with .ci/install-browser or set ${CHROMIUM_ENV}"
    )


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10, so that moving one pipe to fd 3 cannot clobber the other."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two images, 0-255 levels (inf when the sizes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


class HeadlessBrowser:
    """One headless Chromium with one page (see the module docstring). Not thread-safe."""

    def __init__(
        self,
        width: int = 960,
        height: int = 640,
        executable: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"window must be at least 16x16, got {width}x{height}")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="semanticsplat-chromium-")
        # Our ends: we write commands to `to_browser`, read answers from `from_browser`.
        browser_in, to_browser = os.pipe()
        from_browser, browser_out = os.pipe()
        browser_in, browser_out = _high_fd(browser_in), _high_fd(browser_out)
        args = [
            executable or find_chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile.name}",
            f"--window-size={width},{height}",
        ]
        # Chromium reads the protocol on fd 3 and writes on fd 4: a tiny Python trampoline puts
        # them there and execs the browser (no preexec_fn: viser's threads are running).
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, str(browser_in), str(browser_out), *args],
                pass_fds=(browser_in, browser_out),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(browser_in)
            os.close(browser_out)
        self._to_browser, self._from_browser = to_browser, from_browser
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._events: set[str] = set()
        """Names of the DevTools events seen since ``open`` (the page's load)."""
        self._closed = False
        try:
            self._attach()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ protocol

    def _send(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self._session is not None:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        try:
            os.write(self._to_browser, data)
        except OSError as exc:
            raise BrowserError(f"the browser is gone ({exc.strerror})") from None
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if "method" in reply:
                self._events.add(reply["method"])
                continue
            if reply.get("id") != self._next_id:
                continue  # an answer to a command that timed out
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
            return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"the browser did not answer within {self.timeout_s:g} s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("the browser closed its DevTools pipe (it crashed?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _attach(self) -> None:
        created = self._send("Target.createTarget", {"url": "about:blank"}, session=False)
        target = created["targetId"]
        attached = self._send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )
        self._session = attached["sessionId"]
        self._send("Page.enable")
        self._send("Runtime.enable")
        self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    # ------------------------------------------------------------------ page

    def open(self, url: str) -> None:
        """Navigate to ``url``; returns once the page has loaded (not yet rendered: see
        ``wait_until_stable``)."""
        self._events.clear()
        result = self._send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        deadline = time.monotonic() + self.timeout_s
        while "Page.loadEventFired" not in self._events:
            message = self._read(deadline)
            if "method" in message:
                self._events.add(message["method"])
        self._send("Page.bringToFront")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when a promise)."""
        result = self._send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def hide_notifications(self) -> None:
        self.evaluate(HIDE_NOTIFICATIONS_JS)

    def screenshot(self) -> np.ndarray:
        """The page as an (H, W, 3) uint8 image."""
        result = self._send("Page.captureScreenshot", {"format": "png"})
        return decode_png(base64.b64decode(result["data"]))

    def wait_until_stable(
        self,
        timeout_s: float = 20.0,
        interval_s: float = 0.5,
        tolerance: float = 0.3,
        settle: int = 2,
        min_wait_s: float = 0.0,
    ) -> np.ndarray:
        """Poll screenshots until ``settle`` consecutive ones differ from the previous by at
        most ``tolerance`` (mean absolute difference, 0-255 levels) after ``min_wait_s``;
        returns the last one. BrowserError after ``timeout_s``."""
        start = time.monotonic()
        previous = self.screenshot()
        calm = 0
        while True:
            time.sleep(interval_s)
            current = self.screenshot()
            diff = _difference(current, previous)
            calm = calm + 1 if diff <= tolerance else 0
            previous = current
            elapsed = time.monotonic() - start
            if calm >= settle and elapsed >= min_wait_s:
                return current
            if elapsed > timeout_s:
                raise BrowserError(
                    f"the page kept changing for {timeout_s:g} s (last difference {diff:.2f})"
                )

    def wait_until_changed(
        self,
        reference: np.ndarray,
        timeout_s: float = 20.0,
        interval_s: float = 0.2,
        threshold: float = 1.0,
    ) -> np.ndarray:
        """Poll screenshots until one differs from ``reference`` by more than ``threshold``
        (mean absolute difference, 0-255 levels); returns it. BrowserError after
        ``timeout_s``."""
        start = time.monotonic()
        while True:
            current = self.screenshot()
            if current.shape == reference.shape and _difference(current, reference) > threshold:
                return current
            if time.monotonic() - start > timeout_s:
                raise BrowserError(f"the page did not change within {timeout_s:g} s")
            time.sleep(interval_s)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._process.poll() is None:
                with contextlib.suppress(BrowserError):
                    self._send("Browser.close", session=False)
                try:
                    self._process.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5.0)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._profile.cleanup()

    def __enter__(self) -> HeadlessBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def save_screenshot(
    url: str,
    path: str | Path,
    width: int = 1200,
    height: int = 760,
    timeout_s: float = 60.0,
    min_wait_s: float = 1.0,
) -> np.ndarray:
    """Open ``url``, wait (at least ``min_wait_s``) until it stops changing, hide toasts, write
    the PNG to ``path``; returns it."""
    with HeadlessBrowser(width, height, timeout_s=timeout_s) as browser:
        browser.open(url)
        browser.wait_until_stable(timeout_s=timeout_s, min_wait_s=min_wait_s)
        browser.hide_notifications()
        image = browser.wait_until_stable(timeout_s=timeout_s)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, optimize=True)
    return image
