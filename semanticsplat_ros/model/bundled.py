"""The models shipped with the package and how a checkpoint is named: a path, a bundled model's
name, or empty for the default.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_CHECKPOINT = (
    Path(__file__).resolve().parent.parent / "assets" / "checkpoints" / "semanticsplat_small.pt"
)
"""The default model checkpoint shipped with the package (trained on the synthetic world)."""

BUNDLED_MODELS = {
    "small": DEFAULT_MODEL_CHECKPOINT,
    "small_stereo": DEFAULT_MODEL_CHECKPOINT.with_name("semanticsplat_small_stereo.pt"),
}
"""Models shipped with the package, by the name ``model_checkpoint`` / ``--checkpoint`` accept:
``small`` is the default; ``small_stereo`` is it fine-tuned for the sim rig's 11 cm stereo head
at 96x72 (assets/checkpoints/README.md), what config/bringup.yaml runs."""


def resolve_model_checkpoint(value: str | Path | None, hint: str = "") -> Path:
    """The checkpoint file ``value`` names: empty = the default, a bundled model's name
    (``BUNDLED_MODELS``) = its file, anything else = a path. Raises FileNotFoundError with the
    bundled names (and ``hint``, e.g. a command-line alternative) when it is neither an existing
    file nor a bundled model."""
    text = str(value or "").strip()
    if not text:
        path = DEFAULT_MODEL_CHECKPOINT
    elif text in BUNDLED_MODELS and not Path(text).is_file():
        path = BUNDLED_MODELS[text]
    else:
        path = Path(text).expanduser()
    if not path.is_file():
        names = ", ".join(BUNDLED_MODELS)
        raise FileNotFoundError(
            f"model checkpoint {text or path} not found: give a checkpoint file (train one with "
            f"`semanticsplat train`) or a bundled model's name ({names}){hint}"
        )
    return path
