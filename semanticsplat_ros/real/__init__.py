"""Evaluation on real images (the Middlebury stereo pair scikit-image ships)."""
