"""The SemanticSplat network: encoder, cost volume, depth, fusion, semantic Gaussian heads."""
