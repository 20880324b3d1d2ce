"""The evaluation classes of the paper's language tables."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "wall",
    "floor",
    "ceiling",
    "chair",
    "table",
    "bed",
    "sofa",
    "others",
)
"""Class id i is CLASS_NAMES[i]. ``others`` covers every object that is none of the above."""

NUM_CLASSES = len(CLASS_NAMES)
CLASS_ID = {name: i for i, name in enumerate(CLASS_NAMES)}

# One colour per class for label images and overlays (RGB, 0-255).
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (174, 199, 232),  # wall
    (152, 223, 138),  # floor
    (196, 156, 148),  # ceiling
    (255, 127, 14),  # chair
    (214, 39, 40),  # table
    (148, 103, 189),  # bed
    (44, 160, 44),  # sofa
    (127, 127, 127),  # others
)
