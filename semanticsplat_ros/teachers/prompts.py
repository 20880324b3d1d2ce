"""Prompt ensembling: a text is embedded as the normalized mean over a few templates.

``embed_prompts`` is the one place text queries become vectors: the pipeline's class list and
text queries (``SemanticSplatPipeline.encode_texts``) and the language protocols of
``semanticsplat eval`` (teachers and model) all call it with ``QUERY_TEMPLATES``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.teachers.base import TextEncoder, check_texts
from semanticsplat_ros.teachers.vocabulary import ClassVocabulary

DEFAULT_TEMPLATES: tuple[str, ...] = ("{}", "a {}", "a photo of a {}", "a {} in a room")
"""The ensemble's templates ("{}" is replaced by the text)."""
PLAIN_TEMPLATES: tuple[str, ...] = ("{}",)
"""No ensembling: the text's own embedding."""
QUERY_TEMPLATES: tuple[str, ...] = DEFAULT_TEMPLATES
"""The templates the pipeline and ``semanticsplat eval`` embed queries with."""


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """A non-empty tuple of strings that each contain exactly one "{}", or ValueError."""
    out = tuple(templates)
    if isinstance(templates, str) or not out:
        raise ValueError("templates must be a non-empty sequence of strings")
    for t in out:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(f"every template must contain exactly one '{{}}', got {t!r}")
    return out


@torch.no_grad()
def embed_prompts(
    encoder: TextEncoder, texts: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> Float[Tensor, "k d"]:
    """One unit row per text: the normalized mean of the embeddings of ``template.format(text)``
    over ``templates`` (``("{}",)``: the plain embedding). One encoder call for all."""
    texts = check_texts(texts)
    templates = check_templates(templates)
    if templates == PLAIN_TEMPLATES:
        return F.normalize(encoder.encode(texts).float(), dim=-1)
    filled = [tpl.format(t) for t in texts for tpl in templates]
    emb = encoder.encode(filled).float().reshape(len(texts), len(templates), -1)
    return F.normalize(F.normalize(emb, dim=-1).mean(1), dim=-1)


@torch.no_grad()
def unseen_words_in_text_space(
    encoder: TextEncoder, vocabulary: ClassVocabulary, templates: Sequence[str] = DEFAULT_TEMPLATES
) -> dict[str, float]:
    """How far the text encoder alone carries the unseen words: the fraction of them whose
    nearest class (cosine of the ensembled embeddings) is their own, against the class names
    (``names``) and against the normalized mean of each class's name and training texts
    (``vocabulary``). An image model whose features sit at those points cannot do better."""
    names = embed_prompts(encoder, CLASS_NAMES, templates)
    centroids = torch.stack(
        [
            F.normalize(
                embed_prompts(encoder, (c, *vocabulary.train_texts(c)), templates).mean(0), dim=0
            )
            for c in CLASS_NAMES
        ]
    )
    hits = {"names": 0, "vocabulary": 0}
    total = 0
    for i, c in enumerate(CLASS_NAMES):
        words = embed_prompts(encoder, vocabulary.unseen_texts(c), templates)
        total += words.shape[0]
        hits["names"] += int(((words @ names.T).argmax(1) == i).sum())
        hits["vocabulary"] += int(((words @ centroids.T).argmax(1) == i).sum())
    return {k: v / total for k, v in hits.items()}
