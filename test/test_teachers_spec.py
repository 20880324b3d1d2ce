"""Teacher spec strings: parsing, loading errors, checkpoint teacher records (all cheap: the
released architectures appear only as meta-device skeletons or tiny configs here; they are built
for real in test_check_teachers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch

from semanticsplat_ros.teachers.clip import DenseClipTeacher, clip_architectures_like
from semanticsplat_ros.teachers.sam import (
    SAM_ARCHITECTURES,
    SamArchitecture,
    SamTeacher,
    build_sam,
    sam_architecture_of,
)
from semanticsplat_ros.teachers.spec import (
    LanguageSpec,
    SamSpec,
    check_checkpoint_teachers,
    check_model_teachers,
    load_language_teacher,
    load_sam_teacher,
    recorded_teachers,
    spec_to_checkpoint_dict,
    specs_from_checkpoint_dict,
)

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
SMALL_VIT = SamArchitecture(32, 2, 2, (1,), image_size=64, patch_size=16, window_size=2)


def _meta_state(build) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build().state_dict()


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "architecture", "path", "kind"),
    [
        ("tiny", "tiny", None, "tiny"),
        ("tiny:runs/t/tiny_sam.pt", "tiny", Path("runs/t/tiny_sam.pt"), "tiny"),
        ("vit_b:/w/sam_vit_b_01ec64.pth", "vit_b", Path("/w/sam_vit_b_01ec64.pth"), "vit_b"),
        (" vit_h:/w/a:b.pth ", "vit_h", Path("/w/a:b.pth"), "vit_h"),  # ':' inside the path
    ],
)
def test_sam_spec_parses_and_round_trips(text, architecture, path, kind):
    spec = SamSpec.parse(text)
    assert (spec.architecture, spec.path, spec.kind, spec.feature_dim) == (
        architecture,
        path,
        kind,
        256,
    )
    assert SamSpec.parse(spec.to_string()) == spec


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("vit_b", ValueError, "needs a weights file"),
        ("vit_x:/w/a.pth", ValueError, "unknown architecture 'vit_x'"),
        ("tiny:", ValueError, "empty path"),
        ("vit_l:  ", ValueError, "empty path"),
        ("", ValueError, "empty"),
        ("vit_b:/a\nvit_l:/b", ValueError, "several lines"),
        (3, TypeError, "must be a string"),
    ],
)
def test_sam_spec_rejects_bad_strings(text, error, message):
    with pytest.raises(error, match=message):
        SamSpec.parse(text)


def test_language_spec_forms_kinds_and_dims(tmp_path):
    tiny = LanguageSpec.parse("tiny_lseg")
    assert (tiny.family, tiny.path, tiny.kind, tiny.feature_dim) == (
        "tiny_lseg",
        None,
        "tiny_lseg",
        384,
    )
    assert LanguageSpec.parse("tiny_lseg:/r/l.pt").path == Path("/r/l.pt")
    b16 = LanguageSpec.parse("open_clip:ViT-B-16:/w/clip:v1.bin")
    assert (b16.architecture, b16.path, b16.kind) == (
        "ViT-B-16",
        Path("/w/clip:v1.bin"),
        "open_clip:ViT-B-16",
    )
    assert b16.feature_dim == 512
    assert LanguageSpec.parse("open_clip:ViT-L-14:/w/l.bin").feature_dim == 768
    config = tmp_path / "my-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    custom = LanguageSpec.parse(f"open_clip:{config}:/w/my.bin")
    assert (custom.kind, custom.feature_dim) == ("open_clip:my-clip", 32)
    for spec in (tiny, b16, custom):
        assert LanguageSpec.parse(spec.to_string()) == spec


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("open_clip:ViT-B-16", ValueError, "needs an architecture and a weights file"),
        ("open_clip::/w/a.bin", ValueError, "needs an architecture and a weights file"),
        ("open_clip:ViT-B-16:", ValueError, "needs an architecture and a weights file"),
        ("open_clip:ViT-Q-99:/w/a.bin", ValueError, "unknown open_clip architecture 'ViT-Q-99'"),
        ("open_clip:RN50:/w/a.bin", ValueError, "need a ViT image tower"),
        ("open_clip:/nowhere/cfg.json:/w/a.bin", FileNotFoundError, "does not exist"),
        ("lseg:/w/a.pt", ValueError, "unknown teacher 'lseg'"),
        ("tiny_lseg:", ValueError, "empty path"),
        (None, TypeError, "must be a string"),
    ],
)
def test_language_spec_rejects_bad_strings(text, error, message):
    with pytest.raises(error, match=message):
        LanguageSpec.parse(text)


def test_open_clip_config_that_is_not_an_object_is_rejected(tmp_path):
    config = tmp_path / "list.json"
    config.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        LanguageSpec.parse(f"open_clip:{config}:/w/a.bin")
    config.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        LanguageSpec.parse(f"open_clip:{config}:/w/a.bin")


# ----------------------------------------------------------------------------- architectures


@pytest.mark.parametrize("name", sorted(SAM_ARCHITECTURES))
def test_sam_architecture_is_read_from_the_weights(name):
    assert sam_architecture_of(_meta_state(lambda: build_sam(name))) == name


def test_sam_architecture_of_other_weights_is_none():
    assert sam_architecture_of(build_sam(SMALL_VIT).state_dict()) is None
    assert sam_architecture_of({"visual.conv1.weight": torch.zeros(8, 3, 4, 4)}) is None


def test_clip_architectures_like_names_the_sizes_of_the_weights():
    def meta_clip(name: str) -> dict[str, torch.Tensor]:
        return _meta_state(
            lambda: open_clip.create_model(
                name, pretrained=None, pretrained_text=False, device="meta"
            )
        )

    b16 = clip_architectures_like(meta_clip("ViT-B-16"))
    assert "ViT-B-16" in b16 and "ViT-B-32" not in b16
    b32 = clip_architectures_like(meta_clip("ViT-B-32"))
    assert "ViT-B-32" in b32 and "ViT-B-16" not in b32 and "coca_ViT-B-32" not in b32
    assert clip_architectures_like(build_sam(SMALL_VIT).state_dict()) == []


# ----------------------------------------------------------------------------- loading


def test_tiny_defaults_load(tmp_path):
    sam = load_sam_teacher("tiny")
    assert isinstance(sam, SamTeacher) and not sam.training
    assert sam.embed(torch.rand(1, 3, 48, 64)).shape[1] == 256
    language = load_language_teacher("tiny_lseg")
    assert language.teacher.feature_dim == language.text_encoder.dim == 384
    feats = language.teacher.embed(torch.rand(1, 3, 64, 64))
    assert feats.shape[1] == 384
    torch.testing.assert_close(feats.norm(dim=1), torch.ones_like(feats[:, 0]))


def test_open_clip_config_spec_loads_through_the_text_tower(tmp_path):
    config = tmp_path / "spec-tiny-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    weights = tmp_path / "clip.bin"
    torch.save(open_clip.create_model("spec-tiny-clip", pretrained=None).state_dict(), weights)
    loaded = load_language_teacher(f"open_clip:{config}:{weights}")
    assert isinstance(loaded.teacher, DenseClipTeacher)
    feats = loaded.teacher.embed(torch.rand(1, 3, 40, 40))
    assert feats.shape == (1, 32, 4, 4)
    text = loaded.text_encoder.encode(["a chair"])
    assert text.shape == (1, 32)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(1))


def test_loading_errors_are_one_line_and_name_the_file(tmp_path):
    missing = tmp_path / "missing.pth"
    with pytest.raises(FileNotFoundError, match=f"{missing} does not exist"):
        load_sam_teacher(f"vit_b:{missing}")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        load_sam_teacher(f"vit_b:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_language_teacher(f"open_clip:ViT-B-16:{tmp_path / 'none.bin'}")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02 this is no checkpoint" * 50)
    for load, spec in (
        (load_sam_teacher, f"vit_b:{garbage}"),
        (load_language_teacher, f"open_clip:ViT-B-16:{garbage}"),
        (load_sam_teacher, f"tiny:{garbage}"),
    ):
        with pytest.raises(ValueError) as info:
            load(spec)
        assert str(garbage) in str(info.value)
        assert "\n" not in str(info.value)
    small = tmp_path / "small_vit.pth"
    torch.save(build_sam(SMALL_VIT).state_dict(), small)
    with pytest.raises(ValueError, match=f"SAM checkpoint {small} does not fit 'vit_b'"):
        load_sam_teacher(f"vit_b:{small}")
    with pytest.raises(ValueError, match="no open_clip image tower"):
        load_language_teacher(f"open_clip:ViT-B-16:{small}")


# ----------------------------------------------------------------------------- checkpoint records


def test_checkpoint_record_matches_by_kind_and_dimension_not_path():
    record = spec_to_checkpoint_dict("vit_b:/train/sam.pth", "open_clip:ViT-B-16:/train/clip.bin")
    assert record == {
        "sam": {"spec": "vit_b:/train/sam.pth", "kind": "vit_b", "feature_dim": 256},
        "language": {
            "spec": "open_clip:ViT-B-16:/train/clip.bin",
            "kind": "open_clip:ViT-B-16",
            "feature_dim": 512,
        },
    }
    here = spec_to_checkpoint_dict("vit_b:/robot/w/sam.pth", "open_clip:ViT-B-16:/robot/c.bin")
    check_checkpoint_teachers(record, here)  # other paths, same teachers
    sam, language = specs_from_checkpoint_dict(json.loads(json.dumps(record)))
    assert sam == SamSpec.parse("vit_b:/train/sam.pth")
    assert language == LanguageSpec.parse("open_clip:ViT-B-16:/train/clip.bin")


def test_checkpoint_record_mismatch_names_each_teacher():
    record = spec_to_checkpoint_dict("vit_b:/w/sam.pth", "open_clip:ViT-B-16:/w/clip.bin")
    with pytest.raises(ValueError) as info:
        check_checkpoint_teachers(record, spec_to_checkpoint_dict("tiny", "tiny_lseg"), "m.pt")
    message = str(info.value)
    assert message.startswith("m.pt was distilled from sam teacher vit_b")
    assert "language teacher open_clip:ViT-B-16 (512-d" in message
    assert "tiny_lseg (384-d" in message
    only_sam = spec_to_checkpoint_dict("vit_l:/w/l.pth", "open_clip:ViT-B-16:/x.bin")
    with pytest.raises(ValueError, match="sam teacher vit_b") as info:
        check_checkpoint_teachers(record, only_sam)
    assert "language teacher" not in str(info.value)


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        (None, "does not record the teachers"),
        ({"sam": {"kind": "vit_b", "feature_dim": 256}}, "no valid record of its language"),
        (
            {"sam": {"kind": "vit_b", "feature_dim": "256"}, "language": {}},
            "integer 'feature_dim'",
        ),
    ],
)
def test_checkpoint_record_malformed(recorded, message):
    expected = spec_to_checkpoint_dict("tiny", "tiny_lseg")
    with pytest.raises(ValueError, match=message):
        check_checkpoint_teachers(recorded, expected)


def test_specs_from_a_record_without_spec_strings_fail():
    with pytest.raises(ValueError, match="no language spec"):
        specs_from_checkpoint_dict({"sam": {"spec": "tiny"}, "language": {"kind": "tiny_lseg"}})


def test_recorded_teachers_of_old_and_new_checkpoints():
    record = spec_to_checkpoint_dict("vit_b:/w/sam.pth", "open_clip:ViT-B-16:/w/clip.bin")
    assert recorded_teachers({"stage": 1, "teachers": record}) == record
    assert recorded_teachers({"stage": 1, "teachers": None}) is None
    # Written before records: a stage-0 model distils nothing, any other the shipped tiny pair.
    assert recorded_teachers({"stage": 0, "step": 10}) is None
    tiny = spec_to_checkpoint_dict("tiny", "tiny_lseg")
    assert recorded_teachers({"stage": 2, "step": 10}) == tiny
    with pytest.raises(ValueError, match="not a mapping"):
        recorded_teachers({"teachers": "vit_b"})
    check_model_teachers({"stage": 2}, "tiny:/other/tiny_sam.pt", "tiny_lseg")  # kinds agree
    check_model_teachers({"stage": 0}, "vit_b:/w/s.pth", "tiny_lseg")  # no teacher: any pair
    with pytest.raises(ValueError, match=r"m\.pt was distilled from sam teacher tiny"):
        check_model_teachers({"stage": 2}, "vit_h:/w/h.pth", "tiny_lseg", "m.pt")
