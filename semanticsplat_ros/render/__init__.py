"""Differentiable rasterization of semantic Gaussians (colour + features, same weights)."""

from semanticsplat_ros.render.dense import render_dense
from semanticsplat_ros.render.rasterizer import (
    Rasterizer,
    available_rasterizers,
    get_rasterizer,
    register_rasterizer,
    render,
)
from semanticsplat_ros.render.torch_backend import TileRasterizerConfig, TorchTileRasterizer
from semanticsplat_ros.render.types import Gaussians, RenderOutput

__all__ = [
    "Gaussians",
    "Rasterizer",
    "RenderOutput",
    "TileRasterizerConfig",
    "TorchTileRasterizer",
    "available_rasterizers",
    "get_rasterizer",
    "register_rasterizer",
    "render",
    "render_dense",
]
