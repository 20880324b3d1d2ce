"""The class vocabulary: many texts per class to train the tiny LSeg with, and unseen words.

``assets/class_vocabulary.yaml`` maps every class of ``CLASS_NAMES`` to ``train:`` (texts the
open-vocabulary objective of ``train.py`` samples class prototypes from) and ``unseen:``
(ordinary words for the class that training never sees; the ``--unseen-words`` check of
``semanticsplat eval``). ``load_vocabulary`` enforces that the unseen words stay unseen: none is
a train text or occurs as whole words inside one, none is a synonym of ``class_synonyms.yaml``
or a class name, no train text contains a synonym, and no text belongs to two classes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.teachers.defaults import CLASS_SYNONYMS, CLASS_VOCABULARY

DEFAULT_VOCABULARY = CLASS_VOCABULARY
"""The shipped vocabulary file."""


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _contains(haystack: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as whole words (case-insensitive)."""
    return re.search(rf"(?<![\w-]){re.escape(_norm(needle))}(?![\w-])", _norm(haystack)) is not None


@dataclass(frozen=True)
class ClassVocabulary:
    """Train and unseen texts per class, both in ``CLASS_NAMES`` order."""

    train: tuple[tuple[str, ...], ...]
    """Per class, the texts the tiny LSeg may be trained against."""
    unseen: tuple[tuple[str, ...], ...]
    """Per class, words kept out of training (the unseen-word check)."""

    def __post_init__(self) -> None:
        for name, lists in (("train", self.train), ("unseen", self.unseen)):
            if len(lists) != len(CLASS_NAMES):
                raise ValueError(f"{name} has {len(lists)} classes, expected {len(CLASS_NAMES)}")
            for cls, texts in zip(CLASS_NAMES, lists, strict=True):
                if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                    raise ValueError(f"{name} texts of {cls!r} must be non-empty strings")

    def train_texts(self, cls: str) -> tuple[str, ...]:
        return self.train[CLASS_NAMES.index(cls)]

    def unseen_texts(self, cls: str) -> tuple[str, ...]:
        return self.unseen[CLASS_NAMES.index(cls)]

    def prompt_sets(
        self, which: Literal["train", "unseen"], picks: int, seed: int = 0
    ) -> list[dict[str, str]]:
        """``picks`` class -> query mappings, each with one random ``which`` text per class."""
        if which not in ("train", "unseen"):
            raise ValueError(f"which must be 'train' or 'unseen', got {which!r}")
        if picks < 1:
            raise ValueError(f"picks must be >= 1, got {picks}")
        rng = random.Random(f"{which}:{seed}")
        lists = self.train if which == "train" else self.unseen
        return [
            {cls: rng.choice(texts) for cls, texts in zip(CLASS_NAMES, lists, strict=True)}
            for _ in range(picks)
        ]


def _texts(entry: object, key: str, cls: str, source: str) -> tuple[str, ...]:
    texts = entry.get(key) if isinstance(entry, Mapping) else None
    if not isinstance(texts, list) or not texts:
        raise ValueError(f"{source}: {cls}.{key} must be a non-empty list of texts")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError(f"{source}: {cls}.{key} must hold non-empty strings")
    return tuple(" ".join(t.split()) for t in texts)


def _load_yaml(path: Path, what: str) -> object:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} file {path} is not valid YAML: {exc}") from exc


def check_vocabulary(
    data: object, synonyms: Mapping[str, str], source: str = "vocabulary"
) -> ClassVocabulary:
    """Validate a parsed vocabulary mapping (see the module docstring); one-line ValueErrors."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{source} must map class names to {{train: [...], unseen: [...]}}")
    unknown = sorted(str(k) for k in data if k not in CLASS_NAMES)
    missing = [c for c in CLASS_NAMES if c not in data]
    if unknown or missing:
        raise ValueError(f"{source}: unknown classes {unknown}, missing classes {missing}")
    train = tuple(_texts(data[c], "train", c, source) for c in CLASS_NAMES)
    unseen = tuple(_texts(data[c], "unseen", c, source) for c in CLASS_NAMES)
    owner: dict[str, str] = {}
    for cls, texts in zip(CLASS_NAMES * 2, train + unseen, strict=True):
        for t in texts:
            other = owner.setdefault(_norm(t), cls)
            if other != cls:
                raise ValueError(f"{source}: {t!r} is listed for both {other!r} and {cls!r}")
    all_train = [t for texts in train for t in texts]
    blocked = {**{_norm(s): f"the synonym of {c!r}" for c, s in synonyms.items()}}
    blocked.update({_norm(c): "a class name" for c in CLASS_NAMES})
    for cls, words in zip(CLASS_NAMES, unseen, strict=True):
        for word in words:
            if _norm(word) in blocked:
                raise ValueError(f"{source}: unseen {word!r} of {cls!r} is {blocked[_norm(word)]}")
            hit = next((t for t in all_train if _contains(t, word)), None)
            if hit is not None:
                raise ValueError(f"{source}: unseen {word!r} of {cls!r} occurs in train {hit!r}")
    for cls, synonym in synonyms.items():
        hit = next((t for t in all_train if _contains(t, synonym)), None)
        if hit is not None:
            raise ValueError(
                f"{source}: the synonym {synonym!r} of {cls!r} occurs in train {hit!r}"
            )
    return ClassVocabulary(train=train, unseen=unseen)


def load_synonyms(path: str | Path = CLASS_SYNONYMS) -> dict[str, str]:
    """The class -> synonym mapping of ``class_synonyms.yaml`` (ValueError if malformed)."""
    data = _load_yaml(Path(path), "class synonyms")
    if not isinstance(data, Mapping) or not all(
        k in CLASS_NAMES and isinstance(v, str) and v.strip() for k, v in data.items()
    ):
        raise ValueError(f"class synonyms file {path} must map class names to texts")
    return {str(k): str(v) for k, v in data.items()}


def load_vocabulary(
    path: str | Path = DEFAULT_VOCABULARY, synonyms: str | Path | None = CLASS_SYNONYMS
) -> ClassVocabulary:
    """Read and validate a vocabulary YAML (``synonyms``: the file its unseen words must avoid;
    None for none)."""
    path = Path(path)
    data = _load_yaml(path, "class vocabulary")
    syn = load_synonyms(synonyms) if synonyms is not None else {}
    return check_vocabulary(data, syn, str(path))
