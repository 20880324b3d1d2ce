"""ScanNet-format scenes on disk: a writer (``write_scene``) and a loader (``ScanNetDataset``).

Layout of one scene (what ScanNet's SensReader exports, what users record themselves)::

    <root>/<scene_id>/color/<i>.png|.jpg   RGB, 8 bit (PNG written here: lossless round trips)
                     depth/<i>.png         uint16 millimetres, 0 = no depth (ScanNet's convention)
                     pose/<i>.txt          4×4 camera-to-world, OpenCV camera frame, metres
                     intrinsic/intrinsic_color.txt   4×4, ScanNet's format (K in the top-left)
                     intrinsic/intrinsic_depth.txt   4×4 (depth may have its own resolution)
                     label/<i>.png         optional, uint16: class id + 1, 0 = unlabelled
                     instance/<i>.png      optional, uint16: instance id + 1, 0 = unlabelled
                     part/<i>.png, group/<i>.png      optional, same encoding (our extension)
                     meta.json             optional: {"near": m, "far": m}

Frames are the stems present in color/, sorted numerically. ``label_map`` converts label values
of other exports (e.g. ScanNet's NYU40 ids in ``label-filt``: ``NYU40_TO_CLASS``).

Intrinsics: ScanNet's files follow OpenCV, with pixel centres on integer coordinates. Our K puts
pixel centres at +0.5 (``geometry``), so the writer stores ``cx - 0.5, cy - 0.5`` and the loader
adds 0.5 back: a file exported by ScanNet loads with the right principal point, and our round
trip is exact. When the depth / label images have another resolution than colour (ScanNet: depth
640×480, colour 1296×968) they must have the same aspect ratio (1%) and are resized to the
output size with nearest neighbour, as registered images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.data.types import DEFAULT_NEAR, Example, Views
from semanticsplat_ros.geometry.cameras import check_pose, scale_intrinsics

ImageFormat = Literal["png", "jpg"]
"""Colour image formats ``write_scene`` writes: "png" (lossless) or "jpg" (quality 95)."""
DEFAULT_FAR = 10.0
"""Far plane (metres) when a scene has no meta.json (indoor rooms)."""
ID_DIRS = ("label", "instance", "part", "group")
"""Optional id-map folders, in the order of Views.labels, instances, parts, groups."""

NYU40_TO_CLASS: dict[int, int] = {
    1: CLASS_ID["wall"],
    2: CLASS_ID["floor"],
    22: CLASS_ID["ceiling"],
    5: CLASS_ID["chair"],
    7: CLASS_ID["table"],
    14: CLASS_ID["table"],  # desk
    4: CLASS_ID["bed"],
    6: CLASS_ID["sofa"],
    **{k: CLASS_ID["others"] for k in (3, *range(8, 14), *range(15, 22), *range(23, 41))},
}
"""ScanNet label-filt (NYU40) ids -> our class ids (0 and unknown ids stay unlabelled)."""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _matrix_text(m: np.ndarray) -> str:
    # repr of float64 round-trips exactly.
    return "\n".join(" ".join(repr(float(x)) for x in row) for row in m) + "\n"


def write_scene(
    root: str | Path,
    scene_id: str,
    views: Views,
    *,
    start_index: int = 0,
    image_format: ImageFormat = "png",
) -> Path:
    """Write ``views`` (no batch dim) as frames ``start_index..`` of ``root/scene_id``.

    All views must share one K (ScanNet stores one intrinsic file per scene). RGB goes to
    ``image_format`` ("png", lossless, or "jpg"); depth is rounded to millimetres. Returns the
    scene folder.
    """
    if views.images.ndim != 4:
        raise ValueError(f"write_scene takes views without a batch dim, got {views.images.shape}")
    if image_format not in get_args(ImageFormat):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    K = views.K.detach().cpu().to(torch.float64)
    if (K - K[:1]).abs().max() > 1e-6:
        raise ValueError("write_scene: all views of a scene must share one intrinsic matrix K")
    scene_dir = Path(root) / scene_id
    for sub in ("color", "depth", "pose", "intrinsic"):
        (scene_dir / sub).mkdir(parents=True, exist_ok=True)
    intr = np.eye(4)
    intr[:3, :3] = K[0].numpy()
    intr[0, 2] -= 0.5  # our centres at +0.5 -> ScanNet/OpenCV integer centres
    intr[1, 2] -= 0.5
    for name in ("intrinsic_color.txt", "intrinsic_depth.txt"):
        (scene_dir / "intrinsic" / name).write_text(_matrix_text(intr))
    meta = {"near": float(views.near[0]), "far": float(views.far[0])}
    (scene_dir / "meta.json").write_text(json.dumps(meta) + "\n")
    images = (views.images.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    images = images.permute(0, 2, 3, 1).numpy()
    id_maps = [views.labels, views.instances, views.parts, views.groups]
    for k in range(views.num_views):
        i = start_index + k
        Image.fromarray(images[k]).save(
            scene_dir / "color" / f"{i}.{image_format}",
            **({"quality": 95} if image_format == "jpg" else {}),
        )
        if views.depth is not None:
            mm = (views.depth[k].detach().cpu().double() * 1000.0).round()
            mm = torch.where((mm > 0) & (mm < 65536), mm, torch.zeros_like(mm))
            _save_uint16(scene_dir / "depth" / f"{i}.png", mm.numpy())
        (scene_dir / "pose" / f"{i}.txt").write_text(
            _matrix_text(views.c2w[k].detach().cpu().double().numpy())
        )
        for sub, ids in zip(ID_DIRS, id_maps, strict=True):
            if ids is None:
                continue
            (scene_dir / sub).mkdir(exist_ok=True)
            enc = ids[k].detach().cpu().numpy().astype(np.int64) + 1
            if enc.max(initial=0) > 65535:
                raise ValueError(f"{sub} ids above 65534 do not fit a uint16 PNG")
            _save_uint16(scene_dir / sub / f"{i}.png", np.clip(enc, 0, 65535))
    return scene_dir


def _save_uint16(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array.astype(np.uint16)).save(path)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _frame_key(path: Path) -> tuple[int, str]:
    m = re.search(r"\d+", path.stem)
    return (int(m.group()) if m else -1, path.stem)


def read_matrix(path: Path, rows: int = 4) -> np.ndarray:
    """A whitespace-separated rows×4 matrix from ``path``; ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    try:
        m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric matrix ({exc})") from None
    if m.shape != (rows, 4) and not (rows == 4 and m.shape == (3, 4)):
        raise ValueError(f"{path}: expected a {rows}x4 matrix, got shape {m.shape}")
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    return m


def read_intrinsics(path: Path) -> Float[Tensor, "3 3"]:
    """ScanNet intrinsic file -> our K (pixel centres at +0.5)."""
    m = read_matrix(path)
    K = torch.tensor(m[:3, :3], dtype=torch.float32)
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    if not torch.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1:
        raise ValueError(f"{path}: not a valid intrinsic matrix (need fx, fy > 0, K[2,2] = 1)")
    return K


def read_pose(path: Path) -> Float[Tensor, "4 4"]:
    """c2w from a ScanNet pose file; ValueError naming the file unless it is a rigid transform."""
    m = read_matrix(path)
    pose = torch.tensor(m, dtype=torch.float64)
    try:
        check_pose(pose, name=str(path))
    except ValueError as exc:
        raise ValueError(f"{exc} (a camera-to-world pose must be invertible and rigid)") from None
    return pose.to(torch.float32)


def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    try:
        img = Image.open(path)
        img.load()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from None
    return img


def _find_frame_file(folder: Path, stem: str, exts: tuple[str, ...]) -> Path:
    for ext in exts:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"missing file: {folder / (stem + exts[0])}")


class ScanNetScene:
    """One scene folder: frame list, poses, intrinsics (validated when opened)."""

    def __init__(self, path: str | Path, skip_invalid_poses: bool = False):
        self.path = Path(path)
        color = self.path / "color"
        if not color.is_dir():
            raise FileNotFoundError(f"missing folder: {color}")
        frames = sorted(
            (p for p in color.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")),
            key=_frame_key,
        )
        if not frames:
            raise ValueError(f"{color}: no .png/.jpg frames")
        self.K_color = read_intrinsics(self.path / "intrinsic" / "intrinsic_color.txt")
        depth_intr = self.path / "intrinsic" / "intrinsic_depth.txt"
        self.K_depth = read_intrinsics(depth_intr) if depth_intr.is_file() else None
        self.color_files: list[Path] = []
        poses = []
        for f in frames:
            pose_file = self.path / "pose" / f"{f.stem}.txt"
            try:
                pose = read_pose(pose_file)
            except ValueError:
                if skip_invalid_poses:  # ScanNet marks lost tracking with -inf poses
                    continue
                raise
            _find_frame_file(self.path / "depth", f.stem, (".png",))
            self.color_files.append(f)
            poses.append(pose)
        if not poses:
            raise ValueError(f"{self.path}: no frame has a valid pose")
        self.c2w = torch.stack(poses)
        meta_file = self.path / "meta.json"
        self.near, self.far = DEFAULT_NEAR, DEFAULT_FAR
        if meta_file.is_file():
            try:
                meta = json.loads(meta_file.read_text())
                self.near = float(meta.get("near", DEFAULT_NEAR))
                self.far = float(meta.get("far", DEFAULT_FAR))
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"{meta_file}: bad meta.json ({exc})") from None
        with Image.open(frames[0]) as first:
            self.color_size = (first.height, first.width)

    @property
    def name(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.color_files)

    def load_views(
        self,
        frames: list[int],
        height: int | None = None,
        width: int | None = None,
        label_map: dict[int, int] | None = None,
    ) -> Views:
        """Views of frames (indices into this scene's frame list) at height×width (default:
        the stored colour size). Raises naming the file on a missing or mis-sized image."""
        h0, w0 = self.color_size
        height = h0 if height is None else height
        width = w0 if width is None else width
        images, depths = [], []
        ids: dict[str, list[Tensor]] = {sub: [] for sub in ID_DIRS}
        present = {sub: (self.path / sub).is_dir() for sub in ID_DIRS}
        for k in frames:
            cf = self.color_files[k]
            img = _open_image(cf).convert("RGB")
            if (img.height, img.width) != (h0, w0):
                raise ValueError(
                    f"{cf}: image size {img.width}x{img.height} differs from the scene's "
                    f"{w0}x{h0} (from {self.color_files[0].name})"
                )
            rgb = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
            images.append(_resize(rgb[None], height, width, "area")[0])
            df = _find_frame_file(self.path / "depth", cf.stem, (".png",))
            depth = self._read_aligned(df, h0, w0).astype(np.float32) / 1000.0
            depths.append(_resize(torch.from_numpy(depth)[None, None], height, width)[0, 0])
            for sub in ID_DIRS:
                if not present[sub]:
                    continue
                f = _find_frame_file(self.path / sub, cf.stem, (".png",))
                raw = self._read_aligned(f, h0, w0).astype(np.int64)
                if sub == "label" and label_map is not None:
                    lut = np.full(max(raw.max(initial=0), *label_map, 0) + 1, -1, dtype=np.int64)
                    for src, dst in label_map.items():
                        lut[src] = dst
                    values = lut[raw]
                else:
                    values = raw - 1
                t = torch.from_numpy(values)[None, None].float()
                ids[sub].append(_resize(t, height, width)[0, 0].long())
        n = len(frames)
        K = scale_intrinsics(self.K_color, width / w0, height / h0)
        stack = {sub: torch.stack(v) if present[sub] and v else None for sub, v in ids.items()}
        return Views(
            images=torch.stack(images) if images else torch.zeros(0, 3, height, width),
            K=K.expand(n, 3, 3).clone(),
            c2w=self.c2w[frames].clone(),
            near=torch.full((n,), self.near),
            far=torch.full((n,), self.far),
            depth=torch.stack(depths) if depths else None,
            labels=stack["label"],
            instances=stack["instance"],
            parts=stack["part"],
            groups=stack["group"],
        )

    @staticmethod
    def _read_aligned(path: Path, h0: int, w0: int) -> np.ndarray:
        img = _open_image(path)
        arr = np.asarray(img)
        if arr.ndim != 2:
            raise ValueError(f"{path}: expected a single-channel image, got shape {arr.shape}")
        h, w = arr.shape
        if (h, w) != (h0, w0) and abs(w / h - w0 / h0) > 0.01 * (w0 / h0):
            raise ValueError(
                f"{path}: image size {w}x{h} does not match the colour images' {w0}x{h0} "
                "(different aspect ratio)"
            )
        if (h, w) != (h0, w0):
            t = torch.from_numpy(arr.astype(np.float32))[None, None]
            arr = _resize(t, h0, w0)[0, 0].numpy().astype(arr.dtype)
        return arr


def _resize(
    x: Tensor, height: int, width: int, mode: Literal["nearest", "area"] = "nearest"
) -> Tensor:
    """``x`` (n, c, h, w) at (height, width): nearest neighbour (id maps, depth), or "area"
    averaging for colour (bilinear where it upsamples)."""
    if x.shape[-2:] == (height, width):
        return x
    if mode == "area" and (x.shape[-2] < height or x.shape[-1] < width):
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return F.interpolate(x, size=(height, width), mode=mode)


class ScanNetDataset(Dataset):
    """Examples from ScanNet-format scenes under ``root`` (every sub-folder with color/).

    View sampling per example: ``num_context`` frames spread over a window of
    ``min_gap..max_gap`` frames (seeded by (seed, item)), and ``num_target`` frames strictly
    between the first and last context frame (or next to it when the window is too small).
    """

    def __init__(
        self,
        root: str | Path,
        height: int,
        width: int,
        *,
        num_context: int = 2,
        num_target: int = 2,
        scenes: list[str] | None = None,
        examples_per_scene: int = 1,
        min_gap: int = 2,
        max_gap: int = 6,
        seed: int = 0,
        label_map: dict[int, int] | None = None,
        skip_invalid_poses: bool = False,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"missing dataset folder: {self.root}")
        for name, value in (("height", height), ("width", width), ("num_context", num_context)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if num_target < 0 or min_gap < 1 or max_gap < min_gap:
            raise ValueError(
                f"need num_target >= 0 and 1 <= min_gap <= max_gap, got {num_target}, "
                f"{min_gap}, {max_gap}"
            )
        if scenes is None:
            names = sorted(p.name for p in self.root.iterdir() if (p / "color").is_dir())
        else:
            names = list(scenes)
        if not names:
            raise ValueError(f"{self.root}: no scene folders (sub-folders with color/)")
        self.scenes = [ScanNetScene(self.root / n, skip_invalid_poses) for n in names]
        for sc in self.scenes:
            if len(sc) < num_context + num_target:
                raise ValueError(
                    f"{sc.path}: {len(sc)} frames, fewer than num_context + num_target = "
                    f"{num_context + num_target}"
                )
        self.height, self.width = height, width
        self.num_context, self.num_target = num_context, num_target
        self.examples_per_scene = examples_per_scene
        self.min_gap, self.max_gap = min_gap, max_gap
        self.seed = seed
        self.label_map = label_map

    def __len__(self) -> int:
        return len(self.scenes) * self.examples_per_scene

    def sample_frames(self, scene: ScanNetScene, rng: np.random.Generator) -> tuple[list, list]:
        """(context frame indices, target frame indices) into ``scene``."""
        n = len(scene)
        nc, nt = self.num_context, self.num_target
        span = int(rng.integers(self.min_gap, self.max_gap + 1)) * max(1, nc - 1)
        span = int(min(span, n - 1))
        start = int(rng.integers(0, n - span)) if n - span > 0 else 0
        context = sorted({round(float(x)) for x in np.linspace(start, start + span, nc)})
        inner = [i for i in range(start + 1, start + span) if i not in context]
        if len(context) < nc or len(inner) < nt:
            # Window too small: fall back to the first frames after / around it.
            pool = [i for i in range(n) if i not in context]
            order = sorted(pool, key=lambda i: abs(i - (start + span / 2)))
            context = (context + order[: nc - len(context)])[:nc]
            inner = [i for i in order if i not in context]
        targets = sorted(int(x) for x in rng.choice(inner, size=nt, replace=False)) if nt else []
        return context, targets

    def __getitem__(self, i: int) -> Example:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        scene = self.scenes[i // self.examples_per_scene]
        rng = np.random.default_rng([self.seed, i])
        context, targets = self.sample_frames(scene, rng)
        views = scene.load_views(context + targets, self.height, self.width, self.label_map)
        nc = len(context)
        return Example(
            views.index_views(list(range(nc))),
            views.index_views(list(range(nc, nc + len(targets)))),
            scene_id=scene.name,
        )
