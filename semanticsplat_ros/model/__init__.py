"""The SemanticSplat network: encoder, cost volume, depth, fusion, semantic Gaussian heads."""

from semanticsplat_ros.model.semanticsplat import (
    MODEL_KIND,
    SemanticGaussians,
    SemanticSplat,
    SemanticSplatConfig,
    count_parameters,
    load_model,
    save_model,
)

__all__ = [
    "MODEL_KIND",
    "SemanticGaussians",
    "SemanticSplat",
    "SemanticSplatConfig",
    "count_parameters",
    "load_model",
    "save_model",
]
