"""Teacher evaluation protocols (with oracle teachers) and class prompt files.

The teacher feature cache is tested in test_train_teacher_cache.py.
"""

from __future__ import annotations

import pytest
import torch

import semanticsplat_ros.eval.teachers as evaluate
from semanticsplat_ros.data.classes import CLASS_NAMES
from semanticsplat_ros.eval.teachers import (
    class_queries,
    evaluate_teachers,
    load_class_prompts,
    sam_grid_miou,
)
from semanticsplat_ros.teachers.defaults import CLASS_SYNONYMS
from semanticsplat_ros.teachers.lseg import LanguageTeacher, TinyLSeg
from semanticsplat_ros.teachers.sam import MaskPrediction, SamTeacher, build_tiny_sam


class OracleSam:
    """Returns the ground-truth instance mask in output 1 and empty masks elsewhere."""

    def __init__(self, instances: torch.Tensor) -> None:
        self.instances = instances

    def embed(self, images):
        # Each image's embedding holds its index, so the oracle knows which image it decodes.
        n = images.shape[0]
        return torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 256, 8, 8)

    def predict_masks(self, embeddings, points, image_size, points_chunk=None):
        n, p, _ = points.shape
        logits = -torch.ones(n, p, 3, *image_size)
        for i in range(n):
            inst = self.instances[int(embeddings[i, 0, 0, 0])]
            for j in range(p):
                x, y = points[i, j].round().long().tolist()
                logits[i, j, 1] = (inst == inst[y, x]).float() * 2 - 1
        return MaskPrediction(logits, torch.zeros(n, p, 3))

    def predict_masks_at(self, embeddings, points, image_size, points_chunk=None):
        return self.predict_masks(embeddings, points - 0.5, image_size, points_chunk)


def test_sam_protocol_gives_one_for_an_oracle_and_skips_unknown(monkeypatch):
    monkeypatch.setattr(evaluate, "GRID_POINTS_PER_SIDE", 4)
    instances = torch.zeros(2, 16, 16, dtype=torch.long)
    instances[:, :, 8:] = 3
    instances[1, :4] = -1  # one grid row of unknown pixels
    total, count = sam_grid_miou(OracleSam(instances), torch.rand(2, 3, 16, 16), instances)
    assert count == 16 + 12
    assert total / count == pytest.approx(1.0)
    wrong = torch.full_like(instances, 7)  # the oracle now answers with the whole image
    total, _ = sam_grid_miou(OracleSam(wrong), torch.rand(2, 3, 16, 16), instances)
    assert total / count < 0.9


def test_class_prompt_files(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text("sofa: couch\nbed: mattress\n")
    prompts = load_class_prompts(path)
    queries = class_queries(prompts)
    assert queries[CLASS_NAMES.index("sofa")] == "couch"
    assert queries[CLASS_NAMES.index("wall")] == "wall"
    path.write_text("sofaa: couch\n")
    with pytest.raises(ValueError, match="unknown class names"):
        load_class_prompts(path)
    path.write_text("sofa: 3\n")
    with pytest.raises(ValueError, match="non-empty string"):
        load_class_prompts(path)
    with pytest.raises(FileNotFoundError):
        load_class_prompts(tmp_path / "missing.yaml")


def test_shipped_synonyms_cover_every_class_and_differ_from_the_names():
    synonyms = load_class_prompts(CLASS_SYNONYMS)
    assert set(synonyms) == set(CLASS_NAMES)
    for name, text in synonyms.items():
        assert name not in text.lower().split()


def test_evaluate_teachers_structure_with_small_random_teachers(monkeypatch):
    monkeypatch.setattr(evaluate, "GRID_POINTS_PER_SIDE", 4)
    torch.manual_seed(0)
    from test_teachers_lseg import HashTextEncoder

    sam = SamTeacher(build_tiny_sam().eval())
    lang = LanguageTeacher(TinyLSeg().eval(), HashTextEncoder(), 64)
    out = evaluate_teachers(
        range(200_000, 200_001), 32, 32, {"sofa": "couch"}, sam, lang, progress=False
    )
    sam_out, lseg_out = out["teachers"]["sam"], out["teachers"]["lseg"]
    assert 0.0 <= sam_out["miou"] <= 1.0 and sam_out["points"] > 0
    assert 0.0 <= lseg_out["miou"] <= 1.0 and 0.0 <= lseg_out["acc"] <= 1.0
    assert lseg_out["queries"]["sofa"] == "couch"
    hcam = out["teachers"]["lseg_hcam"]
    assert 0.0 <= hcam["miou"] <= 1.0 and 0.0 <= hcam["acc"] <= 1.0
