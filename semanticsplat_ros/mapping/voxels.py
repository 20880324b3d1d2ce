"""Voxel storage: per-voxel arrays in slots, and a sorted index from voxel key to slot.

A voxel (i, j, k) = floor(p / voxel_size) has the key ``pack_keys(i, j, k)``, one int64. Slots
are rows of the per-voxel arrays; a voxel keeps its slot while it lives, and freed slots are
reused, so memory grows only up to the configured bound. The index is the live keys sorted,
beside their slots: a lookup is one ``searchsorted`` for a whole batch of keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from jaxtyping import Float, Int
from torch import Tensor

COORD_BITS = 21
COORD_LIMIT = (1 << (COORD_BITS - 1)) - 2
"""Voxel coordinates must lie in [-COORD_LIMIT, COORD_LIMIT] (about ±52 km at 5 cm)."""
_OFFSET = 1 << (COORD_BITS - 1)
_MASK = (1 << COORD_BITS) - 1


def pack_keys(coords: Int[Tensor, "n 3"]) -> Int[Tensor, " n"]:
    """int64 keys of integer voxel coordinates (within ±COORD_LIMIT). Sorting keys sorts by
    (i, j, k); adding ``pack_keys`` of an offset to a key moves it by that offset."""
    c = coords.to(torch.int64) + _OFFSET
    return (c[:, 0] << (2 * COORD_BITS)) | (c[:, 1] << COORD_BITS) | c[:, 2]


def unpack_keys(keys: Int[Tensor, " n"]) -> Int[Tensor, "n 3"]:
    """Inverse of ``pack_keys``."""
    i = (keys >> (2 * COORD_BITS)) & _MASK
    j = (keys >> COORD_BITS) & _MASK
    k = keys & _MASK
    return torch.stack([i, j, k], dim=1) - _OFFSET


def key_delta(di: int, dj: int, dk: int) -> int:
    """What adding (di, dj, dk) to a voxel's coordinates adds to its key."""
    return (di << (2 * COORD_BITS)) + (dj << COORD_BITS) + dk


@dataclass
class VoxelArrays:
    """Per-voxel arrays, one row per slot (l stored language channels, k classes)."""

    key: Int[Tensor, " s"]
    """int64 voxel key; -1 in free slots."""
    position: Float[Tensor, "s 3"]
    """Mean of the points fused into the voxel, fixed frame, metres (float32)."""
    color: Float[Tensor, "s 3"]
    """Mean RGB in [0, 1] (float32)."""
    opacity: Float[Tensor, " s"]
    """Mean opacity of the Gaussians fused into the voxel (float32)."""
    language: Float[Tensor, "s l"]
    """Mean low-dimensional language latent (float16; ``MapIdentity.language_dim``)."""
    segmentation: Float[Tensor, "s d"]
    """Mean low-dimensional segmentation latent (float16)."""
    class_hist: Float[Tensor, "s k"]
    """Running mean of the class probabilities of its points: a soft label histogram (float32,
    rows sum to 1)."""
    count: Int[Tensor, " s"]
    """Scenes that put points in the voxel (int32)."""
    evidence: Int[Tensor, " s"]
    """+1 per scene with points in the voxel, -1 per scene that sees through it (int16)."""
    last_seen: Float[Tensor, " s"]
    """Stamp of the latest scene with points in the voxel, seconds (float64)."""

    @staticmethod
    def empty(
        capacity: int, language_dim: int, num_classes: int, seg_dim: int, device: torch.device
    ) -> VoxelArrays:
        def z(*shape: int, dtype: torch.dtype) -> Tensor:
            return torch.zeros(*shape, dtype=dtype, device=device)

        return VoxelArrays(
            key=torch.full((capacity,), -1, dtype=torch.int64, device=device),
            position=z(capacity, 3, dtype=torch.float32),
            color=z(capacity, 3, dtype=torch.float32),
            opacity=z(capacity, dtype=torch.float32),
            language=z(capacity, language_dim, dtype=torch.float16),
            segmentation=z(capacity, seg_dim, dtype=torch.float16),
            class_hist=z(capacity, num_classes, dtype=torch.float32),
            count=z(capacity, dtype=torch.int32),
            evidence=z(capacity, dtype=torch.int16),
            last_seen=z(capacity, dtype=torch.float64),
        )

    @property
    def capacity(self) -> int:
        return self.key.shape[0]

    def items(self) -> list[tuple[str, Tensor]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def rows(self, slots: Tensor) -> VoxelArrays:
        """A copy of the given slots' rows."""
        return VoxelArrays(**{name: t[slots] for name, t in self.items()})

    def put(self, slots: Tensor, values: VoxelArrays) -> None:
        """Write ``values``' rows into ``slots``."""
        for name, t in self.items():
            t[slots] = getattr(values, name).to(t.dtype)

    def grown(self, capacity: int) -> VoxelArrays:
        """A copy with ``capacity`` slots (>= the current), the new ones free."""
        extra = VoxelArrays.empty(
            capacity - self.capacity,
            self.language.shape[1],
            self.class_hist.shape[1],
            self.segmentation.shape[1],
            self.key.device,
        )
        return VoxelArrays(
            **{name: torch.cat([t, getattr(extra, name)]) for name, t in self.items()}
        )


class VoxelStore:
    """Slots + sorted index. ``order`` (live slots in key order) is what queries iterate over,
    so answers do not depend on which slot a voxel happened to get."""

    def __init__(
        self,
        language_dim: int,
        num_classes: int,
        seg_dim: int,
        max_voxels: int,
        device: torch.device,
    ) -> None:
        self.max_voxels = max_voxels
        self.device = device
        self.arrays = VoxelArrays.empty(0, language_dim, num_classes, seg_dim, device)
        self.sorted_keys = torch.zeros(0, dtype=torch.int64, device=device)
        self.sorted_slots = torch.zeros(0, dtype=torch.int32, device=device)
        self._free = torch.zeros(0, dtype=torch.int64, device=device)

    @property
    def size(self) -> int:
        """Number of live voxels."""
        return int(self.sorted_keys.shape[0])

    @property
    def order(self) -> Int[Tensor, " n"]:
        """Live slots in ascending key order (int64)."""
        return self.sorted_slots.to(torch.int64)

    def lookup(self, keys: Int[Tensor, " m"]) -> Int[Tensor, " m"]:
        """Slot of each key, -1 where the key is not in the map."""
        if self.size == 0 or keys.numel() == 0:
            return torch.full_like(keys, -1)
        pos = torch.searchsorted(self.sorted_keys, keys).clamp_max(self.size - 1)
        found = self.sorted_keys[pos] == keys
        slots = self.sorted_slots[pos].to(torch.int64)
        return torch.where(found, slots, torch.full_like(slots, -1))

    def insert(self, values: VoxelArrays) -> Int[Tensor, " m"]:
        """Add new voxels (their keys must be absent and unique); returns their slots. The
        caller keeps size + m <= max_voxels."""
        m = values.key.shape[0]
        if self.size + m > self.max_voxels:
            raise ValueError(f"{self.size} + {m} voxels exceed max_voxels={self.max_voxels}")
        reuse = self._free[:m]
        self._free = self._free[m:]
        need = m - reuse.shape[0]
        if need > 0:
            start = self.arrays.capacity
            grow = min(max(start + need, 2 * start, 1024), self.max_voxels)
            self.arrays = self.arrays.grown(grow)
            fresh = torch.arange(start, start + need, device=self.device)
            self._free = torch.cat(
                [self._free, torch.arange(start + need, grow, device=self.device)]
            )
            slots = torch.cat([reuse, fresh])
        else:
            slots = reuse
        self.arrays.put(slots, values)
        keys = torch.cat([self.sorted_keys, values.key])
        all_slots = torch.cat([self.sorted_slots, slots.to(torch.int32)])
        keys, perm = torch.sort(keys)
        self.sorted_keys, self.sorted_slots = keys, all_slots[perm]
        return slots

    def remove(self, slots: Int[Tensor, " r"]) -> None:
        """Free the given live slots."""
        if slots.numel() == 0:
            return
        gone = torch.zeros(self.arrays.capacity, dtype=torch.bool, device=self.device)
        gone[slots] = True
        keep = ~gone[self.sorted_slots.to(torch.int64)]
        self.sorted_keys = self.sorted_keys[keep]
        self.sorted_slots = self.sorted_slots[keep]
        self.arrays.key[slots] = -1
        self._free = torch.cat([slots.to(torch.int64), self._free])

    def live(self) -> VoxelArrays:
        """A copy of the live voxels' rows, in key order."""
        return self.arrays.rows(self.order)

    def replace_all(self, values: VoxelArrays) -> None:
        """Drop every voxel and hold exactly ``values`` (unique keys, at most max_voxels)."""
        m = values.key.shape[0]
        if m > self.max_voxels:
            raise ValueError(f"{m} voxels exceed max_voxels={self.max_voxels}")
        self.arrays = VoxelArrays.empty(
            0,
            values.language.shape[1],
            values.class_hist.shape[1],
            values.segmentation.shape[1],
            self.device,
        )
        self.sorted_keys = torch.zeros(0, dtype=torch.int64, device=self.device)
        self.sorted_slots = torch.zeros(0, dtype=torch.int32, device=self.device)
        self._free = torch.zeros(0, dtype=torch.int64, device=self.device)
        if m:
            self.insert(values)
