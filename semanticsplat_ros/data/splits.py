"""Train / validation / hold-out scenes of the synthetic world, as seed ranges.

Every command that takes synthetic scenes accepts ``--seeds START:END`` (END exclusive, like a
Python range) or the name of a split.
"""

from __future__ import annotations

SPLITS: dict[str, range] = {
    "train": range(0, 100_000),
    "val": range(100_000, 101_000),
    "holdout": range(200_000, 201_000),
}
"""Split name -> scene seeds. The ranges are disjoint: no scene is in two splits."""


def parse_seeds(text: str) -> range:
    """``"START:END"`` (END exclusive, START < END, both >= 0) or a split name -> range.

    ``"7"`` alone means ``7:8``. Raises ValueError with the accepted forms otherwise.
    """
    if not isinstance(text, str):
        raise TypeError(f"seeds must be a string like '0:100', got {type(text).__name__}")
    spec = text.strip()
    if spec in SPLITS:
        return SPLITS[spec]
    forms = f"expected START:END (e.g. 0:100), a single seed, or one of {', '.join(SPLITS)}"
    parts = spec.split(":")
    if len(parts) == 1:
        parts = [spec, ""]
        single = True
    elif len(parts) == 2:
        single = False
    else:
        raise ValueError(f"bad seeds {text!r}: {forms}")
    try:
        start = int(parts[0])
        end = start + 1 if single else int(parts[1])
    except ValueError:
        raise ValueError(f"bad seeds {text!r}: {forms}") from None
    if start < 0 or end < 0:
        raise ValueError(f"bad seeds {text!r}: seeds must be >= 0")
    if end <= start:
        raise ValueError(f"bad seeds {text!r}: END must be greater than START ({forms})")
    return range(start, end)


def split_of(seed: int) -> str | None:
    """The split containing ``seed``, or None."""
    for name, seeds in SPLITS.items():
        if seed in seeds:
            return name
    return None
