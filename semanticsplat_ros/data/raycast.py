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

_EPS = 1e-4


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


def _rotate_to_local(x: Tensor, y: Tensor, c: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    # R(yaw)^T applied to (x, y)
    return c * x + s * y, -s * x + c * y


def _intersect_pairs(
    table: PrimitiveTable, origins: Tensor, dirs: Tensor, prim: Tensor
) -> Float[Tensor, " m"]:
    """Ray parameter of the first hit of ray m with solid ``prim[m]`` (inf if none).

    origins, dirs: (m, 3) world frame; prim: (m,) indices of solids (not room faces).
    Rays starting inside a solid do not hit it (cameras never start inside furniture).
    """
    center = table.center[prim]
    half = table.half[prim]
    c, s = table.cos_yaw[prim], table.sin_yaw[prim]
    kind = table.kind[prim]
    rel = origins - center
    ox, oy = _rotate_to_local(rel[:, 0], rel[:, 1], c, s)
    oz = rel[:, 2]
    dx, dy = _rotate_to_local(dirs[:, 0], dirs[:, 1], c, s)
    dz = dirs[:, 2]
    o = torch.stack([ox, oy, oz], dim=1)
    d = torch.stack([dx, dy, dz], dim=1)
    d_safe = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    inv = 1.0 / d_safe
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tmin = torch.minimum(t1, t2)
    tmax = torch.maximum(t1, t2)
    # Box: intersection of the three slabs.
    box_near = tmin.amax(dim=1)
    box_far = tmax.amin(dim=1)
    # Cylinder (axis local z): infinite cylinder ∩ z slab.
    r = half[:, 0]
    a = dx * dx + dy * dy
    bh = ox * dx + oy * dy
    cc = ox * ox + oy * oy - r * r
    disc = bh * bh - a * cc
    sq = disc.clamp_min(0.0).sqrt()
    a_safe = a.clamp_min(1e-12)
    cyl_near = torch.maximum((-bh - sq) / a_safe, tmin[:, 2])
    cyl_far = torch.minimum((-bh + sq) / a_safe, tmax[:, 2])
    cyl_ok = disc >= 0
    # Rays (almost) parallel to the axis: inside the radius -> only the caps bound the hit.
    parallel = a < 1e-12
    cyl_near = torch.where(parallel, tmin[:, 2], cyl_near)
    cyl_far = torch.where(parallel, tmax[:, 2], cyl_far)
    cyl_ok = torch.where(parallel, cc <= 0, cyl_ok)
    # Sphere.
    a3 = (d * d).sum(dim=1)
    b3 = (o * d).sum(dim=1)
    c3 = (o * o).sum(dim=1) - r * r
    disc3 = b3 * b3 - a3 * c3
    sq3 = disc3.clamp_min(0.0).sqrt()
    sph_near = (-b3 - sq3) / a3.clamp_min(1e-12)
    sph_far = (-b3 + sq3) / a3.clamp_min(1e-12)

    is_box = kind == KIND_BOX
    is_cyl = kind == KIND_CYLINDER
    t_near = torch.where(is_box, box_near, torch.where(is_cyl, cyl_near, sph_near))
    t_far = torch.where(is_box, box_far, torch.where(is_cyl, cyl_far, sph_far))
    ok = torch.where(is_box, torch.ones_like(cyl_ok), torch.where(is_cyl, cyl_ok, disc3 >= 0))
    ok = ok & (kind != KIND_ROOM_FACE) & (t_near <= t_far) & (t_near > _EPS)
    return torch.where(ok, t_near, torch.full_like(t_near, math.inf))


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
    t = torch.where(t > _EPS, t, torch.full_like(t, math.inf))
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
        t_pair = _intersect_pairs(table, origins[ray], dirs[ray], prim)
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
    t_pair = _intersect_pairs(table, origins[view], flat_dirs[ray], prim)
    keep = torch.isfinite(t_pair)
    hits = _resolve(v * height * width, ray[keep], prim[keep], t_pair[keep], t_room, face)
    return hits, origins, dirs


def shade(
    scene: Scene,
    points: Float[Tensor, "n 3"],
    prim: Int[Tensor, " n"],
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"]]:
    """Lambertian colour and world normal at surface ``points`` of primitives ``prim``."""
    table = scene.table(points.device)
    center = table.center[prim]
    c, s = table.cos_yaw[prim], table.sin_yaw[prim]
    rel = points - center
    lx, ly = _rotate_to_local(rel[:, 0], rel[:, 1], c, s)
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

    light = torch.tensor(scene.light_dir, dtype=points.dtype, device=points.device)
    fill = torch.tensor(scene.fill_dir, dtype=points.dtype, device=points.device)
    lambert = (
        scene.ambient
        + 0.6 * (normal @ light).clamp_min(0.0)
        + 0.25 * (normal @ fill).clamp_min(0.0)
        + 0.15 * (-normal[:, 2]).clamp_min(0.0)  # light bounced off the floor
    )
    return (albedo * lambert[:, None]).clamp(0.0, 1.0), normal


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


def _render(
    scene: Scene, c2w: Tensor, K: Tensor, height: int, width: int, near: float, far: float | None
) -> Views:
    v = c2w.shape[0]
    hits, origins, dirs = trace_views(scene, c2w, K, height, width)
    valid = torch.isfinite(hits.t)
    t = torch.where(valid, hits.t, torch.zeros_like(hits.t))
    flat_dirs = dirs.reshape(-1, 3)
    points = origins.repeat_interleave(height * width, dim=0) + t[:, None] * flat_dirs
    rgb, _ = shade(scene, points, hits.prim)
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
