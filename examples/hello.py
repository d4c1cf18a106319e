"""Example Python handlers, registered under ``examples.*`` when this module is imported.

- ``examples.hello`` greets ``name`` and returns the greeting;
- ``examples.flaky`` fails its first ``failures`` calls per endpoint in this
  process, then succeeds: give its endpoint a retry policy to watch retries;
- ``examples.sleep`` waits ``seconds`` without blocking the worker.

Workers import it when ``OSTINATO_HANDLER_MODULES`` lists ``examples.hello``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from adapters.python import handler

_calls: Counter[str] = Counter()
_calls_lock = threading.Lock()


@handler("examples.hello")
def hello(name: str = "world", ctx: Any = None) -> dict[str, Any]:
    """Return a greeting for ``name`` and the time it was made (UTC, ISO 8601)."""
    greeting = f"Hello, {name}!"
    if ctx is not None:
        ctx.log(f"greeting {name} from endpoint {ctx.endpoint_name}")
    return {"greeting": greeting, "at": datetime.now(timezone.utc).isoformat()}


@handler("examples.flaky")
def flaky(failures: int = 2, ctx: Any = None) -> dict[str, Any]:
    """Raise on the first ``failures`` calls for an endpoint (counted per process), then succeed."""
    key = ctx.endpoint_name if ctx is not None else ""
    with _calls_lock:
        _calls[key] += 1
        call = _calls[key]
    if call <= failures:
        raise RuntimeError(f"flaky: call {call} fails on purpose ({failures} failures before success)")
    if ctx is not None:
        ctx.log(f"succeeded on call {call}")
    return {"call": call, "failures_before_success": failures}


@handler("examples.sleep")
async def sleep(seconds: float = 1.0, ctx: Any = None) -> dict[str, Any]:
    """Wait ``seconds`` (asynchronously), then report how long it slept."""
    if ctx is not None:
        ctx.log(f"sleeping {seconds:g} s")
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}
