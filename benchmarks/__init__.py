"""Benchmarks against the tutorial's pickle: `python -m benchmarks.NAME`."""
