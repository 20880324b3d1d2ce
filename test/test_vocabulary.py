"""The class vocabulary (loader, leakage), the open-vocabulary tiny LSeg objective, prompt
ensembling, and ``semanticsplat eval --teachers --unseen-words``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.teachers.defaults import CLASS_SYNONYMS, CLASS_VOCABULARY
from semanticsplat_ros.teachers.lseg import TinyLSegConfig
from semanticsplat_ros.teachers.prompts import PLAIN_TEMPLATES, embed_prompts
from semanticsplat_ros.teachers.train import (
    LSegTextTargets,
    TinyLSegTraining,
    ViewPool,
    train_tiny_lseg,
)
from semanticsplat_ros.teachers.vocabulary import (
    ClassVocabulary,
    check_vocabulary,
    load_synonyms,
    load_vocabulary,
)


class HashEncoder:
    """A deterministic fake text encoder: unit vectors seeded by each string."""

    dim = 384

    def encode(self, texts):
        rows = []
        for t in texts:
            g = torch.Generator().manual_seed(sum(ord(c) * (i + 1) for i, c in enumerate(t)))
            rows.append(torch.randn(self.dim, generator=g))
        return F.normalize(torch.stack(rows), dim=-1)


def _data() -> dict:
    return {
        c: {"train": [c, f"a {c} thing"], "unseen": [f"word{i}"]} for i, c in enumerate(CLASS_NAMES)
    }


def test_shipped_vocabulary_is_large_and_has_no_leakage() -> None:
    vocab = load_vocabulary()
    synonyms = load_synonyms()
    train = [t.lower() for texts in vocab.train for t in texts]
    for cls in CLASS_NAMES:
        assert len(vocab.train_texts(cls)) >= 25
        assert len(vocab.unseen_texts(cls)) >= 5
        for word in vocab.unseen_texts(cls):
            assert word.lower() != cls and word.lower() not in synonyms.values()
            pattern = rf"(?<![\w-]){re.escape(word.lower())}(?![\w-])"
            assert not any(re.search(pattern, t) for t in train), word
    for syn in synonyms.values():
        assert not any(re.search(rf"(?<![\w-]){re.escape(syn)}(?![\w-])", t) for t in train)
    assert len(set(train)) == len(train)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("sofa"), "missing classes \\['sofa'\\]"),
        (lambda d: d.update(lamp={"train": ["x"], "unseen": ["y"]}), "unknown classes"),
        (lambda d: d["bed"].update(unseen=[]), "bed.unseen must be a non-empty list"),
        (lambda d: d["bed"]["unseen"].append("a bed thing"), "listed for both|occurs in train"),
        (lambda d: d["bed"]["unseen"].append("thing"), "occurs in train 'a wall thing'"),
        (lambda d: d["chair"]["train"].append("a table"), None),
        (lambda d: d["chair"]["train"].append("table"), "listed for both 'chair' and 'table'"),
        (lambda d: d["sofa"]["unseen"].append("couch"), "is the synonym of 'sofa'"),
        (lambda d: d["sofa"]["train"].append("a big couch"), "synonym 'couch'"),
        (lambda d: d["sofa"]["unseen"].append("floor"), "a class name|listed for both"),
    ],
)
def test_validation_errors(edit, message) -> None:
    data = _data()
    edit(data)
    if message is None:
        check_vocabulary(data, {"sofa": "couch"})
        return
    with pytest.raises(ValueError, match=message) as info:
        check_vocabulary(data, {"sofa": "couch"})
    assert "\n" not in str(info.value)


def test_load_vocabulary_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_vocabulary(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("wall: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_vocabulary(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_data()))
    vocab = load_vocabulary(good, synonyms=None)
    assert isinstance(vocab, ClassVocabulary) and vocab.unseen_texts("wall") == ("word0",)
    sets = vocab.prompt_sets("unseen", 3)
    assert len(sets) == 3 and all(set(s) == set(CLASS_NAMES) for s in sets)
    assert vocab.prompt_sets("train", 2, seed=1) == vocab.prompt_sets("train", 2, seed=1)
    assert CLASS_VOCABULARY.is_file() and CLASS_SYNONYMS.is_file()


def test_training_config_validation() -> None:
    with pytest.raises(ValueError, match="vocabulary must be one of"):
        TinyLSegTraining(vocabulary="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="texts_per_step"):
        TinyLSegTraining(texts_per_step=0)


def _pool(n: int = 4, size: int = 32) -> ViewPool:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(len(CLASS_NAMES), (n, size // 8, size // 8), generator=g)
    labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)
    palette = torch.rand(len(CLASS_NAMES), 3, generator=g)
    images = palette[labels].permute(0, 3, 1, 2).contiguous()
    zeros = torch.zeros_like(labels)
    return ViewPool(images, labels, zeros, zeros, zeros)


def test_open_targets_and_training_lowers_the_loss() -> None:
    torch.set_num_threads(1)
    encoder = HashEncoder()
    targets = LSegTextTargets(encoder, TinyLSegTraining(vocabulary="open", texts_per_step=2))
    vocab = load_vocabulary()
    assert targets.num_texts == sum(
        len(set((c, *t))) for c, t in zip(CLASS_NAMES, vocab.train, strict=True)
    )
    protos = targets.prototypes(torch.Generator().manual_seed(0))
    assert protos.shape == (len(CLASS_NAMES), 384)
    assert torch.allclose(protos.norm(dim=1), torch.ones(len(CLASS_NAMES)), atol=1e-5)
    assert torch.allclose(targets.align.norm(dim=1), torch.ones(len(CLASS_NAMES)), atol=1e-5)
    config = TinyLSegConfig(image_size=32, channels=(8, 16, 16, 16), decoder_channels=16)
    losses = []
    for steps in (1, 30):
        training = TinyLSegTraining(steps=steps, batch_size=4, lr=3e-3, vocabulary="open")
        _, stats = train_tiny_lseg(_pool(), encoder, config, training)
        losses.append(stats["loss"])
    assert losses[1] < losses[0]
    names = TinyLSegTraining(steps=2, batch_size=2, vocabulary="names")
    a, _ = train_tiny_lseg(_pool(), encoder, config, names)
    b, _ = train_tiny_lseg(_pool(), encoder, config, names)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_embed_prompts() -> None:
    encoder = HashEncoder()
    texts = ["chair", "a red sofa"]
    ens = embed_prompts(encoder, texts)
    assert ens.shape == (2, 384)
    assert torch.allclose(ens.norm(dim=1), torch.ones(2), atol=1e-6)
    assert torch.allclose(embed_prompts(encoder, texts, ("{}",)), encoder.encode(texts), atol=1e-6)
    assert PLAIN_TEMPLATES == ("{}",)
    two = embed_prompts(encoder, ["chair"], ("{}", "a {}"))
    mean = F.normalize(encoder.encode(["chair", "a chair"]).mean(0, keepdim=True), dim=-1)
    assert torch.allclose(two, mean, atol=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        embed_prompts(encoder, texts, ("no slot",))


def test_eval_unseen_words_cli(tmp_path: Path, capsys) -> None:
    from semanticsplat_ros.cli import main

    out = tmp_path / "u.json"
    argv = ["eval", "--teachers", "--unseen-words", "--seeds", "100000:100002", "--height", "32"]
    argv += ["--width", "32", "--unseen-picks", "2", "--no-progress", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ratio unseen / names" in printed and "teacher" in printed
    import json

    u = json.loads(out.read_text())["unseen_words"]
    assert set(u["picks"]) == {"names", "train", "unseen"} and len(u["picks"]["unseen"]) == 2
    assert u["ratio"] == pytest.approx(u["unseen"] / u["names"])
    assert 0 <= u["text_space"]["names"] <= 1 and 0 <= u["text_space"]["vocabulary"] <= 1
    assert "Text encoder alone" in printed


class _ClassAxisEncoder:
    """Each text -> the unit axis of the class it belongs to (``axes``); unknown texts -> the
    last axis."""

    def __init__(self, axes: dict[str, int]):
        self.axes, self.dim = axes, len(CLASS_NAMES) + 1

    def encode(self, texts):
        return F.one_hot(
            torch.tensor([self.axes.get(t, len(CLASS_NAMES)) for t in texts]), self.dim
        ).float()


def test_unseen_words_in_text_space_counts_nearest_classes() -> None:
    from semanticsplat_ros.teachers.prompts import unseen_words_in_text_space
    from semanticsplat_ros.teachers.vocabulary import ClassVocabulary

    train = tuple((f"{c} thing",) for c in CLASS_NAMES)
    unseen = tuple((f"{c} word a", f"{c} word b") for c in CLASS_NAMES)
    axes = {c: i for i, c in enumerate(CLASS_NAMES)}
    axes.update({f"{c} thing": i for i, c in enumerate(CLASS_NAMES)})
    axes.update({f"{c} word a": i for i, c in enumerate(CLASS_NAMES)})
    axes.update({f"{c} word b": (i + 1) % len(CLASS_NAMES) for i, c in enumerate(CLASS_NAMES)})
    vocab = ClassVocabulary(train, unseen)
    out = unseen_words_in_text_space(_ClassAxisEncoder(axes), vocab, PLAIN_TEMPLATES)
    assert out == {"names": 0.5, "vocabulary": 0.5}  # every "word b" sits on the next class
