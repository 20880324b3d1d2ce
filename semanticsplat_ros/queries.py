"""Open-vocabulary labelling and text queries over a rendered language field, and the 3D summaries
(centroid, oriented box) returned with every segment. Pure tensor code; no ROS, no model.

Scores: a pixel's language feature ``p`` and unit text embeddings ``t_k`` give cosines
``cos_k = <p, t_k> / |p|``. Class labels are ``argmax_k cos_k`` with a softmax probability
(temperature ``TEMPERATURE``) as the score. A free-text query ``q`` is compared against the class
list as negatives, leaving out classes that mean nearly the same as the query (their text
embeddings' cosine with ``q`` ≥ ``synonym_threshold``), so "couch" does not compete with "sofa".
Classes whose text is closer still (cosine ≥ ``alias_threshold``) are the query's aliases and
join it as positives (a prompt ensemble): the field was distilled against the class texts, so
"seat" finds what the field calls "chair" rather than only what lies nearer "seat" than every
other class. The score is the softmax probability of the best positive against the strongest
remaining negative, and the mask keeps pixels whose score ≥ ``threshold``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from semanticsplat_ros.geometry import rotmat_to_quat

MAX_QUERY_CHARS = 256
"""Longest accepted text query (QueryText.srv)."""

TEMPERATURE = 0.07
"""Softmax temperature for cosine scores (CLIP's)."""


def check_text_embeddings(emb: Tensor, dim: int, name: str = "text_embeddings") -> None:
    if emb.ndim != 2 or emb.shape[1] != dim:
        raise ValueError(f"{name} must have shape (k, {dim}), got {tuple(emb.shape)}")
    if emb.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row")
    if not torch.isfinite(emb).all():
        raise ValueError(f"{name} contains NaN or Inf")


@dataclass(frozen=True)
class LanguageField:
    """A wide per-pixel language field kept narrow: the activations ``hidden`` (v, m, h, w)
    before a linear layer (``weight`` (c, m), ``bias`` (c,)), the feature at a pixel being
    ``weight @ hidden + bias``. Cosines with texts are taken in the m-dimensional space (the
    norm through the Gram matrix), so the c-wide field is never built unless ``dense`` asks."""

    hidden: Float[Tensor, "v m h w"]
    weight: Float[Tensor, "c m"]
    bias: Float[Tensor, " c"]

    @property
    def dim(self) -> int:
        return self.weight.shape[0]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The dense field's shape (v, c, h, w)."""
        v, _, h, w = self.hidden.shape
        return (v, self.dim, h, w)

    def dense(self) -> Float[Tensor, "v c h w"]:
        v, m, h, w = self.hidden.shape
        flat = torch.matmul(self.weight, self.hidden.reshape(v, m, h * w))
        return (flat + self.bias[:, None]).reshape(v, self.dim, h, w)

    @cached_property
    def _affine(self) -> tuple[Tensor, Tensor, Tensor]:
        """(hidden with a row of ones (v, m + 1, hw), [weight | bias] (c, m + 1), each pixel's
        feature norm (v, 1, hw)); computed once, shared by every later cosine."""
        v, m, h, w = self.hidden.shape
        ones = self.hidden.new_ones(v, 1, h * w)
        x = torch.cat([self.hidden.reshape(v, m, h * w), ones], dim=1)
        affine = torch.cat([self.weight, self.bias[:, None]], dim=1)
        squared = (torch.matmul(affine.T @ affine, x) * x).sum(dim=1, keepdim=True)
        return x, affine, squared.clamp_min(1e-24).sqrt()

    def cosine(self, text_embeddings: Float[Tensor, "k c"]) -> Float[Tensor, "v k h w"]:
        """``cosine_scores(self.dense(), text_embeddings)``, without the dense field."""
        check_text_embeddings(text_embeddings, self.dim)
        v, _, h, w = self.hidden.shape
        x, affine, norms = self._affine
        texts = F.normalize(text_embeddings.to(affine), dim=1)
        return (torch.matmul(texts @ affine, x) / norms).reshape(v, -1, h, w)


def cosine_scores(
    language: Float[Tensor, "v c h w"] | LanguageField, text_embeddings: Float[Tensor, "k c"]
) -> Float[Tensor, "v k h w"]:
    """Cosine between every pixel's language feature and every text embedding."""
    if isinstance(language, LanguageField):
        return language.cosine(text_embeddings)
    check_text_embeddings(text_embeddings, language.shape[1])
    v, c, h, w = language.shape
    feats = language.reshape(v, c, h * w)
    texts = F.normalize(text_embeddings.to(language), dim=1)
    # <p, t> / |p| as one matmul and one norm: no normalised copy of the (wide) field.
    norms = torch.linalg.vector_norm(feats, dim=1, keepdim=True).clamp_min(1e-12)
    return (torch.matmul(texts, feats) / norms).reshape(v, -1, h, w)


def classify(
    language: Float[Tensor, "v c h w"] | LanguageField, class_embeddings: Float[Tensor, "k c"]
) -> tuple[Int[Tensor, "v h w"], Float[Tensor, "v h w"]]:
    """Per-pixel class id (argmax cosine) and its softmax probability."""
    return classify_cosine(cosine_scores(language, class_embeddings))


def classify_cosine(
    cosine: Float[Tensor, "v k h w"],
) -> tuple[Int[Tensor, "v h w"], Float[Tensor, "v h w"]]:
    """``classify`` from the class cosines (``cosine_scores``) already computed."""
    score, label = (cosine / TEMPERATURE).softmax(dim=1).max(dim=1)
    return label, score


def query_scores(
    language: Float[Tensor, "v c h w"] | LanguageField,
    query_embedding: Float[Tensor, " c"],
    class_embeddings: Float[Tensor, "k c"],
    synonym_threshold: float = 0.6,
    alias_threshold: float = 0.7,
    class_cosine: Float[Tensor, "v k h w"] | None = None,
) -> Float[Tensor, "v h w"]:
    """Relevance of a free-text query in [0, 1] per pixel (see the module docstring).

    ``class_cosine``: the field's cosines with ``class_embeddings`` already computed (an
    encoded scene keeps them), so that only the query's own cosine is computed here."""
    if not synonym_threshold <= alias_threshold:
        raise ValueError(
            f"alias_threshold ({alias_threshold}) must be >= synonym_threshold"
            f" ({synonym_threshold})"
        )
    q = F.normalize(query_embedding.reshape(1, -1).to(class_embeddings), dim=1)
    classes = F.normalize(class_embeddings, dim=1)
    similarity = (classes @ q.T).squeeze(1)
    aliases, negatives = similarity >= alias_threshold, similarity < synonym_threshold
    if class_cosine is None:
        class_cosine = cosine_scores(language, classes[aliases | negatives])
        aliases, negatives = aliases[aliases | negatives], negatives[aliases | negatives]
    elif class_cosine.shape[1] != classes.shape[0]:
        raise ValueError(
            f"class_cosine has {class_cosine.shape[1]} classes, class_embeddings {classes.shape[0]}"
        )
    positive = torch.cat([cosine_scores(language, q), class_cosine[:, aliases]], dim=1)
    best_positive = positive.max(dim=1).values
    if not negatives.any():
        return ((best_positive + 1) / 2).clamp(0, 1)
    strongest_negative = class_cosine[:, negatives].max(dim=1).values
    return torch.sigmoid((best_positive - strongest_negative) / TEMPERATURE)


def query_masks(
    language: Float[Tensor, "v c h w"] | LanguageField,
    query_embedding: Float[Tensor, " c"],
    class_embeddings: Float[Tensor, "k c"],
    threshold: float = 0.5,
    synonym_threshold: float = 0.6,
    alias_threshold: float = 0.7,
    class_cosine: Float[Tensor, "v k h w"] | None = None,
) -> tuple[Bool[Tensor, "v h w"], Float[Tensor, "v h w"]]:
    """Mask (score ≥ threshold) and scores of a text query (``class_cosine``: as in
    ``query_scores``)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    scores = query_scores(
        language,
        query_embedding,
        class_embeddings,
        synonym_threshold,
        alias_threshold,
        class_cosine,
    )
    return scores >= threshold, scores


@dataclass
class OrientedBox:
    """A box in the points' frame: centre (3,), rotation wxyz (4,) of its axes, full size (3,)."""

    center: Tensor
    quat_wxyz: Tensor
    size: Tensor


def oriented_box(points: Float[Tensor, "n 3"]) -> OrientedBox:
    """PCA-aligned box around points (right-handed axes, sorted by decreasing extent).

    An empty set gives NaN centre and zero size; one point gives a zero-size box at it.
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (n, 3), got {tuple(points.shape)}")
    pts = points.double()
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    if pts.shape[0] == 0:
        return OrientedBox(torch.full((3,), float("nan")), identity, torch.zeros(3))
    mean = pts.mean(0)
    centred = pts - mean
    if pts.shape[0] < 3:
        axes = torch.eye(3, dtype=torch.float64)
    else:
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        axes = vh.T.clone()  # columns = principal directions
        if torch.linalg.det(axes) < 0:
            axes[:, 2] = -axes[:, 2]
    local = centred @ axes
    lo, hi = local.min(0).values, local.max(0).values
    center = mean + axes @ ((lo + hi) / 2)
    return OrientedBox(center.float(), rotmat_to_quat(axes).float(), (hi - lo).float())


def check_query_text(text: object) -> str:
    """A stripped, printable query of 1..MAX_QUERY_CHARS characters, or ValueError/TypeError."""
    if not isinstance(text, str):
        raise TypeError(f"query must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("query text is empty")
    if len(stripped) > MAX_QUERY_CHARS:
        raise ValueError(
            f"query text has {len(stripped)} characters; the limit is {MAX_QUERY_CHARS}"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in stripped):
        raise ValueError("query text contains control characters")
    return stripped
