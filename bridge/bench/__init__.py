"""Benchmarks behind `genworld bench`; figures go to docs/benchmarks.md."""
