"""Handlers the benchmarks run."""

from adapters.python import handler


@handler("bench.noop")
def noop() -> None:
    """Does nothing: the benchmark measures Ostinato, not the work."""
    return None
