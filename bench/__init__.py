"""Benchmarks of Tweespoor: see bench/README.md. Run with `uv run python -m bench`."""
