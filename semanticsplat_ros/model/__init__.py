"""The SemanticSplat network: encoder, cost volume, depth, fusion, semantic Gaussian heads."""

from semanticsplat_ros.model.semanticsplat import (
    CONDITION_CHOICES,
    MODEL_KIND,
    SemanticGaussians,
    SemanticSplat,
    SemanticSplatConfig,
    count_parameters,
    load_model,
    save_model,
    with_conditions,
    with_language_skip,
)

__all__ = [
    "CONDITION_CHOICES",
    "MODEL_KIND",
    "SemanticGaussians",
    "SemanticSplat",
    "SemanticSplatConfig",
    "count_parameters",
    "load_model",
    "save_model",
    "with_conditions",
    "with_language_skip",
]
