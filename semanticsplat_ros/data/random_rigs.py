"""Random camera rigs and image aspects, so a model trained on them is not tied to one robot head.

``sample_rig`` draws (probabilities documented there) a mono camera, a stereo pair with a
5-50 cm baseline, or a 3-4 camera rig (a forward-facing fan whose neighbours overlap by 20-50%,
or a ring of four 110° cameras like ``rigs.RIGS["ring4"]``), every camera of a rig with the same
horizontal FOV in 50-110°. ``rigs.rig_cameras`` poses such a ``Rig`` along a scene's camera loop
as it poses a named rig.
"""

from __future__ import annotations

import math

import numpy as np

from semanticsplat_ros.data.rigs import Rig, RigCamera

RIG_KIND_PROBS: dict[str, float] = {"mono": 0.3, "stereo": 0.45, "multi": 0.25}
"""Probability of each kind of rig ``sample_rig`` draws."""

MULTI_RING_PROB = 0.2
"""Probability that a multi-camera rig is a ring of four 110° cameras rather than a fan."""

HFOV_RANGE_DEG = (50.0, 110.0)
"""Horizontal field of view range (degrees), uniform, one value per rig."""

BASELINE_RANGE_M = (0.05, 0.50)
"""Stereo baseline range (metres), uniform."""

FAN_OVERLAP_RANGE = (0.2, 0.5)
"""Angular overlap between neighbouring cameras of a fan, as a fraction of the HFOV."""

ASPECTS: dict[str, tuple[int, int]] = {"4:3": (3, 4), "16:9": (9, 16), "1:1": (1, 1)}
"""Aspect name -> (height, width) ratio."""

ASPECT_PROBS: dict[str, float] = {"4:3": 0.5, "16:9": 0.35, "1:1": 0.15}
"""Probability of each aspect ``sample_aspect`` draws."""


def mono_rig(hfov: float) -> Rig:
    """One head camera of horizontal FOV ``hfov`` (degrees)."""
    return Rig(
        f"random_mono_{hfov:.0f}deg",
        f"random mono camera, {hfov:.0f}° HFOV",
        (RigCamera("head", (0.0, 0.0, 0.0), hfov_deg=hfov),),
    )


def _stereo(rng: np.random.Generator, hfov: float) -> Rig:
    b = float(rng.uniform(*BASELINE_RANGE_M))
    cams = (
        RigCamera("left", (0.0, b / 2, 0.0), hfov_deg=hfov),
        RigCamera("right", (0.0, -b / 2, 0.0), hfov_deg=hfov),
    )
    return Rig(
        f"random_stereo_{b:.2f}m_{hfov:.0f}deg",
        f"random stereo pair, {100 * b:.1f} cm baseline, {hfov:.0f}° HFOV",
        cams,
    )


def _fan(rng: np.random.Generator, hfov: float, cameras: int | None = None) -> Rig:
    n = int(rng.integers(3, 5)) if cameras is None else cameras
    overlap = float(rng.uniform(*FAN_OVERLAP_RANGE))
    step = hfov * (1.0 - overlap)
    radius = float(rng.uniform(0.05, 0.15))
    cams = []
    for i in range(n):
        yaw = (i - (n - 1) / 2) * step
        a = math.radians(yaw)
        cams.append(
            RigCamera(f"cam{i}", (radius * math.cos(a), radius * math.sin(a), 0.0), yaw, 0.0, hfov)
        )
    return Rig(
        f"random_fan{n}_{radius:.2f}m_{hfov:.0f}deg",
        f"random fan of {n} cameras on a {100 * radius:.0f} cm arc, {step:.0f}° apart,"
        f" {hfov:.0f}° HFOV ({100 * overlap:.0f}% overlap between neighbours)",
        tuple(cams),
    )


def _ring4(rng: np.random.Generator) -> Rig:
    radius = float(rng.uniform(0.05, 0.15))
    hfov = HFOV_RANGE_DEG[1]  # 90° apart: 110° is the most overlap (18%) the FOV range allows
    cams = tuple(
        RigCamera(
            name,
            (radius * math.cos(math.radians(a)), radius * math.sin(math.radians(a)), 0.0),
            a,
            0.0,
            hfov,
        )
        for name, a in (("front", 0.0), ("left", 90.0), ("back", 180.0), ("right", 270.0))
    )
    return Rig(
        f"random_ring4_{radius:.2f}m_{hfov:.0f}deg",
        f"random ring of 4 cameras every 90° on a {100 * radius:.0f} cm ring, {hfov:.0f}° HFOV",
        cams,
    )


def sample_rig(rng: np.random.Generator, cameras: int | None = None) -> Rig:
    """A random rig: mono 30%, stereo 45%, multi-camera 25% (RIG_KIND_PROBS); with ``cameras``
    (1-4) a random rig of exactly that many cameras (1 mono, 2 stereo, 3 a fan, 4 a fan or a
    ring).

    Mono: one head camera. Stereo: cameras at ±baseline/2 along the head's y axis (as
    ``rigs.RIGS["stereo"]``), baseline uniform in 5-50 cm. Multi: 80% a forward-facing fan of 3-4
    cameras on a 5-15 cm arc, yaws spaced so that neighbours overlap by 20-50% of the HFOV; 20% a
    ring of four 110° cameras every 90° (``ring4``'s layout, 18% overlap). The HFOV is uniform in
    50-110° and shared by all cameras of the rig (fixed at 110° for the ring).
    """
    if cameras is not None and cameras not in (1, 2, 3, 4):
        raise ValueError(f"cameras must be 1, 2, 3 or 4, got {cameras!r}")
    kinds = list(RIG_KIND_PROBS)
    kind = kinds[int(rng.choice(len(kinds), p=list(RIG_KIND_PROBS.values())))]
    if cameras is not None:
        kind = {1: "mono", 2: "stereo"}.get(cameras, "multi")
    hfov = float(rng.uniform(*HFOV_RANGE_DEG))
    if kind == "mono":
        return mono_rig(hfov)
    if kind == "stereo":
        return _stereo(rng, hfov)
    ring = rng.random() < MULTI_RING_PROB and cameras in (None, 4)
    return _ring4(rng) if ring else _fan(rng, hfov, cameras)


def image_size(aspect: str, width: int) -> tuple[int, int]:
    """(height, width) of an ``aspect`` image about ``width`` wide, both multiples of 4."""
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; known aspects: {', '.join(ASPECTS)}")
    if width < 4:
        raise ValueError(f"width must be at least 4, got {width}")
    ah, aw = ASPECTS[aspect]
    w = max(4, 4 * round(width / 4))
    return max(4, 4 * round(w * ah / aw / 4)), w


def sample_aspect(rng: np.random.Generator) -> str:
    """A random aspect name (a key of ASPECTS) with the probabilities ASPECT_PROBS."""
    names = list(ASPECT_PROBS)
    return names[int(rng.choice(len(names), p=list(ASPECT_PROBS.values())))]


def sample_image_size(rng: np.random.Generator, width: int) -> tuple[int, int]:
    """(height, width) of a random aspect (``sample_aspect``) about ``width`` wide."""
    return image_size(sample_aspect(rng), width)
