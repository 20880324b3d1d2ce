"""The pipeline's teachers given by spec strings (``teachers.spec``): one-line errors, and the
released architectures (segment_anything vit_b, open_clip ViT-B-16, random weights) end to end."""

from __future__ import annotations

import pytest
import torch
from test_pipeline import stereo_frames

from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline

SMALL = {"input_width": 64, "input_height": 48, "device": "cpu"}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_defaults_are_the_tiny_pair_with_minilm():
    config = PipelineConfig()
    assert (config.sam_spec.kind, config.language_spec.kind) == ("tiny", "tiny_lseg")
    assert config.text_encoder == "auto" and config.text_encoder_name == "minilm"
    assert PipelineConfig(text_encoder="minilm").text_encoder_name == "minilm"


def test_vit_without_a_path_is_a_one_line_error():
    with pytest.raises(ValueError) as info:
        PipelineConfig(sam_checkpoint="vit_b")
    assert "sam_checkpoint" in _one_line(info) and "vit_b:PATH" in str(info.value)
    with pytest.raises(ValueError, match=r"open_clip:ARCH:PATH") as info:
        PipelineConfig(language_checkpoint="open_clip:ViT-B-16")
    _one_line(info)


def test_a_bare_path_asks_for_the_architecture():
    with pytest.raises(ValueError, match=r"is a bare path; write .*vit_b:PATH") as info:
        PipelineConfig(sam_checkpoint="/w/sam_vit_b_01ec64.pth")
    _one_line(info)
    with pytest.raises(ValueError, match=r"is a bare path; write the teacher: open_clip:ARCH:PATH"):
        PipelineConfig(language_checkpoint="/w/lseg.pt")


def test_text_encoder_must_match_the_language_teacher(tmp_path):
    clip = f"open_clip:ViT-B-16:{tmp_path / 'clip.bin'}"
    with pytest.raises(ValueError, match=r"'minilm' does not match .*open_clip:ViT-B-16") as info:
        PipelineConfig(language_checkpoint=clip, text_encoder="minilm")
    _one_line(info)
    assert PipelineConfig(language_checkpoint=clip, text_encoder=clip).text_encoder_name == (
        "open_clip:ViT-B-16"
    )
    other = f"open_clip:ViT-B-32:{tmp_path / 'clip.bin'}"
    with pytest.raises(ValueError, match=r"does not match the language teacher"):
        PipelineConfig(language_checkpoint=clip, text_encoder=other)
    with pytest.raises(ValueError, match=r"does not match the language teacher 'tiny_lseg'"):
        PipelineConfig(text_encoder=clip)
    with pytest.raises(ValueError, match=r"open_clip needs an architecture"):  # the old form
        PipelineConfig(text_encoder="open_clip:/w/clip.bin")
    with pytest.raises(ValueError, match=r"text_encoder must be auto, minilm"):
        PipelineConfig(text_encoder="bert")


def test_a_missing_teacher_file_is_a_one_line_error(tmp_path):
    missing = tmp_path / "none.pth"
    with pytest.raises(FileNotFoundError, match=r"none.pth does not exist") as info:
        SemanticSplatPipeline(
            PipelineConfig(sam_checkpoint=f"vit_b:{missing}", random_weights=True, **SMALL)
        )
    _one_line(info)


def test_a_model_of_other_teachers_is_refused_naming_the_teacher(tmp_path):
    weights = tmp_path / "sam_vit_b.pth"
    weights.write_bytes(b"not read: the model's teachers are checked first")
    config = PipelineConfig(sam_checkpoint=f"vit_b:{weights}", **SMALL)  # the bundled model
    with pytest.raises(ValueError, match=r"distilled from sam teacher tiny .*is vit_b") as info:
        SemanticSplatPipeline(config)
    assert "language" not in _one_line(info)


@pytest.mark.real_architectures
def test_vit_b_sam_and_vit_b_16_clip_pipeline_end_to_end(released):
    torch.manual_seed(0)
    pipeline = SemanticSplatPipeline(
        PipelineConfig(
            sam_checkpoint=f"vit_b:{released['sam']}",
            language_checkpoint=f"open_clip:ViT-B-16:{released['clip']}",
            random_weights=True,
            **SMALL,
        )
    )
    assert pipeline.text_encoder_name == "open_clip:ViT-B-16"
    assert pipeline.model.config.language_dim == 512
    assert pipeline.class_embeddings.shape == (len(pipeline.classes), 512)
    scene = pipeline.encode(stereo_frames(stamp=1.0))
    assert scene.depth.shape == (2, 48, 64)
    assert scene.language.shape == (2, 512, 48, 64)
    assert scene.seg_embeddings.shape == (2, 256, 48, 64)
    (query,) = pipeline.query_text(scene, ["a chair"])
    assert query.label == "a chair" and query.masks["left"].shape == (60, 80)
    segments = pipeline.segment_pixel(scene, "left", 40.0, 30.0)
    assert [s.label for s in segments] == ["small", "medium", "large"]
    assert all(s.masks["left"].shape == (60, 80) for s in segments)
