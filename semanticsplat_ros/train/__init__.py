"""Losses and the staged trainer (stage 0 geometry/appearance, 1 segmentation, 2 language)."""
