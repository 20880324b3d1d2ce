"""``SceneViewer``: a viser server showing the latest scene's semantic Gaussians, its cameras,
the map, query answers and the owner's rate / latency figures in a browser.

Threads. The owner (the node's inference thread, a script) only hands over references:
``update_scene``, ``update_map``, ``update_stats`` and ``update_splats`` store the newest value
(dropping any older one not yet drawn) and wake the viewer's own thread, which converts and
pushes to the browsers. The GUI's query box and scene clicks run on viser's thread pool; their
callbacks' exceptions become a line of text in the GUI. No browser connecting, disconnecting
or hanging reaches the owner's thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
import viser

from semanticsplat_ros.mapping import MapCloud, SemanticMap
from semanticsplat_ros.pipeline import EncodedScene
from semanticsplat_ros.viewer.callbacks import Highlight, PointPrompt, TextQuery
from semanticsplat_ros.viewer.splats import (
    COLOR_MODES,
    MODE_LABELS,
    CameraView,
    ColorMode,
    SplatSet,
    check_mode,
    map_colors,
    mode_colors,
    overview_camera,
    pick_splat,
    scene_cameras,
    scene_splats,
    subsample,
)

log = logging.getLogger(__name__)

UpDirection = Literal["+x", "-x", "+y", "-y", "+z", "-z"]
_UP_VECTORS = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}
PROMPT_COLORS = ((255, 64, 64), (64, 220, 64), (64, 128, 255))
"""Points of the small, medium and large masks of a point prompt."""
QUERY_COLOR = (255, 230, 0)
_LABEL_TO_MODE = {label: mode for mode, label in MODE_LABELS.items()}


@dataclass
class ViewerConfig:
    """Where the viewer serves and how much it draws."""

    port: int = 8080
    """TCP port; 0 = any free port (``SceneViewer.port`` tells which). A busy port makes viser
    take the next free one."""
    host: str = "127.0.0.1"
    """Interface to bind: loopback by default; ``0.0.0.0`` serves every interface (anyone who
    can reach the port sees the scene and can run queries)."""
    max_splats: int = 300_000
    """Larger scenes are drawn evenly subsampled."""
    map_period_s: float = 1.0
    """The map is converted and sent at most this often."""
    stats_period_s: float = 0.5
    """How often the owner's statistics are read and shown."""
    up_direction: UpDirection = "+z"
    """The world's up axis (the synthetic world and ROS fixed frames: +z)."""
    map_point_size: float = 0.04
    """Size of the map's points, metres (about the voxel size)."""

    def __post_init__(self) -> None:
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError(f"port must be an int, got {self.port!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535 (0 = any free port), got {self.port}")
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}")
        if self.max_splats < 1:
            raise ValueError(f"max_splats must be >= 1, got {self.max_splats}")
        for name in ("map_period_s", "stats_period_s", "map_point_size"):
            if not getattr(self, name) > 0:  # NaN fails too
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.up_direction not in get_args(UpDirection):
            raise ValueError(
                f"up_direction must be one of {', '.join(get_args(UpDirection))};"
                f" got {self.up_direction!r}"
            )


@dataclass
class _Shown:
    """What the browsers show now (viewer thread's; replaced whole, never modified)."""

    serial: int
    splats: SplatSet
    cameras: list[CameraView]
    scene: EncodedScene | None
    keep: np.ndarray | None
    """Indices of the scene's Gaussians drawn (None: all)."""


@dataclass
class _Answer:
    """The latest query answers, with the serial of the splats they were computed on."""

    serial: int
    highlights: list[Highlight] = field(default_factory=list)
    marker: np.ndarray | None = None


def check_bindable(host: str) -> None:
    """ValueError unless ``host`` names an address of this machine (viser would otherwise
    retry forever)."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"viewer host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise ValueError(f"cannot serve the viewer on {host!r}: {exc.strerror}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {text}"


class SceneViewer:
    """A browser viewer of scenes, the map and query answers (see the module docstring).

    ``text_query`` / ``point_prompt`` answer the GUI's query box and scene clicks on the shown
    scene (``callbacks.pipeline_text_query`` / ``pipeline_point_prompt``); ``stats`` is a
    mapping the owner keeps updating (read every ``stats_period_s``). Raises ValueError when the
    server cannot start."""

    def __init__(
        self,
        config: ViewerConfig | None = None,
        text_query: TextQuery | None = None,
        point_prompt: PointPrompt | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config = config or ViewerConfig()
        self._text_query = text_query
        self._point_prompt = point_prompt
        self._stats_source = stats
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        # Guarded by _lock: what the owner and the GUI hand to the viewer thread.
        self._pending_scene: EncodedScene | tuple[SplatSet, list[CameraView]] | None = None
        self._pending_map: SemanticMap | MapCloud | None = None
        self._pending_stats: dict[str, Any] | None = None
        self._mode: ColorMode = "rgb"
        self._dirty: set[str] = set()
        self._requested = 0
        self._handled = 0
        # The viewer thread's (and, read-only, the query callbacks').
        self._shown: _Shown | None = None
        self._text_answer: _Answer | None = None
        self._prompt_answer: _Answer | None = None
        self._last_text = ""
        self._map_sent_at = -np.inf
        self._serial = 0
        self._splat_handle: viser.GaussianSplatHandle | None = None
        self._camera_handles: dict[str, viser.CameraFrustumHandle] = {}
        self._stats_text = ""
        self._highlight_handles: dict[str, list[viser.SceneNodeHandle]] = {}
        self._map_cloud: MapCloud | None = None
        self._map_handle: viser.PointCloudHandle | None = None
        self._aimed = False
        self.timings: dict[str, float] = {}
        """Seconds of the viewer thread's latest work: ``convert_s`` (scene -> splats),
        ``draw_s`` (splats -> browsers), ``map_s``."""
        check_bindable(config.host)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # viser prints its banner regardless
                self._server = viser.ViserServer(host=config.host, port=config.port, verbose=False)
        except OSError as exc:
            raise ValueError(
                f"cannot serve the viewer on {config.host}:{config.port}: {exc}"
            ) from None
        self._server.scene.set_up_direction(config.up_direction)
        self._server.scene.world_axes.visible = False
        self._build_gui()
        self._server.scene.on_click()(self._on_click)
        self._thread = threading.Thread(target=self._run, name="semanticsplat-viewer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ owner's API

    @property
    def port(self) -> int:
        """The port served (may differ from the config's: 0 or a busy port)."""
        return int(self._server.get_port())

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.port}/"

    def update_scene(self, scene: EncodedScene) -> None:
        """Show ``scene`` (an ``EncodedScene``, never modified). Only stores the reference:
        conversion and sending happen on the viewer thread; an older scene not drawn yet is
        dropped."""
        if not isinstance(scene, EncodedScene):
            raise TypeError(f"update_scene takes an EncodedScene, got {type(scene).__name__}")
        self._request("scene", scene=scene)

    def update_splats(self, splats: SplatSet, cameras: Sequence[CameraView] = ()) -> None:
        """Show splats that are not a live scene (a PLY file): queries are not available."""
        self._request("scene", scene=(splats, list(cameras)))

    def update_map(self, source: SemanticMap | MapCloud) -> None:
        """Show the map as a point cloud: a ``SemanticMap`` (its ``to_cloud`` runs on the
        viewer thread, at most every ``map_period_s``) or a ``MapCloud`` already made."""
        if not isinstance(source, SemanticMap | MapCloud):
            raise TypeError(f"update_map takes a SemanticMap or MapCloud, got {type(source)}")
        self._request("map", map_source=source)

    def update_stats(self, values: Mapping[str, Any]) -> None:
        """Show these rate / latency figures (replaces the previous ones)."""
        self._request("stats", stats=dict(values))

    def set_mode(self, mode: str) -> None:
        """Colour the splats by ``mode`` (``splats.COLOR_MODES``); the GUI follows."""
        mode = check_mode(mode)
        self._gui_mode.value = MODE_LABELS[mode]
        self._request("colors", mode=mode)

    @property
    def mode(self) -> ColorMode:
        return self._mode

    def run_text_query(self, text: str) -> str:
        """Run the text query callback on the shown scene; returns the line the GUI shows
        (``error: ...`` on failure, never raises). The splats switch to the query heat."""
        if self._gui_query.value != text:
            self._gui_query.value = text
        message = self._text_query_answer(text)
        self._gui_query_result.content = message
        return message

    def run_point_prompt(self, point: Sequence[float]) -> str:
        """Run the point prompt callback at a world point; returns the line the GUI shows."""
        message = self._point_prompt_answer(np.asarray(point, np.float64))
        self._gui_prompt_result.content = message
        return message

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the viewer thread has drawn everything requested so far (tests, the
        CLI); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._done:
            target = self._requested
            while self._handled < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped.is_set():
                    return False
                self._done.wait(left)
        return True

    def stop(self) -> None:
        """Stop the viewer thread and the server (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=5.0)
        with contextlib.redirect_stdout(sys.stderr):
            self._server.stop()

    def __enter__(self) -> SceneViewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _request(
        self,
        what: str,
        scene: EncodedScene | tuple[SplatSet, list[CameraView]] | None = None,
        map_source: SemanticMap | MapCloud | None = None,
        stats: dict[str, Any] | None = None,
        mode: ColorMode | None = None,
    ) -> None:
        with self._lock:
            if scene is not None:
                self._pending_scene = scene
            if map_source is not None:
                self._pending_map = map_source
            if stats is not None:
                self._pending_stats = stats
            if mode is not None:
                self._mode = mode
            self._dirty.add(what)
            self._requested += 1
        self._wake.set()

    # ------------------------------------------------------------------ GUI

    def _build_gui(self) -> None:
        gui = self._server.gui
        gui.configure_theme(control_width="large")
        self._gui_status = gui.add_markdown("Waiting for a scene…")
        self._gui_mode = gui.add_dropdown(
            "Colour", [MODE_LABELS[m] for m in COLOR_MODES], initial_value=MODE_LABELS["rgb"]
        )
        self._gui_note = gui.add_markdown("")
        self._gui_cameras = gui.add_checkbox("Cameras", True)
        self._gui_map = gui.add_checkbox("Map", True)
        with gui.add_form("Text query") as form:
            self._gui_query = gui.add_text("Query", "", hint="e.g. chair; Enter runs it")
            run = gui.add_button("Run query")
            self._gui_live = gui.add_checkbox("Re-run on new scenes", True)
        self._gui_query_result = gui.add_markdown("")
        with gui.add_folder("Point prompt"):
            gui.add_markdown("Click a splat: its small, medium and large masks (red, green, blue).")
            self._gui_prompt_result = gui.add_markdown("")
        with gui.add_folder("Rate and latency"):
            self._gui_stats = gui.add_markdown("—")

        @self._gui_mode.on_update
        def _(_: object) -> None:
            mode = _LABEL_TO_MODE.get(str(self._gui_mode.value), "rgb")
            if mode != self._mode:
                self._request("colors", mode=mode)  # type: ignore[arg-type]

        for box in (self._gui_cameras, self._gui_map):
            box.on_update(lambda _: self._request("visibility"))
        run.on_click(lambda _: form.submit())
        form.on_submit(lambda _: self.run_text_query(str(self._gui_query.value)))

    def _on_click(self, event: viser.SceneClickEvent) -> None:
        shown = self._shown
        try:
            if shown is None:
                message = "nothing to click yet"
            else:
                index = pick_splat(shown.splats, event.ray_origin, event.ray_direction)
                if index is None:
                    message = "the click hit no splat"
                else:
                    message = self.run_point_prompt(shown.splats.centers[index])
                    return
        except Exception as exc:  # a callback's failure is shown, never raised
            message = _one_line(exc)
        self._gui_prompt_result.content = message

    # ------------------------------------------------------------------ queries (viser threads)

    def _text_query_answer(self, text: str) -> str:
        text = " ".join(str(text).split())
        shown = self._shown
        if not text:
            return "type a query first"
        if self._text_query is None:
            return "text queries are not available here"
        if shown is None or shown.scene is None:
            return "no live scene to query"
        try:
            highlights = list(self._text_query(shown.scene, text))
        except Exception as exc:
            return _one_line(exc)
        self._last_text = text
        self._text_answer = _Answer(shown.serial, highlights)
        if highlights and highlights[0].heat is not None:
            self._gui_mode.value = MODE_LABELS["query"]
            self._request("colors", mode="query")
        self._request("text")
        return "; ".join(
            f"{h.label}: score {h.score:.2f}, {len(h.points)} points" for h in highlights
        )

    def _point_prompt_answer(self, point: np.ndarray) -> str:
        shown = self._shown
        if point.shape != (3,) or not np.isfinite(point).all():
            return f"error: a point prompt needs 3 finite coordinates, got {point.tolist()}"
        if self._point_prompt is None:
            return "point prompts are not available here"
        if shown is None or shown.scene is None:
            return "no live scene to prompt"
        try:
            highlights = list(self._point_prompt(shown.scene, point))
        except Exception as exc:
            return _one_line(exc)
        self._prompt_answer = _Answer(shown.serial, highlights, marker=point)
        self._request("prompt")
        parts = [f"{h.label} {h.score:.2f} ({len(h.points)} pts)" for h in highlights]
        return f"at ({point[0]:.2f}, {point[1]:.2f}, {point[2]:.2f}): " + ", ".join(parts)

    # ------------------------------------------------------------------ viewer thread

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(timeout=self.config.stats_period_s)
            self._wake.clear()
            if self._stopped.is_set():
                break
            with self._lock:
                target = self._requested
                dirty, self._dirty = self._dirty, set()
            try:
                self._step(dirty)
            except Exception as exc:  # never let the viewer thread die
                log.warning("viewer: %s", exc, exc_info=True)
                self._gui_note.content = f"viewer {_one_line(exc)}"
            with self._done:
                self._handled = max(self._handled, target)
                self._done.notify_all()

    def _step(self, dirty: set[str]) -> None:
        with self._lock:
            scene, self._pending_scene = self._pending_scene, None
            stats, self._pending_stats = self._pending_stats, None
            mode = self._mode
        if scene is not None:
            self._show(scene)
            dirty |= {"colors", "text", "prompt", "visibility"}
        if "colors" in dirty:
            self._color(mode)
        if "text" in dirty:
            self._draw_highlights("/query", self._text_answer, (QUERY_COLOR,), boxes=True)
        if "prompt" in dirty:
            self._draw_highlights("/prompt", self._prompt_answer, PROMPT_COLORS, boxes=False)
        self._send_map(mode, redraw="colors" in dirty or "visibility" in dirty)
        if "visibility" in dirty:
            for handle in self._camera_handles.values():
                handle.visible = bool(self._gui_cameras.value)
        self._show_stats(stats)

    def _show(self, scene: EncodedScene | tuple[SplatSet, list[CameraView]]) -> None:
        t0 = time.perf_counter()
        if isinstance(scene, EncodedScene):
            splats, cameras, live = scene_splats(scene), scene_cameras(scene), scene
        else:
            (splats, cameras), live = scene, None
        drawn, keep = subsample(splats, self.config.max_splats)
        first = not self._aimed
        self._serial += 1
        self._shown = _Shown(self._serial, drawn, list(cameras), live, keep)
        self.timings["convert_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._draw_cameras(cameras)
        if first:
            self._aim(drawn.centers, cameras)
        self.timings["draw_s"] = time.perf_counter() - t0
        stamp = f", stamp {live.stamp:.2f} s" if live is not None else ""
        note = f" (drawn: {drawn.num_splats})" if keep is not None else ""
        self._gui_status.content = (
            f"**{splats.num_splats} splats**{note}, {len(cameras)} cameras{stamp}"
        )
        if live is not None and self._last_text and self._gui_live.value:
            self._gui_query_result.content = self._text_query_answer(self._last_text)

    def _color(self, mode: ColorMode) -> None:
        shown = self._shown
        if shown is None:
            return
        t0 = time.perf_counter()
        heat = None
        answer = self._text_answer
        if answer is not None and answer.serial == shown.serial and answer.highlights:
            heat = answer.highlights[0].heat
            if heat is not None and shown.keep is not None:
                heat = heat[shown.keep]
        colors, note = mode_colors(shown.splats, mode, heat)
        s = shown.splats
        if self._splat_handle is None:
            self._splat_handle = self._server.scene.add_gaussian_splats(
                "/scene/splats", s.centers, s.covariances, colors, s.opacities[:, None]
            )
        else:
            self._splat_handle.set_gaussians(s.centers, s.covariances, colors, s.opacities[:, None])
        self._gui_note.content = note
        self.timings["color_s"] = time.perf_counter() - t0

    def _draw_cameras(self, cameras: Sequence[CameraView]) -> None:
        names = {c.name for c in cameras}
        for name in list(self._camera_handles):
            if name not in names:
                self._camera_handles.pop(name).remove()
        for cam in cameras:
            self._camera_handles[cam.name] = self._server.scene.add_camera_frustum(
                f"/scene/cameras/{cam.name}",
                fov=cam.fov_y,
                aspect=cam.aspect,
                scale=0.15,
                thickness=0.004,
                color=(40, 40, 40),
                image=cam.image,
                format="jpeg",
                wxyz=cam.wxyz,
                position=cam.position,
                visible=bool(self._gui_cameras.value),
            )

    def _aim(self, points: np.ndarray, cameras: Sequence[CameraView]) -> None:
        up = np.asarray(_UP_VECTORS[self.config.up_direction])
        position, look_at = overview_camera(points, cameras, up)
        self._aimed = True
        initial = self._server.initial_camera
        initial.position, initial.look_at, initial.up = position, look_at, up
        for client in self._server.get_clients().values():
            with client.atomic():
                client.camera.position = position
                client.camera.look_at = look_at
                client.camera.up_direction = up

    def _draw_highlights(
        self,
        root: str,
        answer: _Answer | None,
        colors: Sequence[tuple[int, int, int]],
        boxes: bool,
    ) -> None:
        for handle in self._highlight_handles.pop(root, []):
            handle.remove()
        shown = self._shown
        if answer is None or shown is None or answer.serial != shown.serial:
            return
        scene = self._server.scene
        handles: list[viser.SceneNodeHandle] = []
        for i, h in enumerate(answer.highlights):
            color = colors[i % len(colors)]
            points = np.asarray(h.points, np.float32).reshape(-1, 3)
            if len(points):
                handles.append(
                    scene.add_point_cloud(
                        f"{root}/{i}_points",
                        points,
                        color,
                        point_size=0.012 + 0.004 * i,
                        point_shape="circle",
                    )
                )
            box = h.box
            if boxes and box is not None and bool(torch.isfinite(box.center).all()):
                handles.append(
                    scene.add_box(
                        f"{root}/{i}_box",
                        color=color,
                        dimensions=tuple(float(x) for x in box.size.clamp_min(1e-3)),
                        wireframe=True,
                        wxyz=box.quat_wxyz.double().cpu().numpy(),
                        position=box.center.double().cpu().numpy(),
                    )
                )
        if answer.marker is not None:
            handles.append(
                scene.add_icosphere(
                    f"{root}/marker", radius=0.02, color=(255, 0, 255), position=answer.marker
                )
            )
        self._highlight_handles[root] = handles

    def _send_map(self, mode: ColorMode, redraw: bool) -> None:
        now = time.monotonic()
        with self._lock:
            source = self._pending_map
            due = source is not None and now - self._map_sent_at >= self.config.map_period_s
            if due:
                self._pending_map = None
        if due and source is not None:
            t0 = time.perf_counter()
            self._map_cloud = source.to_cloud() if isinstance(source, SemanticMap) else source
            self._map_sent_at = now
            self.timings["map_s"] = time.perf_counter() - t0
        elif not redraw:
            return
        cloud = self._map_cloud
        if cloud is None or not len(cloud.xyz):
            return
        if not self._aimed:
            self._aim(np.asarray(cloud.xyz, np.float64), [])
        self._map_handle = self._server.scene.add_point_cloud(
            "/map",
            np.asarray(cloud.xyz, np.float32),
            map_colors(cloud, mode),
            point_size=self.config.map_point_size,
            point_shape="square",
            visible=bool(self._gui_map.value),
        )

    def _show_stats(self, stats: dict[str, Any] | None) -> None:
        if stats is None and self._stats_source is not None:
            try:
                stats = dict(self._stats_source)
            except RuntimeError:  # the owner changed it while we copied: next tick
                return
        if stats is None:
            return
        text = format_stats(stats)
        if text != self._stats_text:
            self._stats_text = text
            self._gui_stats.content = text


def format_stats(stats: Mapping[str, Any]) -> str:
    """Markdown lines ``name: value`` (floats with 3 significant digits)."""
    if not stats:
        return "—"
    lines = []
    for name, value in stats.items():
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        lines.append(f"- {name}: {shown}")
    return "\n".join(lines)
