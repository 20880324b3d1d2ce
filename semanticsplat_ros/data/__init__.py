"""Synthetic multi-camera semantic world, ScanNet-format loading and view sampling."""
