"""SemanticSplat end to end on tiny inputs: shapes, view permutation, gradients, configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from semanticsplat_ros.model import (
    CONDITION_CHOICES,
    SemanticSplat,
    SemanticSplatConfig,
    count_parameters,
    with_conditions,
    with_language_skip,
)
from semanticsplat_ros.model.testing import random_views, tiny_config
from semanticsplat_ros.render.types import RenderOutput


@pytest.fixture(scope="module")
def model() -> SemanticSplat:
    torch.manual_seed(0)
    return SemanticSplat(tiny_config()).eval()


def teacher_features(b: int, v: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, v, 12, 4, 4, generator=g), torch.randn(b, v, 10, 16, 16, generator=g)


@pytest.mark.parametrize("num_views", [2, 3, 4])
def test_output_shapes(model: SemanticSplat, num_views: int) -> None:
    b, h, w = 2, 16, 24
    views = random_views(b, num_views, h, w)
    sam, lang = teacher_features(b, num_views)
    with torch.no_grad():
        out = model(views, sam, lang)
    n = num_views * h * w
    g = out.gaussians
    assert g.means.shape == (b, n, 3)
    assert g.quats.shape == (b, n, 4)
    assert g.scales.shape == (b, n, 3)
    assert g.opacities.shape == (b, n)
    assert g.colors.shape == (b, n, 3)
    assert g.features.shape == (b, n, 5)
    assert (out.seg_dim, out.language_dim) == (3, 2)
    assert out.seg_features.shape == (b, n, 3) and out.language_features.shape == (b, n, 2)
    assert out.depth.shape == (b, num_views, h, w)
    assert out.depth_probs.shape == (b, num_views, 8, h // 4, w // 4)
    assert out.depth_candidates.shape == (b, num_views, 8)
    # Ranges: depth inside [near, far], unit quaternions, positive scales, [0, 1] colour/opacity.
    assert out.depth.min() >= 0.5 - 1e-4 and out.depth.max() <= 10.0 + 1e-3
    assert torch.allclose(g.quats.norm(dim=-1), torch.ones(b, n), atol=1e-5)
    assert (g.scales > 0).all()
    assert ((g.colors >= 0) & (g.colors <= 1)).all()
    assert ((g.opacities >= 0) & (g.opacities <= 1)).all()
    # Centres are the unprojected depth: back in each camera their z equals the depth map.
    offset = g.means.reshape(b, num_views, h * w, 3) - views.c2w[:, :, None, :3, 3]
    z = (offset * views.c2w[:, :, None, :3, 2]).sum(-1)  # (p - t) · (camera z axis in world)
    assert torch.allclose(z, out.depth.reshape(b, num_views, -1), rtol=1e-4, atol=1e-4)


def test_decode_features_shapes(model: SemanticSplat) -> None:
    feats = torch.randn(2, 3, 5, 16, 16)
    z = torch.zeros(2, 3, 1, 16, 16)
    rendered = RenderOutput(color=torch.zeros(2, 3, 3, 16, 16), features=feats, depth=z, alpha=z)
    seg, lang = model.decode_features(rendered)
    assert seg.shape == (2, 3, 12, 16, 16) and lang.shape == (2, 3, 10, 16, 16)
    bad = dataclasses.replace(rendered, features=feats[:, :, :4])
    with pytest.raises(ValueError, match="rendered features"):
        model.decode_features(bad)


def test_expanding_points_equals_expanding_a_constant_field(model: SemanticSplat) -> None:
    """``FeatureExpander.points`` (what the map expands per-voxel latents with) is the
    expander applied to a field constant around each pixel."""
    expander = model.language_expander
    x = torch.randn(5, model.config.semantic.language_render_dim)
    field = x[:, :, None, None].expand(-1, -1, 5, 5)[None]  # (1, 5, f, 5, 5)
    with torch.no_grad():
        full = expander(field)[0, :, :, 2, 2]  # centre pixels: no zero padding reaches them
        points = expander.points(x)
    assert points.shape == (5, model.config.language_dim)
    torch.testing.assert_close(points, full, atol=1e-5, rtol=1e-4)


def test_permuting_context_views_permutes_outputs(model: SemanticSplat) -> None:
    b, v, h, w = 1, 3, 16, 16
    views = random_views(b, v, h, w, seed=3)
    sam, lang = teacher_features(b, v, seed=4)
    perm = [2, 0, 1]
    permuted = views.index_views(perm)
    with torch.no_grad():
        out = model(views, sam, lang)
        out_p = model(permuted, sam[:, perm], lang[:, perm])
    assert torch.allclose(out_p.depth, out.depth[:, perm], atol=1e-4)
    for name in ("means", "quats", "scales", "opacities", "colors", "features"):
        a = getattr(out.gaussians, name).reshape(b, v, h * w, -1)[:, perm]
        p = getattr(out_p.gaussians, name).reshape(b, v, h * w, -1)
        assert torch.allclose(p, a, atol=1e-4), name


@pytest.mark.parametrize(("use_sam", "use_language"), [(True, True), (True, False), (False, False)])
def test_gradients_reach_every_submodule(use_sam: bool, use_language: bool) -> None:
    torch.manual_seed(1)
    model = SemanticSplat(tiny_config(use_sam, use_language))
    b, v, h, w = 1, 2, 16, 16
    views = random_views(b, v, h, w, seed=5)
    sam, lang = teacher_features(b, v)
    out = model(views, sam, lang)
    g = out.gaussians
    # Stand-in for rendering: per-pixel features of the context views as images.
    feats = g.features.reshape(b, v, h, w, -1).permute(0, 1, 4, 2, 3)
    z = torch.zeros(b, v, 1, h, w)
    seg, lang_full = model.decode_features(RenderOutput(torch.zeros(b, v, 3, h, w), feats, z, z))
    loss = sum(
        (t * torch.randn_like(t)).sum()
        for t in (g.means, g.quats, g.scales, g.opacities, g.colors, out.depth, seg, lang_full)
    )
    loss.backward()
    no_grad = [
        name
        for name, p in model.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert no_grad == []
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert names >= {
        "backbone", "transformer", "fusion", "depth_head", "gaussian_adapter",
        "semantic_heads", "seg_expander", "language_expander",
    }  # fmt: skip
    assert (model.fusion.sam_proj is not None) == use_sam
    assert (model.fusion.language_proj is not None) == use_language


def test_teacher_conditions_change_the_prediction(model: SemanticSplat) -> None:
    views = random_views(1, 2, 16, 16, seed=7)
    sam, lang = teacher_features(1, 2)
    with torch.no_grad():
        a = model(views, sam, lang).gaussians.colors
        b = model(views, None, None).gaussians.colors
    assert not torch.allclose(a, b)


def test_input_validation(model: SemanticSplat) -> None:
    views = random_views(1, 2, 16, 16)
    with pytest.raises(ValueError, match="at least 2 context views"):
        model(views.index_views([0]))
    with pytest.raises(ValueError, match="multiples of 8"):
        model(random_views(1, 2, 20, 16))
    with pytest.raises(ValueError, match="sam_features"):
        model(views, torch.zeros(1, 2, 7, 4, 4))
    with pytest.raises(ValueError, match=r"context.K"):
        model(dataclasses.replace(views, K=views.K[0]))
    with pytest.raises(TypeError, match="Views"):
        model(views.images)  # type: ignore[arg-type]


def test_config_presets_and_round_trip() -> None:
    small, paper = SemanticSplatConfig.small(), SemanticSplatConfig.paper()
    assert (small.sam_dim, small.language_dim) == (256, 384)
    assert (paper.sam_dim, paper.language_dim) == (256, 512)
    assert SemanticSplatConfig.from_dict(paper.to_dict()) == paper
    assert SemanticSplatConfig.preset("small") == small
    with pytest.raises(ValueError, match="unknown model config"):
        SemanticSplatConfig.preset("huge")
    bad = small.to_dict()
    bad["fusion"]["latnt_dim"] = 3
    with pytest.raises(ValueError, match="latnt_dim"):
        SemanticSplatConfig.from_dict(bad)
    assert count_parameters(SemanticSplat(small)) < count_parameters(SemanticSplat(paper))


def _first_conv_interior(model: SemanticSplat, parts: list[torch.Tensor]) -> torch.Tensor:
    return model.fusion.unet.inp[0](torch.cat(parts, dim=1))[..., 1:-1, 1:-1]


@pytest.mark.parametrize("conditions", ["sam", "language", "none"])
def test_with_conditions_drops_a_zero_condition_exactly(conditions: str) -> None:
    torch.manual_seed(3)
    both = SemanticSplat(tiny_config()).eval()
    ablated = with_conditions(both, conditions).eval()
    use_sam, use_language = CONDITION_CHOICES[conditions]
    assert (ablated.fusion.sam_proj is not None) == use_sam
    assert (ablated.fusion.language_proj is not None) == use_language
    # Everything outside the fusion is carried over as is.
    old, new = both.state_dict(), ablated.state_dict()
    for key in old:
        if not key.startswith("fusion."):
            assert torch.equal(old[key], new[key]), key
    # Stage 0 feeds the conditions as zeros: the fusion's first convolution sees the same input
    # (interior pixels; zero padding differs on the border).
    fusion = both.fusion
    n, h, w = 2, 12, 12
    feats = torch.randn(n, both.config.backbone.channels, h, w)
    cost = torch.randn(n, both.config.cost_volume.num_depths, h, w)
    zeros_sam = fusion.sam_proj(torch.zeros(n, fusion.sam_dim, h, w))
    zeros_lang = fusion.language_proj(torch.zeros(n, fusion.language_dim, h, w))
    expected = _first_conv_interior(both, [feats, cost, zeros_sam, zeros_lang])
    parts = [feats, cost]
    if use_sam:
        parts.append(ablated.fusion.sam_proj(torch.zeros(n, fusion.sam_dim, h, w)))
    if use_language:
        parts.append(ablated.fusion.language_proj(torch.zeros(n, fusion.language_dim, h, w)))
    with torch.no_grad():
        torch.testing.assert_close(
            _first_conv_interior(ablated, parts), expected, atol=1e-5, rtol=1e-5
        )


def test_with_conditions_adding_a_condition_starts_as_a_no_op() -> None:
    torch.manual_seed(4)
    none = SemanticSplat(tiny_config(use_sam=False, use_language=False)).eval()
    both = with_conditions(none, "both").eval()
    views = random_views(1, 2, 16, 16, seed=2)
    sam, lang = teacher_features(1, 2)
    with torch.no_grad():
        a = none(views).gaussians.means
        b = both(views, sam, lang).gaussians.means
    torch.testing.assert_close(a, b)
    assert with_conditions(both, "both") is both
    with pytest.raises(ValueError, match="conditions must be one of"):
        with_conditions(both, "clip")


def test_language_skip_starts_as_a_no_op_and_carries_teacher_detail(tmp_path) -> None:
    torch.manual_seed(5)
    plain = SemanticSplat(tiny_config()).eval()
    skip = with_language_skip(plain).eval()
    assert with_language_skip(skip) is skip and plain.language_skip is None
    views = random_views(1, 2, 16, 16, seed=3)
    sam, lang = teacher_features(1, 2)
    with torch.no_grad():
        a, b = plain(views, sam, lang), skip(views, sam, lang)
    torch.testing.assert_close(a.gaussians.features, b.gaussians.features)
    # Once trained (last layer non-zero), the teacher's features at full resolution move the
    # language attribute only: one teacher pixel changes the Gaussians around it.
    with torch.no_grad():
        skip.language_skip.net[2].weight.normal_()
        lang2 = lang.clone()
        lang2[0, 0, :, 8, 8] += 5.0  # teacher pixel (8, 8) of 16×16 = image pixel (8, 8)
        c, d = skip(views, sam, lang), skip(views, sam, lang2)
    torch.testing.assert_close(c.gaussians.means, d.gaussians.means)
    torch.testing.assert_close(c.seg_features, d.seg_features)
    moved = (c.language_features - d.language_features).abs().sum(-1).reshape(2, 16, 16)
    assert moved[1].sum() == 0  # the other view's Gaussians are untouched
    rows, cols = torch.nonzero(moved[0], as_tuple=True)
    assert (
        rows.numel() > 0 and abs(rows.float().mean() - 8) <= 1 and abs(cols.float().mean() - 8) <= 1
    )
    # The skip's weights are trained (gradients reach them) and saved with the model.
    out = skip.train()(views, sam, lang)
    out.language_features.square().sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in skip.language_skip.parameters()
    )
    from semanticsplat_ros.model import load_model, save_model

    save_model(tmp_path / "skip.pt", skip)
    loaded, _ = load_model(tmp_path / "skip.pt")
    assert loaded.config.semantic.language_skip
    torch.testing.assert_close(loaded.language_skip.net[2].weight, skip.language_skip.net[2].weight)


def test_language_skip_needs_the_language_condition() -> None:
    config = tiny_config(use_language=False)
    config.semantic.language_skip = True
    with pytest.raises(ValueError, match="language_skip needs"):
        SemanticSplat(config)
