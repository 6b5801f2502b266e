"""Benchmarks: commands that print figures side by side (see bench/README.md)."""
