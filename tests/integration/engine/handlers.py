"""Python handlers the engine's integration tests run, registered under ``itest.*``.

Worker processes import this module when ``OSTINATO_HANDLER_MODULES`` names
``tests.integration.engine.handlers``. Handlers touch nothing but their own
arguments, so a test learns what ran from the run records alone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from adapters.python import handler


@handler("itest.noop")
def noop() -> None:
    """Does nothing: the test measures the engine, not the work."""
    return None


@handler("itest.stamp")
def stamp(ctx: Any = None) -> dict[str, Any]:
    """Return when it ran (UTC, ISO 8601) and for which endpoint."""
    return {"ran_at": datetime.now(timezone.utc).isoformat(), "endpoint": ctx.endpoint_name if ctx else None}


@handler("itest.sleep")
async def sleep(seconds: float = 3.0) -> dict[str, float]:
    """Wait ``seconds`` without blocking the worker, then succeed."""
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}
