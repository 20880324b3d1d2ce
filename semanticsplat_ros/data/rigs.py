"""Camera rigs (stereo head, head + wrist, ring of 4) moving along a scene's camera loop.

A robot's *head* moves along ``Scene.path`` (clear of furniture) at 0.2-0.35 m/s, at a height of
0.9-1.45 m, looking mostly towards the furniture in the middle of the room with a slow side to
side sweep and a downward pitch. Each rig camera is fixed in the head frame (x forward, y left,
z up): an offset in metres, a yaw / pitch offset, a horizontal field of view. A camera marked
``look_at_fixation`` (the wrist camera) instead looks at the head's fixation point, 2 m along the
head's optical axis, so that the two views overlap.

Everything is a pure function of (scene, rig, t, seed): a live source calls ``rig_cameras`` at
successive times, a dataset at sampled times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.data.scene import Scene

FIXATION_DISTANCE = 2.0
"""Metres along the head's optical axis to the point ``look_at_fixation`` cameras look at."""


@dataclass(frozen=True)
class RigCamera:
    """One camera of a rig, fixed in the head frame (x forward, y left, z up)."""

    name: str
    """Camera name (used for topic names and file names)."""
    offset: tuple[float, float, float]
    """Position in the head frame, metres."""
    yaw_deg: float = 0.0
    """Heading offset, degrees, positive to the left."""
    pitch_deg: float = 0.0
    """Pitch offset, degrees, positive up."""
    hfov_deg: float = 70.0
    """Horizontal field of view, degrees (square pixels, principal point at the centre)."""
    look_at_fixation: bool = False
    """Ignore yaw/pitch and look at the head's fixation point (a wrist camera)."""


@dataclass(frozen=True)
class Rig:
    """A named set of cameras moving together."""

    name: str
    """Registry key."""
    description: str
    """One line for --help and docs."""
    cameras: tuple[RigCamera, ...]
    """The cameras, in output order."""


RIGS: dict[str, Rig] = {
    "mono": Rig("mono", "one head camera, 70° HFOV", (RigCamera("head", (0.0, 0.0, 0.0)),)),
    "stereo": Rig(
        "stereo",
        "robot head stereo pair, 11 cm baseline, 70° HFOV",
        (
            RigCamera("left", (0.0, 0.055, 0.0)),
            RigCamera("right", (0.0, -0.055, 0.0)),
        ),
    ),
    "head_wrist": Rig(
        "head_wrist",
        "head camera (70°) + wrist camera 0.3 m ahead, 0.45 m lower, looking at the head's "
        "fixation point (80°)",
        (
            RigCamera("head", (0.0, 0.0, 0.0)),
            RigCamera("wrist", (0.3, -0.18, -0.45), hfov_deg=80.0, look_at_fixation=True),
        ),
    ),
    "ring4": Rig(
        "ring4",
        "four cameras on a 10 cm ring every 90°, 110° HFOV (about 20° overlap between neighbours)",
        tuple(
            RigCamera(
                name,
                (0.1 * math.cos(math.radians(a)), 0.1 * math.sin(math.radians(a)), 0.0),
                yaw_deg=a,
                hfov_deg=110.0,
            )
            for name, a in (("front", 0.0), ("left", 90.0), ("back", 180.0), ("right", 270.0))
        ),
    ),
}
"""Rig name -> description. ``rig_cameras`` accepts these names."""


def get_rig(name: str) -> Rig:
    """The rig called ``name``; ValueError listing the known rigs otherwise."""
    if name not in RIGS:
        raise ValueError(f"unknown rig {name!r}; known rigs: {', '.join(RIGS)}")
    return RIGS[name]


def intrinsics_from_fov(hfov_deg: float, height: int, width: int) -> Float[Tensor, "3 3"]:
    """K in pixels (centres at +0.5) for a horizontal FOV, square pixels, centred principal point."""
    if not 1.0 <= hfov_deg <= 170.0:
        raise ValueError(f"hfov_deg must be in [1, 170], got {hfov_deg}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return torch.tensor(
        [[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float32
    )


def look_at(
    eye: Float[Tensor, "3"] | np.ndarray, target: Float[Tensor, "3"] | np.ndarray
) -> Float[Tensor, "4 4"]:
    """c2w of an OpenCV camera at ``eye`` looking at ``target``, no roll (world z up)."""
    eye_t = torch.as_tensor(np.asarray(eye, dtype=np.float64))
    fwd = torch.as_tensor(np.asarray(target, dtype=np.float64)) - eye_t
    norm = float(fwd.norm())
    if norm < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    fwd = fwd / norm
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    right = torch.linalg.cross(fwd, up)
    if float(right.norm()) < 1e-6:  # looking straight up/down: any right vector
        right = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, fwd, eye_t
    return c2w.to(torch.float32)


@dataclass(frozen=True)
class HeadState:
    """The robot head at one time: position (metres, world), heading and pitch (radians)."""

    position: np.ndarray
    yaw: float
    pitch: float


@dataclass(frozen=True)
class _Trajectory:
    phase: float
    direction: float
    speed: float
    height: float
    bob_period: float
    sweep_amp: float
    sweep_period: float
    sweep_phase: float


def _trajectory(scene: Scene, seed: int) -> _Trajectory:
    rng = np.random.default_rng([scene.seed, int(seed), 0x0C4A])
    phase = rng.uniform(0.0, 1.0)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    speed = rng.uniform(0.2, 0.35)
    height = rng.uniform(0.9, 1.45)
    bob_period = rng.uniform(6.0, 10.0)
    # Gentle sweep (at most ~0.2 rad/s) so that frames a second apart still overlap a lot.
    sweep_amp = rng.uniform(0.2, 0.4)
    sweep_period = rng.uniform(12.0, 20.0)
    sweep_phase = rng.uniform(0.0, 2 * math.pi)
    return _Trajectory(
        phase, direction, speed, height, bob_period, sweep_amp, sweep_period, sweep_phase
    )


def loop_period_s(scene: Scene, seed: int = 0) -> float:
    """Seconds trajectory ``seed`` takes to go once round the scene's camera loop."""
    return scene.path.perimeter() / _trajectory(scene, seed).speed


def head_state(scene: Scene, t: float, seed: int = 0) -> HeadState:
    """Where the head is and where it looks at time ``t`` (seconds) on trajectory ``seed``."""
    tr = _trajectory(scene, seed)
    phase, direction, speed, height = tr.phase, tr.direction, tr.speed, tr.height
    bob_period, sweep_amp, sweep_period, sweep_phase = (
        tr.bob_period,
        tr.sweep_amp,
        tr.sweep_period,
        tr.sweep_phase,
    )
    path = scene.path
    s = phase + direction * speed * t / path.perimeter()
    xy = path.point(s)
    z = height + 0.08 * math.sin(2 * math.pi * t / bob_period)
    position = np.array([xy[0], xy[1], z])
    target = np.asarray(path.look_at)
    to_target = target - position
    yaw = math.atan2(to_target[1], to_target[0])
    yaw += sweep_amp * math.sin(2 * math.pi * t / sweep_period + sweep_phase)
    pitch = math.atan2(to_target[2], float(np.linalg.norm(to_target[:2])))
    pitch = float(np.clip(pitch + 0.05 * math.sin(2 * math.pi * t / 7.0), -0.6, 0.1))
    return HeadState(position, float(yaw), pitch)


def _direction(yaw: float, pitch: float) -> np.ndarray:
    return np.array(
        [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
    )


def rig_cameras(
    scene: Scene, rig: str | Rig, t: float, height: int, width: int, *, seed: int = 0
) -> tuple[Float[Tensor, "v 4 4"], Float[Tensor, "v 3 3"]]:
    """c2w (v, 4, 4) and K (v, 3, 3) of the rig's cameras at time ``t`` (seconds).

    ``rig``: a registered name (``RIGS``) or a ``Rig`` (e.g. ``random_rigs.sample_rig``'s).

    ``seed`` picks the trajectory (start point, direction, speed, height, sweep) on the
    scene's camera loop; ``t`` may be any real number (the loop is closed).
    """
    spec = get_rig(rig) if isinstance(rig, str) else rig
    if not spec.cameras:
        raise ValueError(f"rig {spec.name!r} has no cameras")
    head = head_state(scene, t, seed)
    c, s = math.cos(head.yaw), math.sin(head.yaw)
    fixation = head.position + FIXATION_DISTANCE * _direction(head.yaw, head.pitch)
    c2ws, Ks = [], []
    for cam in spec.cameras:
        ox, oy, oz = cam.offset
        eye = head.position + np.array([c * ox - s * oy, s * ox + c * oy, oz])
        if cam.look_at_fixation:
            target = fixation
        else:
            yaw = head.yaw + math.radians(cam.yaw_deg)
            pitch = head.pitch + math.radians(cam.pitch_deg)
            target = eye + _direction(yaw, pitch)
        c2ws.append(look_at(eye, target))
        Ks.append(intrinsics_from_fov(cam.hfov_deg, height, width))
    return torch.stack(c2ws), torch.stack(Ks)
