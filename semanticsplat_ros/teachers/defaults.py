"""Where the shipped tiny teachers and the prompt files live (inside the installed package)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CHECKPOINTS = ASSETS / "checkpoints"
DEFAULT_TINY_SAM = CHECKPOINTS / "tiny_sam.pt"
"""The tiny SAM teacher trained by ``semanticsplat train-teachers`` (committed)."""
DEFAULT_TINY_LSEG = CHECKPOINTS / "tiny_lseg.pt"
"""The tiny LSeg-style language teacher (committed)."""
CLASS_SYNONYMS = ASSETS / "class_synonyms.yaml"
"""Class name -> a synonym never used in training (the open-vocabulary check)."""
CLASS_VOCABULARY = ASSETS / "class_vocabulary.yaml"
"""Class name -> many training texts and a few unseen words (``teachers.vocabulary``)."""
