"""Benchmark scripts, run as ``python benchmarks/NAME.py`` (``make bench`` runs ``run_all.py``).

A package only so that the import contracts in ``pyproject.toml`` can see them: they sit above
everything, and only ``display_rate.py`` (which measures the live window) imports ``ui``.
"""
