"""The synthetic world as a live multi-camera rig, without ROS: ``SimRig`` renders every camera
of a rig (``data.rigs``) at one scene time and splits the poses into the base's motion through
the room and each camera's mount on the base (``RigFrame``); ``SimRigConfig`` says which rig,
scene, trajectory, rate and image size. ``ros/sim_rig.py`` publishes it; ``export-ply --rig``
and the quality tools render it directly.

With ``loop_s`` > 0 the rig renders the first ``loop_s`` seconds of its trajectory once
(``prerender``) and then replays them in a loop (the scene time wraps every ``loop_s`` seconds).

``SimRigConfig.changes`` moves or removes objects at given scene times (``SceneChange``): from
its time on, every frame shows the world with the change, so a map's handling of moved and
removed objects can be checked against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import NDArray

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import get_rig, rig_cameras
from semanticsplat_ros.data.scene import Scene
from semanticsplat_ros.data.world import make_scene

# Times at which the rig is sampled to find which camera mounts are rigid (seconds).
_RIGIDITY_PROBE_TIMES = (0.0, 0.7, 1.9, 3.3, 5.2, 8.1)


@dataclass(frozen=True)
class SceneChange:
    """From scene time ``t`` on, the object ``instance`` (a name of ``Scene.instance_names``,
    e.g. "bed_7"; not the room's faces) is moved by ``offset`` metres (world frame), or removed when ``offset`` is
    None."""

    t: float
    instance: str
    offset: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t) and self.t >= 0.0):
            raise ValueError(f"SceneChange.t must be a finite time >= 0, got {self.t}")
        if not self.instance:
            raise ValueError("SceneChange.instance must name an object, e.g. 'bed_0'")
        if self.offset is not None and (
            len(self.offset) != 3 or not all(math.isfinite(float(x)) for x in self.offset)
        ):
            raise ValueError(f"SceneChange.offset must be 3 finite metres, got {self.offset}")


def apply_changes(scene: Scene, changes: tuple[SceneChange, ...]) -> Scene:
    """A copy of ``scene`` with ``changes`` applied in order (ValueError naming an unknown
    object and the scene's objects)."""
    furniture = {p.instance_id for p in scene.primitives if p.kind != "room"}
    ids = {name: i for i, name in scene.instance_names.items() if i in furniture}
    primitives = list(scene.primitives)
    for change in changes:
        if change.instance not in ids:
            raise ValueError(
                f"scene {scene.seed} has no object {change.instance!r}; objects: "
                f"{', '.join(sorted(ids))}"
            )
        target = ids[change.instance]
        if change.offset is None:
            primitives = [p for p in primitives if p.instance_id != target]
            continue
        dx, dy, dz = (float(x) for x in change.offset)
        primitives = [
            replace(p, center=(p.center[0] + dx, p.center[1] + dy, p.center[2] + dz))
            if p.instance_id == target and p.kind != "room"
            else p
            for p in primitives
        ]
    return replace(scene, primitives=primitives, _tables={})


@dataclass(frozen=True)
class SimRigConfig:
    """What ``SimRig`` renders."""

    rig: str = "stereo"
    """Rig name in ``data.rigs.RIGS``."""
    cameras: tuple[str, ...] = ()
    """Camera names, one per rig camera, in the rig's order; empty = the rig's own names."""
    scene_seed: int = 0
    """``make_scene(scene_seed)``."""
    trajectory_seed: int = 0
    """Seed of the rig's trajectory through the scene."""
    rate_hz: float = 10.0
    """Frames per second."""
    width: int = 256
    """Image width, pixels."""
    height: int = 192
    """Image height, pixels."""
    world_frame: str = "world"
    """TF frame of the scene."""
    base_frame: str = "rig_base"
    """TF frame of the moving rig (coincides with the first camera's optical frame)."""
    loop_s: float = 0.0
    """> 0: pre-render this many seconds of the trajectory and replay them in a loop."""
    changes: tuple[SceneChange, ...] = ()
    """Objects moved or removed at given scene times (checked against the scene by SimRig)."""

    def __post_init__(self) -> None:
        if not all(isinstance(c, SceneChange) for c in self.changes):
            raise ValueError("changes must be SceneChange values")
        if not (math.isfinite(self.loop_s) and 0.0 <= self.loop_s <= 600.0):
            raise ValueError(f"loop_s must be in [0, 600] seconds, got {self.loop_s}")
        if not (math.isfinite(self.rate_hz) and 0.0 < self.rate_hz <= 1000.0):
            raise ValueError(f"rate_hz must be in (0, 1000], got {self.rate_hz}")
        if not (8 <= self.width <= 4096 and 8 <= self.height <= 4096):
            raise ValueError(
                f"width and height must be in [8, 4096], got {self.width}x{self.height}"
            )
        if not self.world_frame or not self.base_frame or self.world_frame == self.base_frame:
            raise ValueError(
                f"world_frame ({self.world_frame!r}) and base_frame ({self.base_frame!r}) must be"
                " non-empty and different"
            )


@dataclass
class RigFrame:
    """One rendered instant of the rig (v cameras).

    images:  (v, h, w, 3) uint8 RGB.
    depth:   (v, h, w) float32 z-depth in metres, 0 where no surface was hit.
    labels:  (v, h, w) uint8 class ids, 255 where unknown.
    K:       (v, 3, 3) float64 intrinsics, pixel centres at +0.5 (the core's convention).
    c2w:     (v, 4, 4) float64 camera (optical) to world.
    base:    (4, 4) float64 ``T_world_base``.
    mounts:  (v, 4, 4) float64 ``T_base_camera``.
    """

    t: float
    images: NDArray[np.uint8]
    depth: NDArray[np.float32]
    labels: NDArray[np.uint8]
    K: NDArray[np.float64]
    c2w: NDArray[np.float64]
    base: NDArray[np.float64]
    mounts: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4, 4)))


def _invert(T: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


class SimRig:
    """Renders the rig at scene time ``t`` and splits its poses into base motion and mounts."""

    def __init__(self, config: SimRigConfig) -> None:
        self.config = config
        rig = get_rig(config.rig)
        rig_names = [c.name for c in rig.cameras]
        names = list(config.cameras) or rig_names
        if len(names) != len(rig_names):
            raise ValueError(
                f"rig {config.rig!r} has {len(rig_names)} cameras ({', '.join(rig_names)}) but"
                f" {len(names)} camera names were given: {names}"
            )
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"camera names must be unique and non-empty, got {names}")
        self.cameras: list[str] = names
        self.scene = make_scene(config.scene_seed)
        self._changes = tuple(sorted(config.changes, key=lambda ch: ch.t))
        self._changed: dict[int, Scene] = {0: self.scene}
        apply_changes(self.scene, self._changes)  # unknown objects fail here, at construction
        self.static_mounts = self._find_static_mounts()
        self._loop: list[RigFrame] = []

    @property
    def loop_frames(self) -> int:
        """Frames of the replayed loop (0: live rendering)."""
        c = self.config
        return max(1, round(c.loop_s * c.rate_hz)) if c.loop_s > 0 else 0

    def prerender(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Render the loop's frames (``loop_frames`` ticks at ``rate_hz`` from t = 0)."""
        n = self.loop_frames
        frames = []
        for k in range(n):
            frames.append(self.render(k / self.config.rate_hz))
            if progress is not None:
                progress(k + 1, n)
        self._loop = frames

    def frame_at(self, t: float) -> RigFrame:
        """The rig at scene time ``t``: rendered now, or the loop's frame for ``t``."""
        if not self.loop_frames:
            return self.render(t)
        if not self._loop:
            self.prerender()
        k = math.floor(t * self.config.rate_hz + 1e-6) % len(self._loop)
        return self._loop[k]

    def optical_frame(self, camera: str) -> str:
        return f"{camera}_optical_frame"

    def poses(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(c2w (v, 4, 4), K (v, 3, 3)) at scene time t, float64 numpy."""
        c = self.config
        c2w, K = rig_cameras(self.scene, c.rig, t, c.height, c.width, seed=c.trajectory_seed)
        c2w_np = c2w.double().numpy().copy()
        # rig_cameras works in float32: re-orthonormalise so TF carries exact rotations.
        U, _, Vt = np.linalg.svd(c2w_np[:, :3, :3])
        c2w_np[:, :3, :3] = U @ Vt
        return c2w_np, K.double().numpy()

    def _mounts(self, c2w: NDArray[np.float64]) -> NDArray[np.float64]:
        base_inv = _invert(c2w[0])
        return np.stack([base_inv @ T for T in c2w])

    def _find_static_mounts(self) -> list[bool]:
        """Per camera: is T_base_camera the same at every probe time (then it goes on
        /tf_static)?"""
        mounts = np.stack([self._mounts(self.poses(t)[0]) for t in _RIGIDITY_PROBE_TIMES])
        spread = np.abs(mounts - mounts[:1]).max(axis=(0, 2, 3))
        return [bool(s < 1e-5) for s in spread]

    def scene_at(self, t: float) -> Scene:
        """The world at scene time ``t``: the scene with every change due by ``t`` applied."""
        due = tuple(ch for ch in self._changes if ch.t <= t)
        if len(due) not in self._changed:
            self._changed[len(due)] = apply_changes(self.scene, due)
        return self._changed[len(due)]

    def render(self, t: float) -> RigFrame:
        """Every camera at scene time ``t`` (seconds)."""
        c = self.config
        c2w, K = self.poses(t)
        with torch.no_grad():
            views = render_views(
                self.scene_at(t),
                torch.from_numpy(c2w).float(),
                torch.from_numpy(K).float(),
                c.height,
                c.width,
            )
        images = (views.images.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
        labels = views.labels if views.labels is not None else torch.full_like(views.depth, -1)
        labels = torch.where(labels < 0, torch.full_like(labels, 255), labels).clamp(0, 255)
        return RigFrame(
            t=t,
            images=images.permute(0, 2, 3, 1).contiguous().numpy(),
            depth=views.depth.to(torch.float32).contiguous().numpy(),
            labels=labels.to(torch.uint8).numpy(),
            K=K,
            c2w=c2w,
            base=c2w[0].copy(),
            mounts=self._mounts(c2w),
        )


# --------------------------------------------------------------------------------------------
# rclpy node
# --------------------------------------------------------------------------------------------
