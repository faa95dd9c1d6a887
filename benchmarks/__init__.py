"""Benchmarks of perkrank, each run from the repository root (results under results/)."""
