"""Benchmarks: scripts that print their figures. Run from the repository root, e.g.
``.venv/bin/python -m bench.throughput --help``."""
