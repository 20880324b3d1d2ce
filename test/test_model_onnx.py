"""The encoder's ONNX export on OpenVINO: parity with torch on the bundled model, the export cache, the
``runtime`` choice and its fallback."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from test_pipeline import stereo_frames

from semanticsplat_ros.model import cpu_runtime
from semanticsplat_ros.model.cpu_runtime import (
    OnnxEncoder,
    OnnxExportError,
    default_cache_dir,
    resolve_runtime,
    weights_digest,
)
from semanticsplat_ros.model.semanticsplat import SemanticSplat, SemanticSplatConfig
from semanticsplat_ros.model.testing import random_views
from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline


@pytest.fixture(scope="module")
def pipelines() -> tuple[SemanticSplatPipeline, SemanticSplatPipeline]:
    """The bundled model at the node's default input, on torch and on its ONNX export."""
    return (
        SemanticSplatPipeline(PipelineConfig(device="cpu", runtime="torch")),
        SemanticSplatPipeline(PipelineConfig(device="cpu", runtime="onnx")),
    )


def test_onnx_matches_torch_on_the_bundled_model(pipelines):
    eager, onnx = pipelines
    assert (eager.runtime, onnx.runtime) == ("torch", "onnx")
    frames = stereo_frames()
    a, b = eager.encode(frames), onnx.encode(frames)
    assert (a.depth - b.depth).abs().max() <= 1e-3  # metres
    for name in ("seg_embeddings", "language"):
        cosine = F.cosine_similarity(getattr(a, name), getattr(b, name), dim=1)
        assert cosine.min() >= 0.999, name
    gaussian_cosine = F.cosine_similarity(a.gaussians.features, b.gaussians.features, dim=-1)
    assert gaussian_cosine.min() >= 0.999
    assert (a.gaussians.means - b.gaussians.means).abs().max() <= 1e-3
    assert (a.labels == b.labels).float().mean() >= 0.999


def test_exports_are_cached_by_weights_and_layout(tmp_path):
    torch.manual_seed(0)
    model = SemanticSplat(SemanticSplatConfig.small()).eval()
    views = random_views(1, 2, 32, 32)
    first = OnnxEncoder(model, cache_dir=tmp_path)
    out = first(views)
    files = list(tmp_path.glob("*.onnx"))
    assert first.exports == 1 and len(files) == 1
    with torch.no_grad():
        ref = model(views)
    assert (out.depth - ref.depth).abs().max() <= 1e-3

    again = OnnxEncoder(model, cache_dir=tmp_path)  # another process, the same checkpoint
    again(views)
    assert again.exports == 0

    files[0].write_bytes(b"not an onnx file")  # a truncated or foreign file: exported again
    repaired = OnnxEncoder(model, cache_dir=tmp_path)
    assert (repaired(views).depth - ref.depth).abs().max() <= 1e-3
    assert repaired.exports == 1

    other = SemanticSplat(SemanticSplatConfig.small()).eval()  # other weights: another key
    assert weights_digest(other) != weights_digest(model)


def test_runtime_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_runtime("auto", cpu) == "onnx"
    assert resolve_runtime("auto", cuda) == "torch"
    assert resolve_runtime("torch", cpu) == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_runtime("onnx", cuda)
    with pytest.raises(ValueError, match="runtime must be one of"):
        resolve_runtime("tensorrt", cpu)
    with pytest.raises(ValueError, match="runtime must be one of"):
        PipelineConfig(runtime="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CPU only"):
        PipelineConfig(runtime="onnx", device="cuda")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMANTICSPLAT_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "onnx"
    monkeypatch.delenv("SEMANTICSPLAT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "semanticsplat_ros" / "onnx"


def test_auto_falls_back_to_torch_when_the_export_fails(monkeypatch, tmp_path):
    """A model the exporter cannot take: ``auto`` encodes with torch and says why; ``onnx``
    raises a one-line error."""

    def refuse(self, layout, inputs, path):
        raise NotImplementedError("operator not supported")

    monkeypatch.setattr(cpu_runtime.OnnxEncoder, "_export", refuse)
    monkeypatch.setenv("SEMANTICSPLAT_CACHE_DIR", str(tmp_path))
    frames = stereo_frames()
    config = PipelineConfig(random_weights=True, input_width=64, input_height=48, device="cpu")
    auto = SemanticSplatPipeline(config)
    with pytest.warns(RuntimeWarning, match="using torch"):
        scene = auto.encode(frames)
    assert auto.runtime == "torch"
    assert "operator not supported" in auto.runtime_fallback
    assert torch.isfinite(scene.depth).all()
    strict = SemanticSplatPipeline(dataclasses.replace(config, runtime="onnx"))
    with pytest.raises(OnnxExportError, match="operator not supported"):
        strict.encode(frames)


def test_bad_inputs_are_refused_before_any_export(tmp_path):
    model = SemanticSplat(SemanticSplatConfig.small()).eval()
    encoder = OnnxEncoder(model, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="multiples of"):
        encoder(random_views(1, 2, 30, 30))
    assert encoder.exports == 0
