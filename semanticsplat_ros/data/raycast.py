"""Vectorised ray casting of ``scene.Scene``: RGB, metric depth, class / instance / part / group maps.

How it stays fast on a CPU (2×128×128 in a few tens of milliseconds):

* rays are built with a camera-frame z of 1, so the ray parameter ``t`` *is* the z-depth;
* the room is the inside of a box: one slab test per ray gives the wall / floor / ceiling hit;
* each solid is tested only against the rays inside the screen rectangle of its bounding box
  (frustum + screen-space culling), all (ray, primitive) pairs of all views in one batch;
* boxes and cylinders are intersected in their local (yaw-rotated) frames analytically
  (slab test; quadratic + caps), spheres analytically.

``cast_rays`` tests every ray against every primitive with the same kernel and no culling: it is
the plain reference the tests compare the culled renderer against, and it answers visibility
queries (is this 3D point seen from that camera?).

Shading is Lambertian with the scene's fixed key and fill lights plus an ambient term; albedo
comes from the primitive's procedural texture evaluated at the hit point in its local frame, so a
surface point has the same colour in every view.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from semanticsplat_ros.data.intersect import EPS, intersect_pairs, rotate_to_local
from semanticsplat_ros.data.lighting import (
    ambient_occlusion,
    key_light_visibility,
    point_light_radiance,
)
from semanticsplat_ros.data.photo_textures import PHOTO_NAMES, TILE, sample_detail
from semanticsplat_ros.data.scene import (
    KIND_BOX,
    KIND_CYLINDER,
    KIND_ROOM_FACE,
    PrimitiveTable,
    Scene,
)
from semanticsplat_ros.data.types import DEFAULT_NEAR, Views
from semanticsplat_ros.geometry.cameras import check_intrinsics, check_pose
from semanticsplat_ros.geometry.projection import pixel_centers

RENDER_THREADS = 1
"""CPU threads used while ray casting. The work is many small tensor ops, for which intra-op
threads cost more than they bring (measured here: 2 threads were 2-7× slower than 1 on a
loaded 2-core machine); None keeps the caller's setting."""


@contextlib.contextmanager
def _cpu_threads(device: torch.device) -> Iterator[None]:
    before = torch.get_num_threads()
    change = RENDER_THREADS is not None and device.type == "cpu" and before != RENDER_THREADS
    if change:
        torch.set_num_threads(RENDER_THREADS)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)


@dataclass
class RayHits:
    """First hits of n rays: ``t`` along the ray (inf where nothing is hit) and the primitive."""

    t: Float[Tensor, " n"]
    prim: Int[Tensor, " n"]


def _room_hit(scene: Scene, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Exit point of rays from inside the room box: (t, face index 0..5)."""
    lo = torch.tensor(scene.room_min, dtype=dirs.dtype, device=dirs.device)
    hi = torch.tensor(scene.room_max, dtype=dirs.dtype, device=dirs.device)
    d_safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    bound = torch.where(d_safe < 0, lo, hi)
    t_axis = (bound - origins) / d_safe
    t, axis = t_axis.min(dim=1)
    neg = torch.gather(d_safe, 1, axis[:, None])[:, 0] < 0
    # Face order of the room (world.make_scene): floor, ceiling, x-, x+, y-, y+.
    face_neg = torch.tensor([2, 4, 0], device=dirs.device)
    face_pos = torch.tensor([3, 5, 1], device=dirs.device)
    face = torch.where(neg, face_neg[axis], face_pos[axis])
    t = torch.where(t > EPS, t, torch.full_like(t, math.inf))
    return t, face


def _resolve(
    num_rays: int, ray: Tensor, prim: Tensor, t_pair: Tensor, t_room: Tensor, face: Tensor
) -> RayHits:
    """Nearest hit per ray among the room and the (ray, prim) pairs; ties go to the lower id."""
    t_best = t_room.clone()
    if ray.numel():
        t_best.scatter_reduce_(0, ray, t_pair, reduce="amin", include_self=True)
        win = torch.isfinite(t_pair) & (t_pair == t_best[ray])
        cand = torch.full((num_rays,), _BIG_INDEX, dtype=torch.long, device=ray.device)
        cand.scatter_reduce_(0, ray[win], prim[win], reduce="amin", include_self=True)
        prim_best = torch.where(cand < _BIG_INDEX, cand, face)
    else:
        prim_best = face.clone()
    return RayHits(t_best, prim_best)


_BIG_INDEX = 1 << 40


def cast_rays(
    scene: Scene,
    origins: Float[Tensor, "n 3"],
    dirs: Float[Tensor, "n 3"],
    chunk: int = 1 << 20,
) -> RayHits:
    """First hit of every ray against every primitive (no culling; the reference path).

    origins, dirs: world frame, metres; ``dirs`` need not be unit: ``t`` is in units of
    ``dirs`` (hit point = origin + t * dir). ``t`` is inf for rays that leave the room.
    """
    if origins.shape != dirs.shape or origins.ndim != 2 or origins.shape[1] != 3:
        raise ValueError(
            f"origins and dirs must both be (n, 3), got {tuple(origins.shape)} "
            f"and {tuple(dirs.shape)}"
        )
    table = scene.table(dirs.device)
    origins = origins.to(torch.float32)
    dirs = dirs.to(torch.float32)
    n = dirs.shape[0]
    t_room, face = _room_hit(scene, origins, dirs)
    solids = torch.nonzero(table.kind != KIND_ROOM_FACE)[:, 0]
    per_chunk = max(1, chunk // max(1, solids.numel()))
    t_best, prim_best = [], []
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        ray = torch.arange(start, stop, device=dirs.device).repeat_interleave(solids.numel())
        prim = solids.repeat(stop - start)
        t_pair = intersect_pairs(table, origins[ray], dirs[ray], prim)
        hits = _resolve(
            stop - start, ray - start, prim, t_pair, t_room[start:stop], face[start:stop]
        )
        t_best.append(hits.t)
        prim_best.append(hits.prim)
    if not t_best:
        return RayHits(t_room, face)
    return RayHits(torch.cat(t_best), torch.cat(prim_best))


def camera_rays(
    c2w: Float[Tensor, "v 4 4"], K: Float[Tensor, "v 3 3"], height: int, width: int
) -> tuple[Float[Tensor, "v 3"], Float[Tensor, "v h w 3"]]:
    """Ray origins (camera centres) and world directions with camera-frame z = 1 per pixel."""
    uv = pixel_centers(height, width, device=c2w.device, dtype=torch.float32)
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    skew = K[:, 0, 1, None, None]
    y = (uv[None, ..., 1] - cy) / fy
    x = (uv[None, ..., 0] - cx - skew * y) / fx
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # (v, h, w, 3)
    R = c2w[:, :3, :3]
    dirs = torch.einsum("vij,vhwj->vhwi", R, d_cam)
    return c2w[:, :3, 3], dirs


def _screen_pairs(
    table: PrimitiveTable, c2w: Tensor, K: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """(ray index into v*h*w, solid index) for every pixel inside a solid's projected AABB."""
    device = c2w.device
    solids = torch.nonzero(table.kind != KIND_ROOM_FACE)[:, 0]
    if solids.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    lo, hi = table.aabb_min[solids], table.aabb_max[solids]  # (p, 3)
    bits = torch.tensor(
        [[(k >> i) & 1 for i in range(3)] for k in range(8)], dtype=torch.bool, device=device
    )
    corners = torch.where(bits[None], hi[:, None], lo[:, None])  # (p, 8, 3)
    R = c2w[:, :3, :3]
    t = c2w[:, :3, 3]
    cam = torch.einsum("vji,vpkj->vpki", R, corners[None] - t[:, None, None])  # (v, p, 8, 3)
    z = cam[..., 2]
    in_front = z > 1e-2
    z_safe = torch.where(in_front, z, torch.ones_like(z))
    u = K[:, None, None, 0, 0] * cam[..., 0] / z_safe + K[:, None, None, 0, 2]
    u = u + K[:, None, None, 0, 1] * cam[..., 1] / z_safe
    v = K[:, None, None, 1, 1] * cam[..., 1] / z_safe + K[:, None, None, 1, 2]
    # Pixel j (centre j + 0.5) is inside [umin, umax] iff ceil(umin - .5) <= j <= floor(umax - .5);
    # one pixel of margin against rounding.
    c0 = torch.floor(u.amin(-1) - 0.5).long()
    c1 = torch.floor(u.amax(-1) - 0.5).long() + 2
    r0 = torch.floor(v.amin(-1) - 0.5).long()
    r1 = torch.floor(v.amax(-1) - 0.5).long() + 2
    all_front = in_front.all(-1)
    straddle = in_front.any(-1) & ~all_front  # part behind the camera: test the whole image
    c0 = torch.where(straddle, 0, c0).clamp(0, width)
    c1 = torch.where(straddle, width, c1).clamp(0, width)
    r0 = torch.where(straddle, 0, r0).clamp(0, height)
    r1 = torch.where(straddle, height, r1).clamp(0, height)
    visible = all_front | straddle
    wq = (c1 - c0).clamp_min(0)
    area = torch.where(visible, wq * (r1 - r0).clamp_min(0), 0).reshape(-1)  # (v*p,)
    total = int(area.sum())
    num_p = solids.numel()
    q = torch.repeat_interleave(torch.arange(area.numel(), device=device), area)
    start = torch.cumsum(area, 0) - area
    offset = torch.arange(total, device=device) - start[q]
    wq_f = wq.reshape(-1)[q]
    row = r0.reshape(-1)[q] + offset // wq_f.clamp_min(1)
    col = c0.reshape(-1)[q] + offset % wq_f.clamp_min(1)
    view = q // num_p
    ray = (view * height + row) * width + col
    return ray, solids[q % num_p]


def trace_views(
    scene: Scene, c2w: Float[Tensor, "v 4 4"], K: Float[Tensor, "v 3 3"], height: int, width: int
) -> tuple[RayHits, Float[Tensor, "v 3"], Float[Tensor, "v h w 3"]]:
    """First hits of every pixel's ray (culled); returns hits flattened over (v, h, w)."""
    table = scene.table(c2w.device)
    origins, dirs = camera_rays(c2w, K, height, width)
    v = c2w.shape[0]
    flat_dirs = dirs.reshape(-1, 3)
    flat_orig = origins.repeat_interleave(height * width, dim=0)
    t_room, face = _room_hit(scene, flat_orig, flat_dirs)
    ray, prim = _screen_pairs(table, c2w, K, height, width)
    view = ray // (height * width)
    t_pair = intersect_pairs(table, origins[view], flat_dirs[ray], prim)
    keep = torch.isfinite(t_pair)
    hits = _resolve(v * height * width, ray[keep], prim[keep], t_pair[keep], t_room, face)
    return hits, origins, dirs


def shade(
    scene: Scene,
    points: Float[Tensor, "n 3"],
    prim: Int[Tensor, " n"],
    *,
    footprint: Float[Tensor, " n"] | None = None,
    view_dirs: Float[Tensor, "n 3"] | None = None,
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"]]:
    """Lambertian colour and world normal at surface ``points`` of primitives ``prim``.

    ``footprint`` (metres a pixel covers at the point, facing the camera) and ``view_dirs``
    (the rays' directions) pick the mip level of photo textures; None samples them at full
    resolution. Shadows, point lights and ambient occlusion (``data/lighting.py``) run only when
    the scene asks for them; runs of consecutive points should be spatially compact for them to
    be fast (``render_views`` hands them over in 4×4 pixel tiles).
    """
    table = scene.table(points.device)
    center = table.center[prim]
    c, s = table.cos_yaw[prim], table.sin_yaw[prim]
    rel = points - center
    lx, ly = rotate_to_local(rel[:, 0], rel[:, 1], c, s)
    local = torch.stack([lx, ly, rel[:, 2]], dim=1)
    half = table.half[prim].clamp_min(1e-6)
    kind = table.kind[prim]
    # Local normals per kind.
    q = local.abs() / half
    axis = q.argmax(dim=1)
    n_box = torch.nn.functional.one_hot(axis, 3).to(local.dtype)
    n_box = n_box * torch.sign(torch.gather(local, 1, axis[:, None]))
    radial = torch.sqrt(lx * lx + ly * ly).clamp_min(1e-9)
    cap = q[:, 2] >= radial / half[:, 0]
    zero = torch.zeros_like(lx)
    n_side = torch.stack([lx / radial, ly / radial, zero], dim=1)
    n_cap = torch.stack([zero, zero, torch.sign(local[:, 2])], dim=1)
    n_cyl = torch.where(cap[:, None], n_cap, n_side)
    n_sph = local / local.norm(dim=1, keepdim=True).clamp_min(1e-9)
    n_local = torch.where(
        (kind == KIND_BOX)[:, None],
        n_box,
        torch.where((kind == KIND_CYLINDER)[:, None], n_cyl, n_sph),
    )
    nx = c * n_local[:, 0] - s * n_local[:, 1]
    ny = s * n_local[:, 0] + c * n_local[:, 1]
    normal = torch.stack([nx, ny, n_local[:, 2]], dim=1)
    normal = torch.where((kind == KIND_ROOM_FACE)[:, None], table.normal[prim], normal)

    # Procedural texture (layout: scene.Texture.pack).
    tex = table.texture[prim]
    two_pi = 2.0 * math.pi
    freqs = tex[:, 0:9].reshape(-1, 3, 3)
    noise = torch.sin(two_pi * torch.einsum("nkj,nj->nk", freqs, local) + tex[:, 9:12]).mean(1)
    warp = tex[:, 19] * torch.sin(two_pi * (tex[:, 16:19] * local).sum(1))
    stripes = torch.sin(two_pi * (tex[:, 13:16] * local).sum(1) + warp)
    cell = tex[:, 21].clamp_min(1e-3)
    checker = torch.tanh(
        3.0 * torch.sin(math.pi * local[:, 0] / cell) * torch.sin(math.pi * local[:, 1] / cell)
    )
    value = tex[:, 12] * noise + tex[:, 20] * stripes + tex[:, 22] * checker
    weight = (0.5 + 0.5 * value.clamp(-1.0, 1.0))[:, None]
    albedo = table.color[prim] * (1.0 - weight) + table.color2[prim] * weight
    with_photo = torch.nonzero(tex[:, 23] >= 0)[:, 0]
    if with_photo.numel():
        albedo = _apply_photos(table, albedo, local, normal, prim, with_photo, footprint, view_dirs)
    return _light(scene, table, points, albedo, normal, prim), normal


def _apply_photos(
    table: PrimitiveTable,
    albedo: Tensor,
    local: Tensor,
    normal: Tensor,
    prim: Tensor,
    idx: Tensor,
    footprint: Tensor | None,
    view_dirs: Tensor | None,
) -> Tensor:
    """``albedo`` with the photo detail of the points ``idx`` applied (see ``scene.Texture``)."""
    p = prim[idx]
    tex = table.texture[p]
    if int(tex[:, 23].max()) >= len(PHOTO_NAMES):
        raise ValueError(
            f"photo_id {int(tex[:, 23].max())} is past the {len(PHOTO_NAMES)} photos of "
            "photo_textures.PHOTO_NAMES"
        )
    scale = tex[:, 24]
    nx, ny = rotate_to_local(normal[idx, 0], normal[idx, 1], table.cos_yaw[p], table.sin_yaw[p])
    axis = torch.stack([nx, ny, normal[idx, 2]], dim=1).abs().argmax(dim=1)
    x, y, z = local[idx].unbind(dim=1)
    # Planar projection on the two local axes most perpendicular to the normal (image up = +z).
    u = torch.where(axis == 0, y, x) / scale
    v = torch.where(axis == 2, y, -z) / scale
    texels = None
    if footprint is not None:
        texels = footprint[idx] * TILE / scale
        if view_dirs is not None:
            d = view_dirs[idx]
            cos = (normal[idx] * d).sum(dim=1).abs() / d.norm(dim=1).clamp_min(1e-9)
            texels = texels / cos.clamp_min(0.05).sqrt()
    detail = sample_detail(tex[:, 23].long(), u, v, texels)
    amp = tex[:, 25:26]
    factor = 1.0 - amp + amp * tex[:, 26:29] * detail
    albedo = albedo.clone()
    albedo[idx] = (albedo[idx] * factor).clamp(0.0, 1.0)
    return albedo


def _light(
    scene: Scene,
    table: PrimitiveTable,
    points: Tensor,
    albedo: Tensor,
    normal: Tensor,
    prim: Tensor,
) -> Tensor:
    """Radiance clamped to [0, 1]: ambient, key, fill and bounce light (with the scene's
    optional shadows, ambient occlusion and point lights), times the exposure."""
    light = torch.tensor(scene.light_dir, dtype=points.dtype, device=points.device)
    fill = torch.tensor(scene.fill_dir, dtype=points.dtype, device=points.device)
    key = 0.6 * (normal @ light).clamp_min(0.0)
    if scene.shadows:
        key = key * key_light_visibility(table, points, normal, prim, light).to(key.dtype)
    fill_term = 0.25 * (normal @ fill).clamp_min(0.0)
    bounce = 0.15 * (-normal[:, 2]).clamp_min(0.0)  # light bounced off the floor
    if scene.ao_strength > 0:
        ao = ambient_occlusion(scene, table, points, normal, prim)
        lambert = key + (scene.ambient + fill_term + bounce) * ao
    else:
        lambert = scene.ambient + key + fill_term + bounce
    radiance = albedo * lambert[:, None]
    if scene.point_lights:
        lamps = point_light_radiance(table, points, normal, prim, scene.point_lights, scene.shadows)
        radiance = radiance + albedo * lamps
    if scene.exposure != 1.0:
        radiance = radiance * scene.exposure
    return radiance.clamp(0.0, 1.0)


def _check_cameras(c2w: Tensor, K: Tensor, height: int, width: int) -> None:
    if not isinstance(height, int) or not isinstance(width, int) or height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive ints, got {height!r}, {width!r}")
    check_pose(c2w, "c2w")
    check_intrinsics(K, "K")
    if c2w.ndim != 3 or K.ndim != 3 or c2w.shape[0] != K.shape[0]:
        raise ValueError(
            f"c2w must be (v, 4, 4) and K (v, 3, 3) with the same v, got "
            f"{tuple(c2w.shape)} and {tuple(K.shape)}"
        )


def render_views(
    scene: Scene,
    c2w: Float[Tensor, "v 4 4"],
    K: Float[Tensor, "v 3 3"],
    height: int,
    width: int,
    *,
    near: float = DEFAULT_NEAR,
    far: float | None = None,
) -> Views:
    """Render v views of ``scene``: RGB, z-depth and the four id maps, all filled.

    c2w: camera-to-world (OpenCV camera frame, world z up, metres); K: pixels of this
    resolution, centres at +0.5. ``near``/``far`` (metres) are written into the Views for the
    cost volume; ``far`` defaults to the room's diagonal + 0.1 m, beyond any visible depth.
    Pixels whose ray leaves the room (camera outside it) get depth 0 and ids -1.
    Runs on c2w's device in float32.
    """
    _check_cameras(c2w, K, height, width)
    c2w = c2w.to(torch.float32)
    K = K.to(torch.float32)
    with _cpu_threads(c2w.device):
        return _render(scene, c2w, K, height, width, near, far)


def _tile_order(v: int, height: int, width: int, device: torch.device) -> Int[Tensor, " n"]:
    """Flat pixel indices of v (h, w) images in 4×4 tiles (row-major runs where h or w is not a
    multiple of 4), so that runs of 16 consecutive pixels are compact for ``lighting``."""
    if height % 4 or width % 4:
        return torch.arange(v * height * width, device=device)
    idx = torch.arange(v * height * width, device=device).reshape(v, height // 4, 4, width // 4, 4)
    return idx.permute(0, 1, 3, 2, 4).reshape(-1)


def _render(
    scene: Scene, c2w: Tensor, K: Tensor, height: int, width: int, near: float, far: float | None
) -> Views:
    v = c2w.shape[0]
    hits, origins, dirs = trace_views(scene, c2w, K, height, width)
    valid = torch.isfinite(hits.t)
    t = torch.where(valid, hits.t, torch.zeros_like(hits.t))
    flat_dirs = dirs.reshape(-1, 3)
    points = origins.repeat_interleave(height * width, dim=0) + t[:, None] * flat_dirs
    footprint = t / K[:, 0, 0].repeat_interleave(height * width)
    if scene.shadows or scene.point_lights or scene.ao_strength > 0:
        order = _tile_order(v, height, width, c2w.device)
        rgb = torch.empty_like(points)
        rgb[order], _ = shade(
            scene,
            points[order],
            hits.prim[order],
            footprint=footprint[order],
            view_dirs=flat_dirs[order],
        )
    else:
        rgb, _ = shade(scene, points, hits.prim, footprint=footprint, view_dirs=flat_dirs)
    rgb = torch.where(valid[:, None], rgb, torch.zeros_like(rgb))
    ids = scene.table(c2w.device).ids[hits.prim]
    ids = torch.where(valid[:, None], ids, torch.full_like(ids, -1))
    far_value = scene.diagonal + 0.1 if far is None else float(far)
    shape = (v, height, width)
    return Views(
        images=rgb.reshape(v, height, width, 3).permute(0, 3, 1, 2).contiguous(),
        K=K.clone(),
        c2w=c2w.clone(),
        near=torch.full((v,), float(near), device=c2w.device),
        far=torch.full((v,), far_value, device=c2w.device),
        depth=t.reshape(shape),
        labels=ids[:, 0].reshape(shape),
        instances=ids[:, 1].reshape(shape),
        parts=ids[:, 2].reshape(shape),
        groups=ids[:, 3].reshape(shape),
    )


__all__ = [
    "RayHits",
    "camera_rays",
    "cast_rays",
    "render_views",
    "shade",
    "trace_views",
]
