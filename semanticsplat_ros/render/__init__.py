"""Differentiable rasterization of semantic Gaussians (colour + features, same weights)."""

from semanticsplat_ros.render.types import Gaussians, RenderOutput

__all__ = ["Gaussians", "RenderOutput"]
