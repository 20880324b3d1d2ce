"""The map as a binary PLY: one vertex per voxel, with the semantic fields and a metadata comment.

Layout (binary little-endian, one ``vertex`` element, in voxel key order):

    int vx vy vz              voxel coordinates: floor(position / voxel_size) when fused
    float x y z               mean position of the voxel's points, fixed frame, metres
    uchar red green blue      mean colour
    float opacity             mean opacity of the voxel's Gaussians
    int count                 scenes that put points in the voxel
    short evidence            free-space carving evidence (see MapConfig.max_evidence)
    double last_seen          stamp of the latest such scene, seconds
    int label                 argmax of the class histogram (for viewers; recomputed on load)
    float score               the label's share of the histogram (for viewers; recomputed)
    float class_0 ...         the class histogram, one per class of the metadata's list
    ushort f_lang_0 ...       the mean language latent as IEEE half floats (their bit patterns)
    ushort f_seg_0 ...        the mean segmentation latent, likewise

The header holds ``comment semanticsplat_map {json}`` with the format version, voxel size,
class list, model name, text encoder, the text encoder's width (``feature_dim``) and the stored
language and segmentation latents' widths (``language_dim``, ``seg_dim``). Viewers that know
only x y z and red green blue show the map as a coloured cloud.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semanticsplat_ros.mapping.config import MapIdentity
from semanticsplat_ros.mapping.voxels import COORD_LIMIT, VoxelArrays, pack_keys, unpack_keys

FORMAT = "semanticsplat_map"
VERSION = 2
_MAGIC = b"ply\n"
_HEADER_END = b"end_header\n"
_MAX_HEADER = 1 << 20
_PLY_TYPES = {"i4": "int", "f4": "float", "u1": "uchar", "i2": "short", "f8": "double"}
_PLY_TYPES["u2"] = "ushort"


@dataclass
class MapFile:
    """What a map file holds: its metadata and its voxels (CPU tensors, key order)."""

    voxel_size: float
    classes: tuple[str, ...]
    identity: MapIdentity
    voxels: VoxelArrays


def _vertex_dtype(num_classes: int, language_dim: int, seg_dim: int) -> np.dtype:
    names = [("vx", "i4"), ("vy", "i4"), ("vz", "i4"), ("x", "f4"), ("y", "f4"), ("z", "f4")]
    names += [("red", "u1"), ("green", "u1"), ("blue", "u1"), ("opacity", "f4")]
    names += [("count", "i4"), ("evidence", "i2"), ("last_seen", "f8")]
    names += [("label", "i4"), ("score", "f4")]
    names += [(f"class_{i}", "f4") for i in range(num_classes)]
    names += [(f"f_lang_{i}", "u2") for i in range(language_dim)]
    names += [(f"f_seg_{i}", "u2") for i in range(seg_dim)]
    return np.dtype([(n, "<" + t) for n, t in names])


def write_map(
    path: str | Path,
    voxels: VoxelArrays,
    voxel_size: float,
    classes: tuple[str, ...],
    identity: MapIdentity,
) -> Path:
    """Write ``voxels`` (every row, in the order given: live voxels only) to ``path``
    atomically (a temporary file in the same folder, then renamed). Raises ValueError with a
    one-line message when the path cannot be written."""
    path = Path(path).expanduser()
    v = voxels
    n, k, c = v.key.shape[0], v.class_hist.shape[1], v.language.shape[1]
    d = v.segmentation.shape[1]
    dtype = _vertex_dtype(k, c, d)
    data = np.zeros(n, dtype=dtype)
    coords = unpack_keys(v.key).cpu().numpy()
    for i, name in enumerate(("vx", "vy", "vz")):
        data[name] = coords[:, i]
    position = v.position.cpu().numpy()
    color = (v.color.cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    for i, (p, q) in enumerate(zip("xyz", ("red", "green", "blue"), strict=True)):
        data[p], data[q] = position[:, i], color[:, i]
    hist = v.class_hist.cpu().numpy()
    data["opacity"] = v.opacity.cpu().numpy()
    data["count"] = v.count.cpu().numpy()
    data["evidence"] = v.evidence.cpu().numpy()
    data["last_seen"] = v.last_seen.cpu().numpy()
    data["label"] = hist.argmax(1) if n and k else 0
    data["score"] = hist.max(1) if n and k else 0.0
    for i in range(k):
        data[f"class_{i}"] = hist[:, i]
    bits = v.language.cpu().numpy().astype(np.float16).view(np.uint16)
    for i in range(c):
        data[f"f_lang_{i}"] = bits[:, i]
    bits = v.segmentation.cpu().numpy().astype(np.float16).view(np.uint16)
    for i in range(d):
        data[f"f_seg_{i}"] = bits[:, i]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "voxel_size": voxel_size,
        "classes": list(classes),
        "model": identity.model,
        "text_encoder": identity.text_encoder,
        "feature_dim": identity.feature_dim,
        "language_dim": identity.language_dim,
        "seg_dim": identity.seg_dim,
    }
    header = ["ply", "format binary_little_endian 1.0"]
    header.append(f"comment {FORMAT} " + json.dumps(meta, ensure_ascii=True))
    header.append(f"element vertex {n}")
    header += [f"property {_PLY_TYPES[dtype[name].str[1:]]} {name}" for name in dtype.names]
    header.append("end_header")
    blob = ("\n".join(header) + "\n").encode("ascii") + data.tobytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ValueError(f"cannot write map file {path}: {exc.strerror or exc}") from exc
    return path


def _parse_header(path: Path, raw: bytes) -> tuple[dict, int, list[tuple[str, str]], int]:
    """(metadata, vertex count, properties as (ply type, name), body offset)."""
    end = raw.find(_HEADER_END, 0, _MAX_HEADER)
    if not raw.startswith(_MAGIC) or end < 0:
        raise ValueError(f"{path}: not a PLY file (no 'ply' magic or end_header)")
    try:
        lines = raw[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the PLY header is not ASCII") from None
    if "format binary_little_endian 1.0" not in lines:
        raise ValueError(f"{path}: not a binary little-endian PLY")
    meta, count, props = None, None, []
    prefix = f"comment {FORMAT} "
    for line in lines:
        parts = line.split()
        if line.startswith(prefix):
            try:
                meta = json.loads(line[len(prefix) :])
            except json.JSONDecodeError:
                raise ValueError(f"{path}: unreadable {FORMAT} metadata comment") from None
        elif parts[:2] == ["element", "vertex"] and len(parts) == 3 and parts[2].isdigit():
            count = int(parts[2])
        elif parts[:1] == ["element"]:
            raise ValueError(f"{path}: unexpected PLY element {' '.join(parts[1:2])!r}")
        elif parts[:1] == ["property"] and len(parts) == 3:
            props.append((parts[1], parts[2]))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a semanticsplat map (no {FORMAT} metadata comment)")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: map format version {meta.get('version')!r}, expected {VERSION}")
    if count is None:
        raise ValueError(f"{path}: no vertex element")
    return meta, count, props, end + len(_HEADER_END)


def _check_meta(path: Path, meta: dict) -> tuple[float, tuple[str, ...], MapIdentity]:
    voxel_size = meta.get("voxel_size")
    classes = meta.get("classes")
    if not isinstance(voxel_size, int | float) or not 0 < voxel_size < 1e3:
        raise ValueError(f"{path}: bad voxel_size {voxel_size!r} in the metadata")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise ValueError(f"{path}: bad class list in the metadata")
    try:
        identity = MapIdentity(
            model=meta.get("model"),
            text_encoder=meta.get("text_encoder"),
            feature_dim=meta.get("feature_dim"),
            seg_dim=meta.get("seg_dim"),
            language_dim=meta.get("language_dim"),
        )
    except ValueError as exc:
        raise ValueError(f"{path}: bad metadata: {exc}") from None
    return float(voxel_size), tuple(classes), identity


def read_map(path: str | Path) -> MapFile:
    """Read a file written by ``write_map``. FileNotFoundError when there is no such file;
    ValueError with a one-line message for anything else wrong (not a PLY, not a map, truncated,
    malformed metadata or fields, non-finite values, duplicate voxels)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such map file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read map file {path}: {exc.strerror or exc}") from exc
    meta, n, props, offset = _parse_header(path, raw)
    voxel_size, classes, identity = _check_meta(path, meta)
    if n and not classes:
        raise ValueError(f"{path}: {n} voxels but no class list in the metadata")
    dtype = _vertex_dtype(len(classes), identity.language_dim, identity.seg_dim)
    expected = [(_PLY_TYPES[dtype[name].str[1:]], name) for name in dtype.names]
    if props != expected:
        raise ValueError(
            f"{path}: vertex properties do not match a map of {len(classes)} classes and "
            f"{identity.language_dim}-d language and {identity.seg_dim}-d segmentation features"
        )
    body = memoryview(raw)[offset:]
    if len(body) != n * dtype.itemsize:
        raise ValueError(
            f"{path}: body has {len(body)} bytes, expected {n * dtype.itemsize} for {n} voxels "
            "(truncated?)"
        )
    data = np.frombuffer(body, dtype=dtype, count=n)
    return MapFile(voxel_size, classes, identity, _voxels_from(path, data, classes, identity))


def _half_floats(data: np.ndarray, prefix: str, width: int) -> np.ndarray:
    """(n, width) float16 from the uint16 bit patterns in fields ``{prefix}_0 ...``."""
    bits = np.zeros((len(data), width), dtype=np.uint16)
    for i in range(width):
        bits[:, i] = data[f"{prefix}_{i}"]
    return bits.view(np.float16)


def _voxels_from(
    path: Path, data: np.ndarray, classes: tuple[str, ...], identity: MapIdentity
) -> VoxelArrays:
    coords = np.stack([data["vx"], data["vy"], data["vz"]], axis=1).astype(np.int64)
    position = np.stack([data["x"], data["y"], data["z"]], axis=1)
    hist = np.zeros((len(data), len(classes)), dtype=np.float32)
    for i in range(len(classes)):
        hist[:, i] = data[f"class_{i}"]
    language = _half_floats(data, "f_lang", identity.language_dim)
    segmentation = _half_floats(data, "f_seg", identity.seg_dim)
    checks = {
        "voxel coordinates": np.abs(coords).max(initial=0) <= COORD_LIMIT,
        "positions": np.isfinite(position).all(),
        "opacities": np.isfinite(data["opacity"]).all(),
        "class histograms": np.isfinite(hist).all() and (hist >= 0).all(),
        "language features": np.isfinite(language).all(),
        "segmentation features": np.isfinite(segmentation).all(),
        "stamps": np.isfinite(data["last_seen"]).all(),
        "counts": (data["count"] >= 0).all(),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"{path}: invalid values in {', '.join(bad)}")
    keys = pack_keys(torch.from_numpy(coords))
    if torch.unique(keys).shape[0] != keys.shape[0]:
        raise ValueError(f"{path}: the map holds the same voxel twice")
    color = np.stack([data["red"], data["green"], data["blue"]], axis=1).astype(np.float32)
    return VoxelArrays(
        key=keys,
        position=torch.from_numpy(position.astype(np.float32)),
        color=torch.from_numpy(color / 255.0),
        opacity=torch.from_numpy(data["opacity"].astype(np.float32)),
        language=torch.from_numpy(language.copy()),
        segmentation=torch.from_numpy(segmentation.copy()),
        class_hist=torch.from_numpy(hist.astype(np.float32)),
        count=torch.from_numpy(data["count"].astype(np.int32)),
        evidence=torch.from_numpy(data["evidence"].astype(np.int16)),
        last_seen=torch.from_numpy(data["last_seen"].astype(np.float64)),
    )
