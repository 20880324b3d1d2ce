"""Optional lighting and photo textures of the renderer: defaults, shadows, lamps, AO, photos."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from semanticsplat_ros.data.photo_textures import (
    PHOTO_NAMES,
    TILE,
    photo_bank,
    photo_mean,
    photo_texture,
)
from semanticsplat_ros.data.raycast import render_views
from semanticsplat_ros.data.rigs import look_at, rig_cameras
from semanticsplat_ros.data.scene import (
    TEXTURE_DIM,
    CameraPath,
    PointLight,
    Primitive,
    Scene,
    Texture,
)
from semanticsplat_ros.data.world import make_scene

GREY = (0.6, 0.6, 0.6)
SIZE = (6.0, 6.0, 3.0)


def _room(extra: list[Primitive], **kw) -> Scene:
    """A bare 6 × 6 × 3 m grey room (faces in world order) plus ``extra`` solids."""
    centre = tuple(v / 2 for v in SIZE)
    half = centre
    normals = ((0, 0, 1), (0, 0, -1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))
    faces = [
        Primitive("room", centre, half, 0.0, 0, i, i, i, GREY, GREY, normal=n)
        for i, n in enumerate(normals)
    ]
    prims = faces + [dataclasses.replace(p, instance_id=6 + i) for i, p in enumerate(extra)]
    path = CameraPath((3.0, 3.0), (1.5, 1.5), 0.5, (3.0, 3.0, 0.5))
    defaults = {"light_dir": (0.0, 0.0, 1.0), "fill_dir": (1.0, 0.0, 0.0), "ambient": 0.4}
    return Scene(0, (0.0, 0.0, 0.0), SIZE, prims, path=path, **{**defaults, **kw})


def _box(center, half) -> Primitive:
    return Primitive("box", center, half, 0.0, 7, 6, 6, 6, GREY, GREY)


def _top_down(scene: Scene, size: int = 48, focal: float = 0.6):
    """A camera at 2.8 m looking straight down at the room's centre (focal: × size pixels)."""
    eye = torch.tensor([3.0, 3.0001, 2.8])
    c2w = look_at(eye, torch.tensor([3.0, 3.0, 0.0]))[None]
    f = size * focal
    K = torch.tensor([[[f, 0.0, size / 2], [0.0, f, size / 2], [0, 0, 1.0]]])
    return render_views(scene, c2w.float(), K, size, size)


def _floor_pixel(views, x: float, y: float) -> torch.Tensor:
    """RGB of the floor pixel nearest to world (x, y, 0)."""
    from semanticsplat_ros.geometry.cameras import invert_pose
    from semanticsplat_ros.geometry.projection import project, transform_points

    cam = transform_points(invert_pose(views.c2w[0]), torch.tensor([[x, y, 0.0]]))
    uv, _ = project(cam, views.K[0])
    j, i = (int(c) for c in uv[0])
    return views.images[0, :, i, j]


def test_defaults_render_like_photo_amp_zero_and_fields_off():
    scene = make_scene(3)
    c2w, K = rig_cameras(scene, "stereo", 1.0, 40, 48)
    base = render_views(scene, c2w, K, 40, 48)
    rng = np.random.default_rng(0)
    prims = [
        dataclasses.replace(
            p, texture=dataclasses.replace(p.texture, photo_id=i % len(PHOTO_NAMES))
        )
        for i, p in enumerate(scene.primitives)
    ]
    off = dataclasses.replace(
        scene, primitives=prims, shadows=False, point_lights=(), ao_strength=0.0, exposure=1.0
    )
    same = render_views(off, c2w, K, 40, 48)
    assert torch.equal(base.images, same.images) and torch.equal(base.depth, same.depth)
    photo = dataclasses.replace(
        scene,
        primitives=[dataclasses.replace(p, texture=photo_texture(rng)) for p in scene.primitives],
    )
    assert not torch.equal(render_views(photo, c2w, K, 40, 48).images, base.images)


def test_classic_formula_on_a_bare_room():
    scene = _room([])
    v = _top_down(scene)
    # The floor faces the key light straight on: (ambient + 0.6) * albedo, no fill / bounce.
    expected = (0.4 + 0.6) * 0.6
    assert torch.allclose(v.images[0, :, 24, 24], torch.full((3,), expected), atol=1e-6)


def test_shadow_under_a_box_and_lit_floor_unchanged():
    box = _box((3.0, 3.0, 0.6), (0.3, 0.3, 0.05))  # a floating slab, the key light slanted
    slanted = {"light_dir": (math.sin(0.6), 0.0, math.cos(0.6))}
    plain = _top_down(_room([box], **slanted), 64)
    shadowed = _top_down(_room([box], shadows=True, **slanted), 64)
    assert float(shadowed.images[0].sub(plain.images[0]).max()) <= 0.0
    under = (2.45, 3.0)  # in the slab's shadow (cast towards -x) and seen by the camera
    dark, lit = _floor_pixel(shadowed, *under), _floor_pixel(plain, *under)
    assert torch.allclose(dark, lit - 0.6 * math.cos(0.6) * 0.6, atol=1e-5)
    far = (1.0, 1.0)
    assert torch.equal(_floor_pixel(shadowed, *far), _floor_pixel(plain, *far))


def test_point_light_inverse_square():
    lamp = PointLight((3.0, 3.0, 1.0), color=(1.0, 1.0, 1.0), intensity=60.0)
    dark = _top_down(_room([], ambient=0.0, light_dir=(0.0, 0.0, -1.0)))
    lit = _top_down(_room([], ambient=0.0, light_dir=(0.0, 0.0, -1.0), point_lights=(lamp,)))
    assert float(dark.images.max()) == 0.0

    def expected(x: float, y: float) -> float:
        d = np.array([3.0 - x, 3.0 - y, 1.0])
        return 0.015 * 60 * (d[2] / np.linalg.norm(d)) / float(d @ d) * 0.6

    for x, y in ((3.0, 3.0), (2.0, 3.0), (1.5, 2.0)):
        value = float(_floor_pixel(lit, x, y)[0])
        assert value == pytest.approx(expected(x, y), rel=0.08), (x, y)


def test_point_light_shadowed_by_a_box():
    lamp = PointLight((3.0, 3.0, 1.5), intensity=60.0)
    box = _box((3.0, 3.0, 0.8), (0.25, 0.25, 0.05))
    kw = {"ambient": 0.2, "light_dir": (0.0, 0.0, -1.0), "point_lights": (lamp,)}
    plain = _top_down(_room([box], **kw), 64)
    shadowed = _top_down(_room([box], shadows=True, **kw), 64)
    # Floor point under the slab but visible from the slanted camera.
    assert float(_floor_pixel(shadowed, 3.0, 2.55).sum()) < float(
        _floor_pixel(plain, 3.0, 2.55).sum()
    )
    assert torch.equal(_floor_pixel(shadowed, 1.2, 1.2), _floor_pixel(plain, 1.2, 1.2))


def test_ambient_occlusion_darkens_corners_only():
    unlit = {"light_dir": (0.0, 0.0, -1.0)}  # ambient only: AO does not touch the key light
    plain = _top_down(_room([], **unlit), 96, focal=0.3)
    ao = _top_down(_room([], ao_strength=1.0, **unlit), 96, focal=0.3)
    corner = _floor_pixel(ao, 0.1, 3.0)[0] / _floor_pixel(plain, 0.1, 3.0)[0]
    centre = _floor_pixel(ao, 3.0, 3.0)[0] / _floor_pixel(plain, 3.0, 3.0)[0]
    assert float(centre) == pytest.approx(1.0)
    assert float(corner) < 0.9
    box = _box((3.0, 3.0, 0.3), (0.3, 0.3, 0.3))
    near_box = _top_down(_room([box], ao_strength=1.0), 64)
    base_box = _top_down(_room([box]), 64)
    assert float(_floor_pixel(near_box, 3.45, 3.0)[0]) < float(_floor_pixel(base_box, 3.45, 3.0)[0])
    assert float(_floor_pixel(near_box, 1.5, 1.5)[0]) == float(_floor_pixel(base_box, 1.5, 1.5)[0])


def test_exposure_scales_before_clamp():
    plain = _top_down(_room([], ambient=0.2))
    bright = _top_down(_room([], ambient=0.2, exposure=1.3))
    assert torch.allclose(bright.images, (plain.images * 1.3).clamp(0, 1), atol=1e-6)


def test_photo_texture_adds_variance_and_is_deterministic():
    def wall_scene(tex: Texture) -> Scene:
        scene = _room([])
        prims = list(scene.primitives)
        prims[1] = dataclasses.replace(prims[1], texture=tex)  # the ceiling, seen from below
        return dataclasses.replace(scene, primitives=prims)

    eye = torch.tensor([3.0, 3.0001, 0.3])
    c2w = look_at(eye, torch.tensor([3.0, 3.0, 3.0]))[None].float()
    K = torch.tensor([[[40.0, 0.0, 32.0], [0.0, 40.0, 32.0], [0, 0, 1.0]]])
    plain = render_views(wall_scene(Texture()), c2w, K, 64, 64).images
    tex = photo_texture(np.random.default_rng(5), "brick")
    assert tex == photo_texture(np.random.default_rng(5), "brick")
    tex = dataclasses.replace(tex, photo_scale=2.0)  # coarse enough to survive the mip filter
    a = render_views(wall_scene(tex), c2w, K, 64, 64).images
    b = render_views(wall_scene(tex), c2w, K, 64, 64).images
    assert torch.equal(a, b)
    assert float(plain.std()) < 1e-6 and float(a.std()) > 0.015


def test_bank_and_validation():
    bank = photo_bank()
    assert bank.shape == (len(PHOTO_NAMES), 3, TILE, TILE) and bank.dtype == torch.float32
    assert float(bank.min()) >= 0.0 and float(bank.max()) <= 1.0
    assert all(0.0 < c < 1.0 for name in PHOTO_NAMES for c in photo_mean(name))
    assert len(Texture().pack()) == TEXTURE_DIM
    with pytest.raises(ValueError, match="photo_id"):
        Texture(photo_id=-2)
    scene = make_scene(3)
    past = [dataclasses.replace(p, texture=Texture(photo_id=len(PHOTO_NAMES), photo_amp=1.0))
            for p in scene.primitives]  # fmt: skip
    c2w, K = rig_cameras(scene, "stereo", 1.0, 8, 8)
    with pytest.raises(ValueError, match="past the"):
        render_views(dataclasses.replace(scene, primitives=past), c2w, K, 8, 8)
    with pytest.raises(ValueError, match="photo_scale"):
        Texture(photo_id=0, photo_scale=0.0)
    with pytest.raises(ValueError, match="photo_amp"):
        Texture(photo_amp=1.5)
    with pytest.raises(ValueError, match="intensity"):
        PointLight((0.0, 0.0, 1.0), intensity=-1.0)
    with pytest.raises(ValueError, match="ao_strength"):
        _room([], ao_strength=2.0)
    with pytest.raises(ValueError, match="exposure"):
        _room([], exposure=0.0)
    with pytest.raises(ValueError, match="unknown photo"):
        photo_texture(np.random.default_rng(0), "marble")


def test_table_cache_follows_replaced_primitives():
    scene = make_scene(2)
    first = scene.table()
    assert dataclasses.replace(scene, shadows=True).table() is first  # lighting shares the pack
    prims = list(scene.primitives)
    prims[0] = dataclasses.replace(prims[0], texture=photo_texture(np.random.default_rng(1)))
    other = dataclasses.replace(scene, primitives=prims).table()
    assert other is not first and float(other.texture[0, 23]) >= 0
    assert scene.table() is first or torch.equal(scene.table().texture, first.texture)
