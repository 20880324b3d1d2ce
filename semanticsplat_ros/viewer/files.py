"""Files the viewer opens: a scene PLY (``semanticsplat export-ply``, ``ply.py``) or a saved map
(``mapping/io.py``), told apart by the map's header comment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.mapping import MapCloud, MapConfig, SemanticMap
from semanticsplat_ros.mapping.io import FORMAT as MAP_FORMAT
from semanticsplat_ros.mapping.io import read_map
from semanticsplat_ros.ply import read_ply
from semanticsplat_ros.viewer.splats import SplatSet, ply_splats

_HEADER_BYTES = 1 << 16


@dataclass
class ViewFile:
    """What a file holds for the viewer: splats (a scene PLY) or a cloud (a map)."""

    path: Path
    splats: SplatSet | None = None
    cloud: MapCloud | None = None
    classes: tuple[str, ...] = CLASS_NAMES

    def describe(self) -> str:
        if self.splats is not None:
            return f"{self.path}: scene PLY, {self.splats.num_splats} Gaussians"
        n = 0 if self.cloud is None else len(self.cloud.xyz)
        return f"{self.path}: map, {n} voxels, {len(self.classes)} classes"


def is_map_file(path: Path) -> bool:
    """Whether ``path``'s PLY header carries the map's metadata comment."""
    with path.open("rb") as f:
        head = f.read(_HEADER_BYTES)
    end = head.find(b"end_header")
    return f"comment {MAP_FORMAT} ".encode() in (head if end < 0 else head[:end])


def _sidecar_classes(path: Path) -> tuple[str, ...]:
    """The class list of ``export-ply``'s JSON sidecar, or the default classes."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return CLASS_NAMES
    try:
        classes = json.loads(sidecar.read_text()).get("classes")
    except (OSError, ValueError, AttributeError):
        return CLASS_NAMES
    if isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes):
        return tuple(classes)
    return CLASS_NAMES


def load_view_file(path: str | Path) -> ViewFile:
    """Read a scene PLY or a map PLY. FileNotFoundError when there is no such file; ValueError
    (one line) for anything else wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        is_map = is_map_file(path)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if is_map:
        loaded = read_map(path)
        n = loaded.voxels.key.shape[0]
        smap = SemanticMap(
            MapConfig(voxel_size=loaded.voxel_size, max_voxels=max(n, 1)), loaded.identity
        )
        smap.load(path)
        return ViewFile(path, cloud=smap.to_cloud(), classes=loaded.classes)
    classes = _sidecar_classes(path)
    return ViewFile(path, splats=ply_splats(read_ply(path), classes), classes=classes)
