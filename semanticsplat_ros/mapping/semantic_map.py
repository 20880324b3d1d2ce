"""The persistent semantic map: fuse encoded scenes into voxels in the fixed frame, carve free
space, answer text and point queries with instances, save / load as PLY. No ROS.

Each ``fuse`` (one scene, any number of cameras):

1. its valid pixels are averaged per voxel (``fusion.observe``);
2. live voxels that a camera sees through lose one evidence (``fusion.seen_through``);
3. voxels the scene puts points in update their running means (the newest observation weighs
   at least 1 / (max_weight + 1)), gain one evidence (at most ``max_evidence``) and their
   last-seen stamp; voxels left without evidence are removed;
4. new voxels are added; past ``max_voxels`` the oldest voxels make room first, and among equally
   old ones those farthest from the scene's cameras.

Language is stored as the model's low-dimensional latent (``MapIdentity.language_dim``
channels per voxel, fp16) and expanded to the text encoder's space only when a text query or a
relabelling needs it, by the model's expander given at construction (``LanguageExpander``): a
scene's fusion moves 16 channels per pixel rather than hundreds, and a voxel costs
``bytes_per_voxel``.

Instances are the connected components of same-label voxels (``instances.label_components``),
computed when a query needs them and kept until the map changes; their ids are renumbered by
every change. All methods are thread-safe (one lock), so a node may fuse from one thread and
answer queries from others.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.mapping.config import MapConfig, MapIdentity
from semanticsplat_ros.mapping.fusion import Observation, SceneLike, observe, seen_through
from semanticsplat_ros.mapping.instances import label_components
from semanticsplat_ros.mapping.io import read_map, write_map
from semanticsplat_ros.mapping.voxels import VoxelArrays, VoxelStore, pack_keys
from semanticsplat_ros.model.semanticsplat import SemanticSplat
from semanticsplat_ros.queries import (
    TEMPERATURE,
    OrientedBox,
    check_text_embeddings,
    oriented_box,
    query_scores,
)

_CHUNK = 32_768
"""Voxels scored per step of a text query (bounds the float32 copy of fp16 features)."""

LanguageExpander = Callable[[Tensor], Tensor]
"""(n, language_dim) stored latents -> (n, feature_dim) features in the text encoder's space,
e.g. ``model.language_expander.points`` of the model that made the scenes."""


@dataclass
class MapInstance:
    """One instance of the map: a connected component of same-label voxels. Field names follow
    ``pipeline.SegmentResult`` (less the masks), so a node can answer with either."""

    instance_id: int
    """The component's id (``MapCloud.instance``); valid until the map next changes."""
    class_id: int
    """Index into the map's ``classes``."""
    label: str
    """The class name."""
    score: float
    """Text queries: the mean query score of its voxels; ``segment_point``: the mean share of
    its label in its voxels' class histograms."""
    points: np.ndarray
    """(n, 3) float32 voxel positions (mean of their points), fixed frame, metres."""
    colors: np.ndarray
    """(n, 3) uint8 RGB of those voxels."""
    point_labels: np.ndarray
    """(n,) int64 class ids (all ``class_id``)."""
    point_scores: np.ndarray
    """(n,) float32 per-voxel scores (query scores, or label shares)."""
    centroid: np.ndarray
    """(3,) float64 mean of ``points``."""
    box: OrientedBox
    """PCA-aligned box around ``points`` (``queries.oriented_box``)."""


@dataclass
class MapCloud:
    """Every voxel as a point, in key order (n voxels): what ``~/map_cloud`` publishes."""

    xyz: np.ndarray
    """(n, 3) float32 fixed frame, metres."""
    rgb: np.ndarray
    """(n, 3) uint8."""
    label: np.ndarray
    """(n,) int64 class ids."""
    score: np.ndarray
    """(n,) float32 share of the label in the voxel's class histogram."""
    instance: np.ndarray
    """(n,) int64 instance (component) ids."""


@dataclass
class FuseReport:
    """What one ``fuse`` did, and what it cost."""

    observed: int
    """Voxels the scene put points in."""
    added: int
    updated: int
    seen_through: int
    """Live voxels a camera saw through (each lost one evidence)."""
    removed: int
    """Voxels removed for having no evidence left."""
    evicted: int
    """Voxels evicted (or new ones dropped) to stay within max_voxels."""
    voxels: int
    """Voxels in the map afterwards."""
    seconds: float
    observe_s: float
    carve_s: float
    integrate_s: float


class SemanticMap:
    """A voxel-hashed semantic map in the fixed frame of the scenes' ``c2w``."""

    def __init__(
        self,
        config: MapConfig,
        identity: MapIdentity,
        classes: Sequence[str] = (),
        expander: LanguageExpander | None = None,
    ) -> None:
        """``expander`` expands the stored language latents for text queries and relabelling;
        without one the stored features are taken as the text-space features, which needs the
        identity's ``language_dim`` to be its ``feature_dim`` (otherwise the map fuses, saves,
        loads and answers point queries, and text queries are a ValueError)."""
        if not isinstance(config, MapConfig):
            raise TypeError(f"config must be a MapConfig, got {type(config).__name__}")
        if not isinstance(identity, MapIdentity):
            raise TypeError(f"identity must be a MapIdentity, got {type(identity).__name__}")
        if expander is not None and not callable(expander):
            raise TypeError(f"expander must be callable, got {type(expander).__name__}")
        self.config = config
        self.identity = identity
        self._expander = expander
        self._device = torch.device(config.device)
        self._lock = threading.RLock()
        self._classes = _check_classes(classes, allow_empty=True)
        self._store = self._new_store(len(self._classes))
        self._stamp: float | None = None
        self._components: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ state

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names the voxels' histograms are over (empty until the first scene)."""
        return self._classes

    @property
    def stamp(self) -> float | None:
        """Stamp of the latest fused scene (or the latest voxel of a loaded map), seconds."""
        return self._stamp

    def __len__(self) -> int:
        return self._store.size

    @property
    def nbytes(self) -> int:
        """Bytes held by the map's arrays (slots allocated, index, free list)."""
        store = self._store
        tensors = [t for _, t in store.arrays.items()]
        tensors += [store.sorted_keys, store.sorted_slots, store._free]
        return sum(t.numel() * t.element_size() for t in tensors)

    def clear(self) -> None:
        """Remove every voxel (the class list and identity stay)."""
        with self._lock:
            self._store = self._new_store(len(self._classes))
            self._stamp = None
            self._components = None

    def _new_store(self, num_classes: int) -> VoxelStore:
        identity = self.identity
        return VoxelStore(
            identity.language_dim,
            num_classes,
            identity.seg_dim,
            self.config.max_voxels,
            self._device,
        )

    # ------------------------------------------------------------------ fusion

    @torch.no_grad()
    def fuse(self, scene: SceneLike, class_embeddings: Tensor | None = None) -> FuseReport:
        """Fuse one scene (``pipeline.EncodedScene`` or anything with its fields, see
        ``fusion.SceneLike``). When the scene's classes differ from the map's, the map is
        relabelled with ``class_embeddings`` ((k, c), the scene's classes' text embeddings)
        first; without them that is a ValueError (an empty map just takes the scene's
        classes). Raises ValueError/TypeError on a malformed scene, leaving the map as it was."""
        with self._lock:
            t0 = time.perf_counter()
            stamp = float(scene.stamp)
            if not math.isfinite(stamp):
                raise ValueError(f"scene.stamp must be finite, got {scene.stamp}")
            obs = observe(scene, self.config, self.identity, self._device)
            self._adopt_classes(tuple(scene.classes), class_embeddings)
            t1 = time.perf_counter()
            store = self._store
            missed = torch.zeros(0, dtype=torch.int64, device=self._device)
            if self.config.carve and store.size:
                slots = store.order
                missed = slots[seen_through(store.arrays.position[slots], scene, self.config)]
                store.arrays.evidence[missed] -= 1
            t2 = time.perf_counter()
            found = store.lookup(obs.keys)
            old = found >= 0
            self._update(found[old], obs, old, stamp)
            gone = missed[store.arrays.evidence[missed] <= 0]
            store.remove(gone)
            new = torch.nonzero(~old)[:, 0]
            new, evicted = self._make_room(new, obs)
            if new.numel():
                store.insert(self._new_voxels(obs, new, stamp))
            self._components = None
            self._stamp = stamp if self._stamp is None else max(self._stamp, stamp)
            t3 = time.perf_counter()
            return FuseReport(
                observed=int(obs.keys.shape[0]),
                added=int(new.numel()),
                updated=int(old.sum()),
                seen_through=int(missed.numel()),
                removed=int(gone.numel()),
                evicted=evicted,
                voxels=store.size,
                seconds=t3 - t0,
                observe_s=t1 - t0,
                carve_s=t2 - t1,
                integrate_s=t3 - t2,
            )

    def _adopt_classes(self, classes: tuple[str, ...], class_embeddings: Tensor | None) -> None:
        if classes == self._classes:
            return
        classes = _check_classes(classes)
        if self._store.size == 0:
            self._classes = classes
            self._store = self._new_store(len(classes))
            return
        if class_embeddings is None:
            raise ValueError(
                f"the scene is labelled with classes {list(classes)} but the map with "
                f"{list(self._classes)}: give the scene's class embeddings to relabel the map, "
                "or clear it"
            )
        self.relabel(classes, class_embeddings)

    def _update(self, slots: Tensor, obs: Observation, rows: Tensor, stamp: float) -> None:
        """Running means of the observed voxels ``slots`` with observation rows ``rows``."""
        a = self._store.arrays
        w = a.count[slots].clamp(max=self.config.max_weight).float()[:, None]
        keep, take = w / (w + 1), 1 / (w + 1)
        a.position[slots] = a.position[slots] * keep + obs.position[rows] * take
        a.color[slots] = a.color[slots] * keep + obs.color[rows] * take
        a.opacity[slots] = a.opacity[slots] * keep[:, 0] + obs.opacity[rows] * take[:, 0]
        language = a.language[slots].float() * keep + obs.language[rows] * take
        a.language[slots] = language.to(torch.float16)
        segmentation = a.segmentation[slots].float() * keep + obs.segmentation[rows] * take
        a.segmentation[slots] = segmentation.to(torch.float16)
        a.class_hist[slots] = a.class_hist[slots] * keep + obs.class_hist[rows] * take
        a.count[slots] += 1
        a.evidence[slots] = (a.evidence[slots] + 1).clamp(max=self.config.max_evidence)
        a.last_seen[slots] = stamp

    def _new_voxels(self, obs: Observation, rows: Tensor, stamp: float) -> VoxelArrays:
        m = rows.shape[0]
        return VoxelArrays(
            key=obs.keys[rows],
            position=obs.position[rows],
            color=obs.color[rows],
            opacity=obs.opacity[rows],
            language=obs.language[rows].to(torch.float16),
            segmentation=obs.segmentation[rows].to(torch.float16),
            class_hist=obs.class_hist[rows],
            count=torch.ones(m, dtype=torch.int32, device=self._device),
            evidence=torch.ones(m, dtype=torch.int16, device=self._device),
            last_seen=torch.full((m,), stamp, dtype=torch.float64, device=self._device),
        )

    def _make_room(self, new: Tensor, obs: Observation) -> tuple[Tensor, int]:
        """Evict live voxels (oldest first, then farthest from the cameras) so that the new
        observation rows ``new`` fit; when they alone exceed max_voxels, keep the nearest.
        Returns the rows to insert and how many voxels were evicted or dropped."""
        store, limit = self._store, self.config.max_voxels
        excess = store.size + new.numel() - limit
        if excess <= 0:
            return new, 0
        centres = obs.camera_centres
        evict = min(excess, store.size)
        if evict:
            slots = store.order
            dist = torch.cdist(store.arrays.position[slots], centres).min(dim=1).values
            by_dist = torch.argsort(dist, descending=True, stable=True)
            by_age = torch.argsort(store.arrays.last_seen[slots][by_dist], stable=True)
            store.remove(slots[by_dist[by_age[:evict]]])
        dropped = new.numel() - limit
        if dropped > 0:
            dist = torch.cdist(obs.position[new], centres).min(dim=1).values
            new = new[torch.argsort(dist, stable=True)[:limit]].sort().values
        return new, evict + max(dropped, 0)

    @torch.no_grad()
    def relabel(self, classes: Sequence[str], class_embeddings: Tensor) -> None:
        """Replace the class list: every voxel's histogram becomes the class probabilities of
        its mean language feature (softmax of the cosines at ``queries.TEMPERATURE``, as the
        pipeline labels pixels). class_embeddings: (k, c) text embeddings of ``classes``."""
        classes = _check_classes(classes)
        emb = _as_embeddings(class_embeddings, self.identity.feature_dim, "class_embeddings")
        if emb.shape[0] != len(classes):
            raise ValueError(f"got {emb.shape[0]} class embeddings for {len(classes)} classes")
        with self._lock:
            store = self._store
            emb = F.normalize(emb.to(self._device), dim=1)
            hist = torch.zeros(store.arrays.capacity, len(classes), device=self._device)
            slots = store.order
            for start in range(0, slots.numel(), _CHUNK):
                part = slots[start : start + _CHUNK]
                cos = F.normalize(self._expand(store.arrays.language[part]), dim=1) @ emb.T
                hist[part] = (cos / TEMPERATURE).softmax(dim=1)
            store.arrays.class_hist = hist
            self._classes = classes
            self._components = None

    # ------------------------------------------------------------------ queries

    def _expand(self, latents: Tensor) -> Tensor:
        """(n, feature_dim) float32 language features of stored latents (ValueError when they
        need an expander and the map has none, or the expander gives the wrong shape)."""
        identity = self.identity
        x = latents.float()
        if self._expander is None:
            if identity.language_dim == identity.feature_dim:
                return x  # the stored features are the text-space features themselves
            raise ValueError(
                f"this map stores {identity.language_dim}-d language latents; text queries need "
                "the expander of the model that made them"
            )
        out = self._expander(x)
        if not isinstance(out, Tensor) or tuple(out.shape) != (x.shape[0], identity.feature_dim):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the language expander must give ({x.shape[0]}, {identity.feature_dim}), got {got}"
            )
        return out.float()

    def _instances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(component id, label, label share) per voxel in key order (cached)."""
        if self._components is None:
            store = self._store
            hist = store.arrays.class_hist[store.order]
            if hist.shape[1]:
                share, label = hist.max(dim=1)
            else:
                share = torch.zeros(hist.shape[0], device=hist.device)
                label = torch.zeros(hist.shape[0], dtype=torch.int64, device=hist.device)
            label_np = label.cpu().numpy().astype(np.int64)
            component, _ = label_components(store.sorted_keys.cpu().numpy(), label_np)
            self._components = (component, label_np, share.float().cpu().numpy())
        return self._components

    def _instance(self, component_id: int, score: float, voxel_scores: np.ndarray) -> MapInstance:
        component, labels, _ = self._instances()
        members = np.nonzero(component == component_id)[0]
        slots = self._store.order[torch.from_numpy(members).to(self._device)]
        a = self._store.arrays
        points = a.position[slots].cpu().numpy().astype(np.float32)
        colors = (a.color[slots] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        class_id = int(labels[members[0]])
        return MapInstance(
            instance_id=int(component_id),
            class_id=class_id,
            label=self._classes[class_id] if self._classes else "",
            score=float(score),
            points=points,
            colors=colors,
            point_labels=labels[members].copy(),
            point_scores=voxel_scores[members].astype(np.float32),
            centroid=points.astype(np.float64).mean(axis=0),
            box=oriented_box(torch.from_numpy(points)),
        )

    @torch.no_grad()
    def query_text(
        self,
        text_embedding: Float[Tensor, " c"],
        class_embeddings: Float[Tensor, "k c"],
        threshold: float = 0.5,
    ) -> list[MapInstance]:
        """Instances matching a text, best first. Each voxel is scored like a pixel of the
        rendered field (``queries.query_scores``: the text against the class list as
        negatives); an instance matches when the mean score of its voxels is >= ``threshold``
        and it has at least ``min_instance_voxels`` voxels. Ties go to the larger instance.

        text_embedding: (c,) the query's text embedding; class_embeddings: (k, c) the class
        list's (negatives and aliases); c = ``identity.feature_dim``.
        """
        if not isinstance(threshold, int | float) or not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        dim = self.identity.feature_dim
        query = _as_embeddings(text_embedding, dim, "text_embedding").reshape(-1)
        if query.shape[0] != dim:
            raise ValueError(
                f"text_embedding must have shape ({dim},), got one of {query.shape[0]}"
            )
        classes = _as_embeddings(class_embeddings, dim, "class_embeddings")
        with self._lock:
            if self._store.size == 0:
                return []
            scores = self._voxel_query_scores(query, classes)
            component, _, _ = self._instances()
            sizes = np.bincount(component)
            total = np.bincount(component, weights=scores)
            mean = total / sizes
            ids = np.nonzero((sizes >= self.config.min_instance_voxels) & (mean >= threshold))[0]
            ids = ids[np.lexsort((ids, -mean[ids], -total[ids]))]
            return [self._instance(int(i), float(mean[i]), scores) for i in ids]

    def _voxel_query_scores(self, query: Tensor, classes: Tensor) -> np.ndarray:
        store = self._store
        slots = store.order
        query, classes = query.to(self._device), classes.to(self._device)
        out = []
        for start in range(0, slots.numel(), _CHUNK):
            lang = self._expand(store.arrays.language[slots[start : start + _CHUNK]])
            field = lang.T[None, :, :, None]  # (1, c, n, 1): voxels as a one-column image
            out.append(query_scores(field, query, classes)[0, :, 0])
        return torch.cat(out).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def segment_point(
        self, xyz: Sequence[float] | np.ndarray, radius: float | None = None
    ) -> MapInstance:
        """The instance of the voxel nearest ``xyz`` (fixed frame, metres) within ``radius``
        (default ``point_radius_voxels`` voxels). ValueError when no voxel is that close."""
        p = np.asarray(xyz, dtype=np.float64)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise ValueError(f"point must be 3 finite coordinates, got {xyz!r}")
        vs = self.config.voxel_size
        radius = self.config.point_radius_voxels * vs if radius is None else float(radius)
        if not 0 < radius <= 100 * vs:
            raise ValueError(f"radius must be in (0, {100 * vs:g}] m, got {radius}")
        with self._lock:
            store = self._store
            r = math.ceil(radius / vs)
            steps = torch.arange(-r, r + 1, device=self._device)
            grid = torch.cartesian_prod(steps, steps, steps)
            centre = torch.floor(torch.as_tensor(p / vs, device=self._device)).to(torch.int64)
            keys = pack_keys(grid + centre)
            slots = store.lookup(keys)
            keys, slots = keys[slots >= 0], slots[slots >= 0]
            if slots.numel():
                target = torch.as_tensor(p, dtype=torch.float32, device=self._device)
                dist = (store.arrays.position[slots] - target).norm(dim=1)
                best = int(dist.argmin())
            if not slots.numel() or float(dist[best]) > radius:
                raise ValueError(
                    f"no map voxel within {radius:.3f} m of point "
                    f"({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f})"
                )
            index = int(torch.searchsorted(store.sorted_keys, keys[best : best + 1])[0])
            component, _, share = self._instances()
            cid = int(component[index])
            return self._instance(cid, float(share[component == cid].mean()), share)

    def to_cloud(self) -> MapCloud:
        """Every voxel as a point: position, colour, label, label share, instance id."""
        with self._lock:
            store = self._store
            component, labels, share = self._instances()
            slots = store.order
            a = store.arrays
            return MapCloud(
                xyz=a.position[slots].cpu().numpy().astype(np.float32),
                rgb=(a.color[slots] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy(),
                label=labels.copy(),
                score=share.astype(np.float32),
                instance=component.copy(),
            )

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the map as PLY (``mapping.io``); ValueError with a one-line message when the
        path cannot be written. Returns the path written."""
        with self._lock:
            return write_map(
                path,
                self._store.live(),
                self.config.voxel_size,
                self._classes,
                self.identity,
            )

    def load(self, path: str | Path) -> None:
        """Replace the map with a file written by ``save``. FileNotFoundError when there is
        no such file; ValueError (one line) for a garbage or truncated file, a map made by
        another model, text encoder or feature width, another voxel size, or more voxels than
        max_voxels. A failed load leaves the map as it was. The file's class list is adopted
        (``relabel`` changes it)."""
        loaded = read_map(path)
        if loaded.identity != self.identity:
            raise ValueError(
                f"{path}: the map was made by {loaded.identity.describe()}; this map is for "
                f"{self.identity.describe()}"
            )
        if not math.isclose(loaded.voxel_size, self.config.voxel_size, rel_tol=1e-6):
            raise ValueError(
                f"{path}: voxel size {loaded.voxel_size:g} m; this map's is "
                f"{self.config.voxel_size:g} m"
            )
        n = loaded.voxels.key.shape[0]
        if n > self.config.max_voxels:
            raise ValueError(f"{path}: {n} voxels; this map holds at most {self.config.max_voxels}")
        store = self._new_store(len(loaded.classes))
        voxels = VoxelArrays(**{k: t.to(self._device) for k, t in loaded.voxels.items()})
        store.replace_all(voxels)
        with self._lock:
            self._store = store
            self._classes = loaded.classes
            self._stamp = float(voxels.last_seen.max()) if n else None
            self._components = None


def map_for_model(
    config: MapConfig,
    model: SemanticSplat,
    model_name: str,
    text_encoder: str,
    classes: Sequence[str] = (),
) -> SemanticMap:
    """An empty map for the scenes ``model`` encodes: it stores the model's segmentation and
    language latents and expands the latter with the model's language expander."""
    semantic = model.config.semantic
    identity = MapIdentity(
        model=model_name,
        text_encoder=text_encoder,
        feature_dim=int(model.config.language_dim),
        seg_dim=int(semantic.seg_render_dim),
        language_dim=int(semantic.language_render_dim),
    )
    return SemanticMap(config, identity, classes, expander=model.language_expander.points)


def _check_classes(classes: Sequence[str], allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(classes, str):
        raise TypeError("classes must be a sequence of names, not one string")
    names = tuple(classes)
    if not names and not allow_empty:
        raise ValueError("the class list must not be empty")
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"class names must be non-empty strings, got {list(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {list(names)}")
    return names


def _as_embeddings(x: object, dim: int, name: str) -> Tensor:
    """``x`` as a float32 (k, dim) tensor ((dim,) becomes (1, dim)), or TypeError/ValueError."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    x = x.detach().float()
    if x.ndim == 1:
        x = x[None]
    check_text_embeddings(x, dim, name)
    return x
