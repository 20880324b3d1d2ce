"""The semantic map's mechanics against the synthetic world's truth (no model): coverage,
instances and text queries, removal of a removed object by free-space carving, the voxel bound,
save / load round trips and bad files. ``test_mapping_pipeline.py`` fuses the model's scenes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from semanticsplat_ros.data.classes import CLASS_ID, CLASS_NAMES
from semanticsplat_ros.data.rigs import loop_period_s
from semanticsplat_ros.data.sim_rig import SceneChange, SimRig, SimRigConfig
from semanticsplat_ros.geometry import invert_pose, project, transform_points
from semanticsplat_ros.mapping import MapConfig, MapIdentity, SemanticMap, bytes_per_voxel
from semanticsplat_ros.mapping.testing import (
    class_embeddings,
    observed_surface,
    rig_views,
    truth_scene,
)

W, H = 64, 48
DIM = 384
SEG = 4
IDENTITY = MapIdentity(model="truth", text_encoder="test", feature_dim=DIM, seg_dim=SEG)
EMB = class_embeddings(len(CLASS_NAMES), DIM)
LOOP_SETS = 20


def fuse_loop(rig: SimRig, smap: SemanticMap, times: list[float]) -> list:
    views = []
    for i, t in enumerate(times):
        v = rig_views(rig, t)
        smap.fuse(truth_scene(v, EMB, stamp=t, seed=i, seg_dim=SEG), EMB)
        views.append(v)
    return views


@pytest.fixture(scope="module")
def looped():
    """A map fused from one loop of the stereo rig (truth depth and noisy truth language)."""
    rig = SimRig(SimRigConfig(width=W, height=H))
    period = loop_period_s(rig.scene)
    smap = SemanticMap(MapConfig(), IDENTITY)
    times = [i * period / LOOP_SETS for i in range(LOOP_SETS)]
    views = fuse_loop(rig, smap, times)
    return rig, smap, views


def test_one_loop_covers_the_observed_surfaces(looped):
    _, smap, views = looped
    truth = observed_surface(views, smap.config.voxel_size)
    cloud = smap.to_cloud()
    dist, _ = cKDTree(cloud.xyz).query(truth.points.numpy())
    assert (dist <= 2 * smap.config.voxel_size).mean() >= 0.95
    assert len(smap) <= 1.2 * truth.points.shape[0]  # no spurious voxels from truth depth


def single_instance_objects(scene, truth) -> dict[str, int]:
    """Class name -> instance id for the furniture classes with exactly one object."""
    out = {}
    for name in ("chair", "table", "bed", "sofa"):
        ids = {p.instance_id for p in scene.primitives if p.class_id == CLASS_ID[name]}
        seen = set(truth.instances[truth.labels == CLASS_ID[name]].tolist())
        if len(ids) == 1 and ids == seen:
            out[name] = ids.pop()
    return out


def test_text_queries_find_each_single_instance_object(looped):
    rig, smap, views = looped
    truth = observed_surface(views, smap.config.voxel_size)
    objects = single_instance_objects(rig.scene, truth)
    assert objects, "the scene has single-instance objects"
    for name, instance in objects.items():
        centre = truth.points[truth.instances == instance].mean(0).numpy()
        found = smap.query_text(EMB[CLASS_ID[name]], EMB, threshold=0.5)
        assert found and found[0].label == name
        assert np.linalg.norm(found[0].centroid - centre) <= 0.3, name
        assert found[0].box.size.min() > 0 and len(found[0].points) >= 3
        again = smap.segment_point(found[0].points[0])
        assert again.instance_id == found[0].instance_id and again.label == name
    # A random direction matches nothing above a high threshold.
    noise = torch.nn.functional.normalize(torch.randn(DIM, generator=torch.Generator()), dim=0)
    assert smap.query_text(noise, EMB, threshold=0.95) == []


def test_segment_point_answers_from_the_map(looped):
    rig, smap, _ = looped
    bed = [p for p in rig.scene.primitives if p.class_id == CLASS_ID["bed"]]
    top = bed[0]
    point = (top.center[0], top.center[1], top.center[2] + top.half_extents[2])
    got = smap.segment_point(point, radius=0.3)
    assert got.label == "bed" and got.score > 0.5
    with pytest.raises(ValueError, match="no map voxel"):
        smap.segment_point((50.0, 50.0, 50.0))
    with pytest.raises(ValueError, match="finite"):
        smap.segment_point((math.nan, 0.0, 0.0))


def test_cloud_fields_and_memory_bound(looped):
    _, smap, _ = looped
    cloud = smap.to_cloud()
    n = len(smap)
    assert cloud.xyz.shape == (n, 3) and cloud.rgb.dtype == np.uint8
    assert cloud.label.shape == cloud.score.shape == cloud.instance.shape == (n,)
    assert ((cloud.score > 0) & (cloud.score <= 1 + 1e-6)).all()
    per_voxel = bytes_per_voxel(DIM, len(CLASS_NAMES), SEG)
    assert smap.nbytes <= per_voxel * smap.config.max_voxels
    assert smap.nbytes <= 2 * per_voxel * n + 1024 * per_voxel  # grows by doubling


def test_voxels_never_exceed_max_voxels():
    rig = SimRig(SimRigConfig(width=W, height=H))
    smap = SemanticMap(MapConfig(max_voxels=800), IDENTITY)
    evicted = 0
    for i in range(6):
        report = smap.fuse(truth_scene(rig_views(rig, 3.0 * i), EMB, stamp=3.0 * i), EMB)
        assert len(smap) <= 800 and report.voxels == len(smap)
        evicted += report.evicted
    assert evicted > 0
    # The newest scene's voxels are kept before older ones.
    stamps = smap._store.arrays.last_seen[smap._store.order]
    assert float(stamps.max()) == 15.0


def _sees(views, points: torch.Tensor) -> bool:
    """Does some camera have at least a fifth of ``points`` in its image, in front of it?"""
    for i in range(views.c2w.shape[0]):
        uv, z = project(transform_points(invert_pose(views.c2w[i]), points), views.K[i])
        inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        if inside.float().mean() >= 0.2:
            return True
    return False


def test_removed_object_is_gone_within_ten_observations():
    removal = 20.0
    rig = SimRig(SimRigConfig(width=W, height=H, changes=(SceneChange(removal, "bed_7"),)))
    smap = SemanticMap(MapConfig(), IDENTITY)
    fuse_loop(rig, smap, [float(t) for t in range(int(removal))])
    bed_id = CLASS_ID["bed"]

    def bed_voxels() -> np.ndarray:
        cloud = smap.to_cloud()
        return cloud.xyz[cloud.label == bed_id]

    before = bed_voxels()
    assert len(before) > 200
    place = torch.from_numpy(before)
    observations, t = 0, removal
    while observations < 10:
        views = rig_views(rig, t)
        smap.fuse(truth_scene(views, EMB, stamp=t, seed=int(t), seg_dim=SEG), EMB)
        observations += _sees(views, place)
        t += 1.0
        assert t < removal + 30, "the rig should look at the bed's place often"
    left = bed_voxels()
    # What is left are floor voxels under the bed's edge, seen too rarely since to relabel.
    assert len(left) <= 0.05 * len(before)
    assert (left[:, 2] < 0.15).all()
    assert not smap.query_text(EMB[bed_id], EMB, threshold=0.5) or all(
        len(i.points) < 0.05 * len(before) for i in smap.query_text(EMB[bed_id], EMB, 0.5)
    )


def test_a_moved_object_is_found_at_its_new_place():
    period = loop_period_s(SimRig(SimRigConfig(width=W, height=H)).scene)
    move = SceneChange(period - 1e-3, "table_6", (0.0, -0.8, 0.0))
    rig = SimRig(SimRigConfig(width=W, height=H, changes=(move,)))
    smap = SemanticMap(MapConfig(), IDENTITY)
    fuse_loop(rig, smap, [i * period / LOOP_SETS for i in range(LOOP_SETS)])
    old = smap.query_text(EMB[CLASS_ID["table"]], EMB)[0].centroid
    fuse_loop(rig, smap, [period + i * period / LOOP_SETS for i in range(LOOP_SETS)])
    new = smap.query_text(EMB[CLASS_ID["table"]], EMB)[0].centroid
    assert abs((new[1] - old[1]) - (-0.8)) <= 0.3


def test_save_clear_load_gives_the_same_answers(looped, tmp_path):
    _, smap, _ = looped
    copy = SemanticMap(smap.config, IDENTITY)
    path = copy_map(smap, copy, tmp_path / "map.ply")
    queries = [copy.query_text(EMB[k], EMB) for k in range(len(CLASS_NAMES))]
    cloud = copy.to_cloud()
    seg = copy._store.live().segmentation.clone()
    copy.clear()
    assert len(copy) == 0 and copy.query_text(EMB[5], EMB) == []
    copy.load(path)
    assert len(copy) == len(smap)
    again = copy.to_cloud()
    for field in dataclasses.fields(cloud):
        np.testing.assert_array_equal(getattr(cloud, field.name), getattr(again, field.name))
    torch.testing.assert_close(copy._store.live().segmentation, seg)
    for k, before in enumerate(queries):
        after = copy.query_text(EMB[k], EMB)
        assert [(i.label, len(i.points)) for i in after] == [
            (i.label, len(i.points)) for i in before
        ]
        for a, b in zip(before, after, strict=True):
            np.testing.assert_allclose(a.centroid, b.centroid, atol=1e-6)
            assert a.score == pytest.approx(b.score, abs=1e-6)


def copy_map(source: SemanticMap, target: SemanticMap, path) -> object:
    source.save(path)
    target.load(path)
    return path


def test_bad_files_leave_the_map_as_it_was(looped, tmp_path):
    _, smap, _ = looped
    target = SemanticMap(smap.config, IDENTITY)
    good = copy_map(smap, target, tmp_path / "good.ply")
    n = len(target)
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"\x00\x01not a ply at all" * 100)
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(good.read_bytes()[:-100])
    other = SemanticMap(smap.config, dataclasses.replace(IDENTITY, model="another"))
    other_path = tmp_path / "other.ply"
    other.fuse(truth_scene(rig_views(SimRig(SimRigConfig(width=W, height=H)), 0.0), EMB), EMB)
    other.save(other_path)
    cases = [
        (tmp_path / "missing.ply", FileNotFoundError, "no such map file"),
        (garbage, ValueError, "not a PLY"),
        (truncated, ValueError, "truncated"),
        (other_path, ValueError, "made by model 'another'"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message) as info:
            target.load(path)
        assert "\n" not in str(info.value)
        assert len(target) == n
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot write map file"):
        target.save(blocker / "map.ply")
    assert len(target) == n


def test_malformed_scenes_are_refused_and_change_nothing(looped):
    _, smap, views = looped
    n = len(smap)
    scene = truth_scene(views[0], EMB, seg_dim=SEG)
    g = scene.gaussians
    narrow = dataclasses.replace(g, features=g.features[..., : SEG + 10])
    bad = [
        (dataclasses.replace(scene, depth=scene.depth[:, :-1]), "depth|shape"),
        (dataclasses.replace(scene, gaussians=narrow), "language latents"),
        (dataclasses.replace(scene, seg_dim=2), "seg_dim"),
        (dataclasses.replace(scene, stamp=math.nan), "finite"),
        (dataclasses.replace(scene, classes=("a", "b")), "classes|shape"),
    ]
    for case, message in bad:
        with pytest.raises(ValueError, match=message):
            smap.fuse(case, EMB)
        assert len(smap) == n
    with pytest.raises(ValueError, match="class embeddings to relabel"):
        smap.fuse(dataclasses.replace(scene, classes=tuple(f"c{i}" for i in range(8))))
    assert smap.classes == CLASS_NAMES


def test_configs_validate_themselves():
    for kwargs in ({"voxel_size": 0}, {"max_voxels": 0}, {"max_range_m": math.inf}):
        with pytest.raises(ValueError, match="MapConfig"):
            MapConfig(**kwargs)
    with pytest.raises(ValueError, match="seg_dim"):
        MapIdentity("m", "minilm", 384, seg_dim=-1)
    with pytest.raises(ValueError, match="language_dim"):
        MapIdentity("m", "minilm", 384, language_dim=True)
    assert MapIdentity("m", "minilm", 384).language_dim == 384  # 0: the features themselves
    with pytest.raises(ValueError, match="one-line"):
        MapIdentity("m\nx", "minilm", 384)
    with pytest.raises(ValueError, match="no object 'sofa_99'"):
        SimRig(SimRigConfig(width=W, height=H, changes=(SceneChange(1.0, "sofa_99"),)))


def latent_scene(scene, codes: torch.Tensor):
    """``scene`` with each Gaussian's language channels replaced by ``codes[true class]`` plus
    noise: a low-dimensional latent that the expander ``latent @ EMB`` maps back into the
    text space."""
    v, _, h, w = scene.images.shape
    cosine = scene.class_cosine.permute(0, 2, 3, 1).reshape(v * h * w, -1)
    noisy = codes[cosine.argmax(dim=1)] + 0.05 * torch.randn(v * h * w, codes.shape[1])
    features = torch.cat([scene.gaussians.features[0, :, :SEG], noisy], dim=1)[None]
    return dataclasses.replace(
        scene, gaussians=dataclasses.replace(scene.gaussians, features=features)
    )


def test_a_map_of_latents_expands_them_for_queries(looped, tmp_path):
    """A map storing k-d language latents (one code per class) answers text queries through
    its expander as the map of full features does, and refuses them without one."""
    rig, full, views = looped
    k = len(CLASS_NAMES)
    codes = torch.eye(k)
    identity = dataclasses.replace(IDENTITY, language_dim=k)
    expander = lambda x: x @ EMB  # noqa: E731
    smap = SemanticMap(MapConfig(), identity, expander=expander)
    for i, v in enumerate(views):
        scene = truth_scene(v, EMB, stamp=float(i), seed=i, seg_dim=SEG)
        smap.fuse(latent_scene(scene, codes), EMB)
    assert smap.nbytes < full.nbytes / 4  # 8 stored channels per voxel instead of 384
    truth = observed_surface(views, smap.config.voxel_size)
    for name in single_instance_objects(rig.scene, truth):
        found = smap.query_text(EMB[CLASS_ID[name]], EMB)
        reference = full.query_text(EMB[CLASS_ID[name]], EMB)
        assert found and found[0].label == name
        assert np.linalg.norm(found[0].centroid - reference[0].centroid) <= 0.1, name
    path = smap.save(tmp_path / "latent.ply")
    blind = SemanticMap(MapConfig(), identity)
    blind.load(path)
    assert len(blind) == len(smap)
    with pytest.raises(ValueError, match="8-d language latents; text queries need the expander"):
        blind.query_text(EMB[0], EMB)
    with pytest.raises(ValueError, match="the map was made by"):
        SemanticMap(MapConfig(), IDENTITY).load(path)  # full features: another identity
    wrong = SemanticMap(MapConfig(), identity, expander=lambda x: x)
    wrong.load(path)
    with pytest.raises(ValueError, match="expander must give"):
        wrong.query_text(EMB[0], EMB)
