"""Training examples rendered from the synthetic world.

View sampling (what makes target views learnable from the context views): the context views are
frames of the head camera on one trajectory at times ``t0 .. t0 + span`` (0.5-1.4 s apart, so
0.1-0.5 m baselines with heavily overlapping frusta); target views are frames of the same
trajectory at random times strictly between the first and last context times, so every target
camera lies between context cameras and looks at what they see.

With ``ViewSampling(rig_instant=True)`` the context views are instead all cameras of a
multi-camera rig at one instant (a robot's synchronized stereo head: 11 cm apart, same time), and
each target is one of the rig's cameras at a random time within half a span of that instant: what
a model that runs on that rig sees, for fine-tuning it there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import get_rig, rig_cameras
from semanticsplat_ros.data.scene import Scene
from semanticsplat_ros.data.styled import WorldStyle, check_style, styled_example, styled_scene
from semanticsplat_ros.data.types import Example, Views


def cached_scene(seed: int, style: WorldStyle = "classic") -> Scene:
    """Scene ``seed`` of world ``style`` (``data.styled``), memoised."""
    return styled_scene(int(seed), style)


@dataclass(frozen=True)
class ViewSampling:
    """How context and target frames are picked along a trajectory."""

    min_span_s: float = 0.5
    """Shortest time between the first and last context frame (seconds; ~0.1 m of travel)."""
    max_span_s: float = 1.4
    """Longest time between the first and last context frame (seconds; ~0.5 m of travel)."""
    target_margin: float = 0.1
    """Targets are drawn in [margin, 1 - margin] of the context span."""
    rig: str = "mono"
    """Rig whose first camera takes the frames (all its cameras with ``rig_instant``)."""
    rig_instant: bool = False
    """Context = every camera of ``rig`` at one instant (num_context = its camera count); each
    target = a random camera of the rig at a time within ``max_span_s / 2`` of that instant."""
    style: WorldStyle = "classic"
    """World style (``data.styled``): ``classic`` (the embedded world seen by ``rig``), or
    ``varied`` / ``held-out`` (random rooms, lights and sensors; with ``rig_instant`` through
    ``rig``'s cameras, otherwise each example draws its own camera or rig)."""

    def __post_init__(self) -> None:
        get_rig(self.rig)  # ValueError naming the known rigs
        check_style(self.style)
        if not 0 < self.min_span_s <= self.max_span_s:
            raise ValueError(
                f"context span must satisfy 0 < min <= max, got"
                f" ({self.min_span_s}, {self.max_span_s}) s"
            )
        if not 0 <= self.target_margin < 0.5:
            raise ValueError(f"target_margin must be in [0, 0.5), got {self.target_margin}")


def sample_times(
    rng: np.random.Generator, num_context: int, num_target: int, sampling: ViewSampling
) -> tuple[np.ndarray, np.ndarray]:
    """Context times (sorted, spanning 0.5-1.4 s) and target times between them (seconds)."""
    t0 = rng.uniform(0.0, 300.0)
    span = rng.uniform(sampling.min_span_s, sampling.max_span_s)
    if num_context == 1:
        context = np.array([t0])
        target = t0 + rng.uniform(-0.25, 0.25, num_target) * span
    else:
        context = t0 + span * np.linspace(0.0, 1.0, num_context)
        m = sampling.target_margin
        target = t0 + span * rng.uniform(m, 1.0 - m, num_target)
    return context, target


def _check_counts(height: int, width: int, num_context: int, num_target: int) -> None:
    for name, value in (("height", height), ("width", width), ("num_context", num_context)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(num_target, int) or num_target < 0:
        raise ValueError(f"num_target must be an int >= 0, got {num_target!r}")


def render_times(
    scene: Scene,
    times: np.ndarray,
    height: int,
    width: int,
    *,
    trajectory: int = 0,
    rig: str = "mono",
) -> Views:
    """Render the first camera of ``rig`` at each of ``times`` on trajectory ``trajectory``."""
    if len(times) == 0:
        empty = render_views(scene, *rig_cameras(scene, rig, 0.0, height, width), height, width)
        return empty.index_views([])
    cams = [rig_cameras(scene, rig, float(t), height, width, seed=trajectory) for t in times]
    c2w = torch.stack([c[0][0] for c in cams])
    K = torch.stack([c[1][0] for c in cams])
    return render_views(scene, c2w, K, height, width)


def check_sampling(sampling: ViewSampling, num_context: int) -> None:
    """ValueError when ``sampling`` cannot give ``num_context`` context views."""
    rig = get_rig(sampling.rig)
    if sampling.rig_instant and num_context != len(rig.cameras):
        raise ValueError(
            f"rig_instant takes one context view per camera of rig {rig.name!r}: num_context"
            f" must be {len(rig.cameras)}, got {num_context}"
        )


def _rig_instant_example(
    scene: Scene,
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    num_target: int,
    trajectory: int,
    sampling: ViewSampling,
) -> Example:
    """Context: the rig's cameras at one instant; targets: its cameras near that instant."""
    t0 = rng.uniform(0.0, 300.0)
    c2w, K = rig_cameras(scene, sampling.rig, t0, height, width, seed=trajectory)
    target_t = t0 + rng.uniform(-0.5, 0.5, num_target) * sampling.max_span_s
    which = rng.integers(0, len(c2w), num_target)
    cams = [
        rig_cameras(scene, sampling.rig, float(t), height, width, seed=trajectory) for t in target_t
    ]
    t_c2w = [cam[0][int(i)] for cam, i in zip(cams, which, strict=True)]
    t_K = [cam[1][int(i)] for cam, i in zip(cams, which, strict=True)]
    views = render_views(
        scene, torch.cat([c2w, *(m[None] for m in t_c2w)]), torch.cat([K, *(k[None] for k in t_K)]),
        height, width,
    )  # fmt: skip
    context = views.index_views(list(range(len(c2w))))
    target = views.index_views(list(range(len(c2w), len(c2w) + num_target)))
    return Example(context, target, scene_id=f"synthetic_{scene.seed:06d}_{trajectory}")


def make_example(
    seed: int,
    height: int = 64,
    width: int = 64,
    *,
    num_context: int = 2,
    num_target: int = 2,
    index: int = 0,
    sampling: ViewSampling | None = None,
) -> Example:
    """Example ``index`` of scene ``seed``: deterministic in (seed, index, sizes, counts)."""
    _check_counts(height, width, num_context, num_target)
    sampling = ViewSampling() if sampling is None else sampling
    check_sampling(sampling, num_context)
    scene = cached_scene(int(seed), sampling.style)
    rng = np.random.default_rng([int(seed), int(index), 0xE8A])
    if sampling.style != "classic":
        rig = get_rig(sampling.rig) if sampling.rig_instant else None
        times = sample_times(rng, num_context, num_target, sampling)
        return styled_example(
            int(seed), sampling.style, height, width, num_context=num_context,
            num_target=num_target, index=int(index), times=times, rig=rig,
        )  # fmt: skip
    if sampling.rig_instant:
        return _rig_instant_example(
            scene,
            rng,
            height,
            width,
            num_target=num_target,
            trajectory=int(index),
            sampling=sampling,
        )
    context_t, target_t = sample_times(rng, num_context, num_target, sampling)
    trajectory = int(index)
    times = np.concatenate([context_t, target_t])
    views = render_times(scene, times, height, width, trajectory=trajectory, rig=sampling.rig)
    context = views.index_views(list(range(num_context)))
    target = views.index_views(list(range(num_context, num_context + num_target)))
    return Example(context, target, scene_id=f"synthetic_{int(seed):06d}_{int(index)}")


class SyntheticDataset(Dataset):
    """Examples rendered on the fly from scenes ``seeds`` (``examples_per_scene`` each).

    Item i is example ``i % examples_per_scene`` of scene ``seeds[i // examples_per_scene]``;
    it depends only on (seed, index) and the sizes, never on worker or call order.
    """

    def __init__(
        self,
        seeds: range,
        height: int = 64,
        width: int = 64,
        *,
        num_context: int = 2,
        num_target: int = 2,
        examples_per_scene: int = 1,
        sampling: ViewSampling | None = None,
        near: float | None = None,
    ):
        """``near``: the near plane written into the views (metres; default ``DEFAULT_NEAR``). It
        sets only the cost volume's range, not the rendering: evaluate a model with the near
        plane it was trained with."""
        if not isinstance(seeds, range) or len(seeds) == 0:
            raise ValueError(f"seeds must be a non-empty range, got {seeds!r}")
        if not isinstance(examples_per_scene, int) or examples_per_scene < 1:
            raise ValueError(f"examples_per_scene must be an int >= 1, got {examples_per_scene!r}")
        _check_counts(height, width, num_context, num_target)
        if near is not None and not 0 < near < 1e3:
            raise ValueError(f"near must be in (0, 1000) metres, got {near}")
        self.near = near
        self.seeds = seeds
        self.height = height
        self.width = width
        self.num_context = num_context
        self.num_target = num_target
        self.examples_per_scene = examples_per_scene
        self.sampling = ViewSampling() if sampling is None else sampling
        check_sampling(self.sampling, num_context)

    def __len__(self) -> int:
        return len(self.seeds) * self.examples_per_scene

    def __getitem__(self, i: int) -> Example:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        i = i % len(self)
        seed = self.seeds[i // self.examples_per_scene]
        example = make_example(
            seed,
            self.height,
            self.width,
            num_context=self.num_context,
            num_target=self.num_target,
            index=i % self.examples_per_scene,
            sampling=self.sampling,
        )
        if self.near is None:
            return example
        return replace(
            example,
            context=replace(example.context, near=torch.full_like(example.context.near, self.near)),
            target=replace(example.target, near=torch.full_like(example.target.near, self.near)),
        )
