"""Semantic Gaussians as PLY: the usual 3DGS attribute layout plus the semantic fields.

Layout (binary little-endian, one ``vertex`` element, all float32), as written by the reference
3DGS code and read by common splat viewers:

    x y z                         centre, metres, in the scene / fixed frame
    nx ny nz                      zeros (kept for compatibility)
    f_dc_0 f_dc_1 f_dc_2          colour as degree-0 SH: (rgb - 0.5) / C0, C0 = 0.28209479
    opacity                       logit(opacity)
    scale_0 scale_1 scale_2       log(scale), metres
    rot_0 rot_1 rot_2 rot_3       quaternion, wxyz
    f_seg_0 ... f_seg_{S-1}       low-dimensional segmentation feature (rendered, then decoded)
    f_lang_0 ... f_lang_{L-1}     low-dimensional language feature
    label score                   optional: class id (as float) and its score

Viewers that know only 3DGS ignore the extra properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SH_C0 = 0.28209479177387814
_HEADER_END = b"end_header\n"


@dataclass
class PlyGaussians:
    """Arrays of n Gaussians (numpy, float32 unless noted) — what ``write_ply`` stores."""

    means: np.ndarray  # (n, 3) metres
    quats: np.ndarray  # (n, 4) wxyz
    scales: np.ndarray  # (n, 3) metres, > 0
    opacities: np.ndarray  # (n,) in (0, 1)
    colors: np.ndarray  # (n, 3) in [0, 1]
    seg_features: np.ndarray  # (n, S), S may be 0
    lang_features: np.ndarray  # (n, L), L may be 0
    labels: np.ndarray | None = None  # (n,) int class ids
    scores: np.ndarray | None = None  # (n,) float


def _check(g: PlyGaussians) -> int:
    n = g.means.shape[0]
    expected = {
        "means": (n, 3),
        "quats": (n, 4),
        "scales": (n, 3),
        "opacities": (n,),
        "colors": (n, 3),
    }
    for name, shape in expected.items():
        arr = getattr(g, name)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or Inf")
    for name in ("seg_features", "lang_features"):
        arr = getattr(g, name)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n}, k), got {arr.shape}")
    if (g.scales <= 0).any():
        raise ValueError("scales must be positive")
    if (g.labels is None) != (g.scores is None):
        raise ValueError("labels and scores go together: give both or neither")
    if g.labels is not None and (g.labels.shape != (n,) or g.scores.shape != (n,)):
        raise ValueError(f"labels and scores must have shape ({n},)")
    return n


def _columns(g: PlyGaussians) -> list[tuple[str, np.ndarray]]:
    eps = 1e-6
    op = np.clip(g.opacities.astype(np.float64), eps, 1 - eps)
    cols: list[tuple[str, np.ndarray]] = []
    cols += [(c, g.means[:, i]) for i, c in enumerate("xyz")]
    cols += [(f"n{c}", np.zeros(len(g.means))) for c in "xyz"]
    cols += [(f"f_dc_{i}", (g.colors[:, i] - 0.5) / SH_C0) for i in range(3)]
    cols.append(("opacity", np.log(op / (1 - op))))
    cols += [(f"scale_{i}", np.log(g.scales[:, i])) for i in range(3)]
    quats = g.quats / np.linalg.norm(g.quats, axis=1, keepdims=True).clip(1e-12)
    cols += [(f"rot_{i}", quats[:, i]) for i in range(4)]
    cols += [(f"f_seg_{i}", g.seg_features[:, i]) for i in range(g.seg_features.shape[1])]
    cols += [(f"f_lang_{i}", g.lang_features[:, i]) for i in range(g.lang_features.shape[1])]
    if g.labels is not None and g.scores is not None:
        cols += [("label", g.labels.astype(np.float64)), ("score", g.scores)]
    return cols


def write_ply(path: str | Path, gaussians: PlyGaussians) -> Path:
    """Write ``gaussians`` as a binary little-endian PLY; returns the path."""
    n = _check(gaussians)
    cols = _columns(gaussians)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name, _ in cols]
    header.append("end_header")
    data = np.empty((n, len(cols)), dtype="<f4")
    for j, (_, values) in enumerate(cols):
        data[:, j] = values
    with path.open("wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())
    return path


def read_ply(path: str | Path) -> PlyGaussians:
    """Read a PLY written by ``write_ply`` (or any 3DGS PLY of float properties)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such PLY file")
    raw = path.read_bytes()
    end = raw.find(_HEADER_END)
    if not raw.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file (missing 'ply' magic or end_header)")
    header = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary_little_endian PLY is supported")
    n = None
    names: list[str] = []
    for line in header:
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            n = int(parts[2])
        elif parts[:1] == ["property"]:
            if parts[1] != "float":
                raise ValueError(f"{path}: property {parts[-1]} is {parts[1]}, expected float")
            names.append(parts[2])
    if n is None:
        raise ValueError(f"{path}: no vertex element")
    body = raw[end + len(_HEADER_END) :]
    if len(body) != n * len(names) * 4:
        raise ValueError(
            f"{path}: body has {len(body)} bytes, expected {n * len(names) * 4} (truncated?)"
        )
    data = np.frombuffer(body, dtype="<f4").reshape(n, len(names)).astype(np.float32)
    col = {name: data[:, i] for i, name in enumerate(names)}

    def stack(prefix: str) -> np.ndarray:
        keys = sorted((k for k in col if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :]))
        return np.stack([col[k] for k in keys], axis=1) if keys else np.zeros((n, 0), np.float32)

    missing = [k for k in ("x", "y", "z", "opacity", "f_dc_0", "scale_0", "rot_0") if k not in col]
    if missing:
        raise ValueError(f"{path}: missing 3DGS properties {missing}")
    return PlyGaussians(
        means=np.stack([col["x"], col["y"], col["z"]], axis=1),
        quats=stack("rot_"),
        scales=np.exp(stack("scale_")),
        opacities=1.0 / (1.0 + np.exp(-col["opacity"])),
        colors=stack("f_dc_") * SH_C0 + 0.5,
        seg_features=stack("f_seg_"),
        lang_features=stack("f_lang_"),
        labels=col["label"].round().astype(np.int64) if "label" in col else None,
        scores=col.get("score"),
    )
