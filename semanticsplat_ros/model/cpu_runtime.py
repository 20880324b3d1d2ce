"""The feed-forward encoder (``SemanticSplat.forward``) exported to ONNX and run on OpenVINO's
CPU runtime.

``OnnxEncoder(model)`` is called like the model, ``encoder(context, sam, lang)``, and returns the
same ``SemanticGaussians``. On the first call with a given input layout (batch, views, height,
width, which teacher features are given) it exports the model with ``torch.onnx.export`` (the
torch.export-based exporter) and keeps the file in a cache, keyed by a hash of the weights, the
config, the layout and the versions involved, so a later process with the same checkpoint loads
it in about a second instead of exporting again (~10 s). An unreadable cached file is exported
again.

The ONNX graph runs on OpenVINO in float32 (its default bf16 on CPUs that have it moves depth by
decimetres); it measured faster here than ONNX Runtime on the same file. ``semanticsplat bench
model`` compares it with torch eager. Only inference runs here; training, the rasterizer and the
teachers stay in torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import openvino as ov
import torch
from torch import Tensor, nn

from semanticsplat_ros.data.types import Views
from semanticsplat_ros.model.semanticsplat import SemanticGaussians, SemanticSplat
from semanticsplat_ros.render.types import Gaussians

Runtime = Literal["torch", "onnx", "auto"]
"""How the encoder runs: torch eager, its ONNX export on OpenVINO (CPU), or ``auto`` (the ONNX
export on the CPU, torch on CUDA)."""

RUNTIMES: tuple[str, ...] = ("torch", "onnx", "auto")

OPSET = 18

_OUTPUTS = (
    "means",
    "quats",
    "scales",
    "opacities",
    "colors",
    "features",
    "depth",
    "depth_probs",
    "depth_candidates",
    "coarse_depth",
)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (exporter and compiler messages run long)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class OnnxExportError(RuntimeError):
    """The model could not be exported to ONNX, or OpenVINO could not compile the export."""


def default_cache_dir() -> Path:
    """``$SEMANTICSPLAT_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/semanticsplat_ros/onnx``, else
    ``~/.cache/semanticsplat_ros/onnx``."""
    root = os.environ.get("SEMANTICSPLAT_CACHE_DIR")
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "semanticsplat_ros" / "onnx"


def resolve_runtime(runtime: str, device: torch.device) -> Literal["torch", "onnx"]:
    """The runtime ``runtime`` means on ``device``; ValueError for ONNX on a non-CPU device."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "auto":
        return "onnx" if device.type == "cpu" else "torch"
    if runtime == "onnx" and device.type != "cpu":
        raise ValueError(f"runtime onnx runs on the CPU only, not on device {device}")
    return "onnx" if runtime == "onnx" else "torch"


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the model's config and every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class _Layout:
    batch: int
    views: int
    height: int
    width: int
    sam: tuple[int, ...] | None
    lang: tuple[int, ...] | None

    def key(self) -> str:
        return json.dumps([self.batch, self.views, self.height, self.width, self.sam, self.lang])


class _Flat(nn.Module):
    """The model with tensor inputs and a tuple of tensor outputs (what the exporter takes)."""

    def __init__(self, model: SemanticSplat, with_sam: bool, with_lang: bool) -> None:
        super().__init__()
        self.model = model
        self.with_sam = with_sam
        self.with_lang = with_lang

    def forward(self, images, K, c2w, near, far, *features):
        rest = list(features)
        sam = rest.pop(0) if self.with_sam else None
        lang = rest.pop(0) if self.with_lang else None
        out = self.model(Views(images=images, K=K, c2w=c2w, near=near, far=far), sam, lang)
        g = out.gaussians
        coarse = out.coarse_depth if out.coarse_depth is not None else out.depth
        return (
            g.means,
            g.quats,
            g.scales,
            g.opacities,
            g.colors,
            g.features,
            out.depth,
            out.depth_probs,
            out.depth_candidates,
            coarse,
        )


class _Compiled:
    """One compiled export and its infer request (a request runs one inference at a time)."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.lock = threading.Lock()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with self.lock:
            result = self.request.infer(inputs)  # copies the outputs (share_outputs=False)
            return [np.asarray(result[self.compiled.output(i)]) for i in range(len(_OUTPUTS))]


class OnnxEncoder:
    """``SemanticSplat.forward`` through its ONNX export on OpenVINO (fixed layout per export).

    ``threads``: OpenVINO's inference threads (0 = its default, one per physical core). Its
    threads do not hold Python's GIL, unlike torch's. Thread-safe.
    """

    def __init__(
        self,
        model: SemanticSplat,
        cache_dir: str | Path | None = None,
        threads: int = 0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(model, SemanticSplat):
            raise TypeError(f"model must be a SemanticSplat, got {type(model).__name__}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self.model = model
        self.config = model.config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.threads = threads
        self.progress = progress
        self.digest = weights_digest(model)
        self.exports = 0
        """Exports this encoder ran (the rest were loaded from the cache)."""
        self._compiled: dict[_Layout, _Compiled] = {}
        self._lock = threading.Lock()

    def cache_path(self, layout: _Layout) -> Path:
        """The cached export of this model for ``layout``."""
        h = hashlib.sha256()
        for part in (self.digest, layout.key(), torch.__version__, str(OPSET)):
            h.update(part.encode())
        return self.cache_dir / f"semanticsplat_{h.hexdigest()[:24]}.onnx"

    def __call__(
        self,
        context: Views,
        sam_features: Tensor | None = None,
        lang_features: Tensor | None = None,
    ) -> SemanticGaussians:
        fusion = self.config.fusion
        sam = sam_features if fusion.use_sam else None
        lang = lang_features if fusion.use_language else None
        b, v, h, w = self.model.check_inputs(context, sam, lang)
        layout = _Layout(
            b, v, h, w, tuple(sam.shape[2:]) if sam is not None else None,
            tuple(lang.shape[2:]) if lang is not None else None,
        )  # fmt: skip
        inputs = [context.images, context.K, context.c2w, context.near, context.far]
        inputs += [t for t in (sam, lang) if t is not None]
        compiled = self._compile(layout, inputs)
        arrays = compiled.run(
            [np.ascontiguousarray(t.detach().cpu().float().numpy()) for t in inputs]
        )
        t = {k: torch.from_numpy(a) for k, a in zip(_OUTPUTS, arrays, strict=True)}
        s = self.config.semantic
        return SemanticGaussians(
            gaussians=Gaussians(
                means=t["means"],
                quats=t["quats"],
                scales=t["scales"],
                opacities=t["opacities"],
                colors=t["colors"],
                features=t["features"],
            ),
            depth=t["depth"],
            depth_probs=t["depth_probs"],
            depth_candidates=t["depth_candidates"],
            seg_dim=s.seg_render_dim,
            language_dim=s.language_render_dim,
            coarse_depth=t["coarse_depth"],
        )

    def _compile(self, layout: _Layout, inputs: list[Tensor]) -> _Compiled:
        with self._lock:
            compiled = self._compiled.get(layout)
            if compiled is not None:
                return compiled
            path = self.cache_path(layout)
            compiled = self._open(path) if path.is_file() else None
            if compiled is None:
                try:
                    self._export(layout, inputs, path)
                except Exception as exc:  # the exporter raises many types; one is ours
                    raise OnnxExportError(
                        f"exporting the encoder to ONNX failed: {type(exc).__name__}:"
                        f" {_first_line(exc)}"
                    ) from exc
                compiled = self._open(path, strict=True)
            self._compiled[layout] = compiled
            return compiled

    def _open(self, path: Path, strict: bool = False) -> _Compiled | None:
        config: dict[str, object] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        try:
            return _Compiled(ov.Core().compile_model(str(path), "CPU", config))
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types
            if strict:
                raise OnnxExportError(
                    f"OpenVINO cannot compile {path}: {_first_line(exc)}"
                ) from exc
            return None  # a truncated or foreign cached file: export it again

    def _export(self, layout: _Layout, inputs: list[Tensor], path: Path) -> None:
        if self.progress is not None:
            self.progress(
                f"exporting the encoder to ONNX for {layout.views} views at"
                f" {layout.width}x{layout.height} (once; cached in {path.parent})"
            )
        flat = _Flat(self.model, layout.sam is not None, layout.lang is not None).eval()
        names = ["images", "K", "c2w", "near", "far"]
        names += [n for n, s in (("sam", layout.sam), ("lang", layout.lang)) if s is not None]
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".onnx.tmp", dir=path.parent)
        os.close(fd)
        cpu_inputs = tuple(t.detach().cpu().float() for t in inputs)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    flat,
                    cpu_inputs,
                    input_names=names,
                    output_names=list(_OUTPUTS),
                    opset_version=OPSET,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
                program.save(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        self.exports += 1
