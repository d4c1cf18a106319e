"""The edges people touch: the HTTP API, the CLI, worker and scheduler entry points,
and :mod:`api.bootstrap`, the one composition root that chooses adapters."""
