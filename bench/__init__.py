"""Benchmarks of the real bot process against the local test doubles: `python -m bench`."""
