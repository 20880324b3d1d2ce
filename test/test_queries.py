"""Labelling, text-query scoring with synonyms, and oriented boxes on known inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semanticsplat_ros.geometry import quat_to_rotmat
from semanticsplat_ros.model.semantic_heads import FeatureExpander
from semanticsplat_ros.queries import (
    LanguageField,
    classify,
    cosine_scores,
    oriented_box,
    query_masks,
    query_scores,
)


def field_from(embeddings: torch.Tensor, label_map: torch.Tensor) -> torch.Tensor:
    """A (1, c, h, w) language field whose pixels equal the embedding of their label."""
    return embeddings[label_map].permute(2, 0, 1).unsqueeze(0)


def test_classify_recovers_labels():
    emb = F.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.randint(0, 4, (6, 7), generator=torch.Generator().manual_seed(1))
    pred, score = classify(field_from(emb, labels) * 3.0, emb)
    assert torch.equal(pred[0], labels)
    assert (score > 0.5).all() and (score <= 1).all()
    with pytest.raises(ValueError):
        classify(field_from(emb, labels), emb[:, :8])


def test_query_with_a_synonym_of_a_class_is_not_suppressed_by_it():
    g = torch.Generator().manual_seed(2)
    classes = F.normalize(torch.randn(3, 32, generator=g), dim=1)  # e.g. wall, sofa, table
    synonym = F.normalize(classes[1] + 0.3 * torch.randn(32, generator=g), dim=0)  # "couch"
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[2:6, 2:6] = 1
    lang = field_from(classes, labels)
    mask, scores = query_masks(lang, synonym, classes, threshold=0.5)
    assert torch.equal(mask[0], labels == 1)
    assert scores[0][labels == 1].min() > 0.9
    # Without synonym handling the sofa class would win every sofa pixel.
    strict = query_scores(lang, synonym, classes, synonym_threshold=1.01, alias_threshold=1.01)
    assert strict[0][labels == 1].max() < 0.5
    with pytest.raises(ValueError):
        query_masks(lang, synonym, classes, threshold=1.5)


def test_oriented_box_of_a_rotated_cuboid():
    g = torch.Generator().manual_seed(3)
    local = (torch.rand(4000, 3, generator=g) - 0.5) * torch.tensor([2.0, 1.0, 0.2])
    angle = math.radians(30)
    q = torch.tensor([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])
    R = quat_to_rotmat(q)
    pts = local @ R.T + torch.tensor([1.0, 2.0, 3.0])
    box = oriented_box(pts)
    assert torch.allclose(box.center, torch.tensor([1.0, 2.0, 3.0]), atol=0.02)
    assert torch.allclose(box.size, torch.tensor([2.0, 1.0, 0.2]), atol=0.03)
    axes = quat_to_rotmat(box.quat_wxyz.double())
    # First box axis is the cuboid's long axis (up to sign).
    assert abs(float(axes[:, 0] @ R[:, 0].double())) > 0.999
    assert torch.linalg.det(axes) == pytest.approx(1.0, abs=1e-6)


def test_oriented_box_degenerate_inputs():
    empty = oriented_box(torch.zeros(0, 3))
    assert torch.isnan(empty.center).all() and (empty.size == 0).all()
    one = oriented_box(torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.allclose(one.center, torch.tensor([1.0, 2.0, 3.0])) and (one.size == 0).all()
    with pytest.raises(ValueError):
        oriented_box(torch.zeros(5, 2))


def test_an_alias_of_a_class_finds_what_the_field_calls_that_class():
    """A query close to a class text ("seat" ~ "chair") gets the pixels the field labels as that
    class, even those that lie nearer another class than the query text itself."""
    g = torch.Generator().manual_seed(4)
    wall, chair, other = F.normalize(torch.randn(3, 64, generator=g), dim=1)
    sofa = F.normalize(chair + 1.3 * other, dim=0)
    classes = torch.stack([wall, chair, sofa])
    seat = F.normalize(chair + 0.6 * F.normalize(torch.randn(64, generator=g), dim=0), dim=0)
    sim = (classes @ seat).tolist()
    assert sim[1] >= 0.7 and sim[0] < 0.6 and sim[2] < 0.6
    # Chair pixels that lean towards sofa (still labelled chair), then sofa and wall pixels.
    leaning = F.normalize(chair + 0.5 * sofa, dim=0)
    field = torch.stack([wall, leaning, sofa])
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[1:5, 1:5] = 1
    labels[5:8, 5:8] = 2
    lang = field_from(field, labels)
    predicted, _ = classify(lang, classes)
    assert torch.equal(predicted[0], labels)
    mask, _ = query_masks(lang, seat, classes, threshold=0.5)
    assert torch.equal(mask[0], labels == 1)
    # Without aliases the query text alone loses those pixels to "sofa".
    plain = query_scores(lang, seat, classes, alias_threshold=1.01)
    assert plain[0][labels == 1].max() < 0.5
    with pytest.raises(ValueError, match="alias_threshold"):
        query_scores(lang, seat, classes, synonym_threshold=0.8, alias_threshold=0.7)


def test_a_narrow_language_field_scores_like_its_dense_expansion():
    """Cosines, labels and query scores from the expander's hidden activations equal those of
    the expanded field, which is never built."""
    torch.manual_seed(0)
    expander = FeatureExpander(8, 48, 16)
    low = torch.randn(1, 2, 8, 6, 10)
    with torch.no_grad():
        dense = expander(low)[0]
        field = LanguageField(expander.hidden(low)[0], expander.output_weight, expander.output_bias)
        texts = torch.randn(5, 48)
        assert field.shape == tuple(dense.shape)
        assert torch.allclose(field.dense(), dense, atol=1e-5)
        assert torch.allclose(cosine_scores(field, texts), cosine_scores(dense, texts), atol=1e-5)
        assert torch.equal(classify(field, texts)[0], classify(dense, texts)[0])
        query = texts[0] + 0.1 * torch.randn(48)
        a, b = query_scores(field, query, texts[1:]), query_scores(dense, query, texts[1:])
        assert torch.allclose(a, b, atol=1e-4)


def test_query_scores_reuse_the_class_cosines_of_a_scene():
    torch.manual_seed(1)
    language = torch.randn(2, 16, 5, 7)
    classes = torch.randn(6, 16)
    classes[1] = classes[0] + 0.05 * torch.randn(16)  # an alias of the query below
    query = classes[0] + 0.05 * torch.randn(16)
    fresh = query_scores(language, query, classes)
    cached = query_scores(language, query, classes, class_cosine=cosine_scores(language, classes))
    assert torch.allclose(fresh, cached, atol=1e-6)
    with pytest.raises(ValueError, match="class_cosine has 5 classes"):
        query_scores(language, query, classes, class_cosine=cosine_scores(language, classes[:5]))
