"""Synthetic corpora in every corpus kind's layout, made-up manifests and tiny random
models, for the demo and the tests."""
