"""Instances: connected components (26-neighbourhood) of voxels that share a label.

Built on the voxel hash itself, not on a dense grid, so the cost follows the number of voxels
rather than the map's extent: each voxel looks up its 13 "forward" neighbours (the other 13 are
the same pairs seen from the other end) with one ``searchsorted`` per offset, pairs of equal
labels become graph edges, and scipy's ``connected_components`` labels the graph.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from semanticsplat_ros.mapping.voxels import key_delta

_FORWARD_OFFSETS = [
    d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0)
]  # 13 of the 26 neighbours: lexicographically after the voxel itself
_DELTAS = np.array([key_delta(*d) for d in _FORWARD_OFFSETS], dtype=np.int64)


def label_components(sorted_keys: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Component id per voxel and the number of components.

    sorted_keys: (n,) int64 ascending voxel keys (``voxels.pack_keys``); labels: (n,) int class
    ids. Ids are 0..count-1, numbered in order of each component's smallest key, so the same
    voxels always give the same ids.
    """
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    rows, cols = [], []
    for delta in _DELTAS:
        target = sorted_keys + delta
        pos = np.searchsorted(sorted_keys, target).clip(max=n - 1)
        hit = (sorted_keys[pos] == target) & (labels[pos] == labels)
        rows.append(np.nonzero(hit)[0])
        cols.append(pos[hit])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = coo_matrix((np.ones(r.shape[0], dtype=np.int8), (r, c)), shape=(n, n))
    count, component = connected_components(graph, directed=False)
    return component.astype(np.int64), int(count)
