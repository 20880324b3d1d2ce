"""Metrics, the paper's evaluation protocols, and baselines."""
