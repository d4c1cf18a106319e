"""Python handlers the workflow integration tests run, registered under ``wtest.*``.

Worker processes import this module when ``OSTINATO_HANDLER_MODULES`` names
``tests.integration.workflows.handlers``.
"""

from __future__ import annotations

import asyncio
import os

from adapters.python import handler


@handler("wtest.effect")
async def effect(path: str, step: str, seconds: float = 0.0, **inputs: object) -> dict[str, object]:
    """Wait ``seconds``, then append ``step`` to the file at ``path``: one line per time the step's
    work was done (a worker killed while it waits writes nothing)."""
    await asyncio.sleep(seconds)
    with open(path, "a", encoding="utf-8") as out:
        out.write(step + "\n")
        out.flush()
        os.fsync(out.fileno())
    return {"step": step, "pid": os.getpid(), "inputs": sorted(inputs)}
