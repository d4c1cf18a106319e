"""The cost of advancing a workflow, in one process on PostgreSQL. Prints its figures; asserts nothing.

    python -m bench.workflow_steps [--chain 200] [--fanout 1000] [--batch 100]

No broker and no worker processes: the product's ``WorkflowsService`` and
``ExecutionService`` over a fresh PostgreSQL database, with a dispatcher that
only collects the run ids it is given; the loop executes them (no-op Python
steps) until none are left. It isolates what ``bench.workflows`` measures
across processes into the transactions themselves:

- **chain**: ``--chain`` steps one after the other, each executed alone: per
  step, the worker's call (``ExecutionService.execute``: the transaction that
  starts the run, the no-op, the transaction that records its outcome), the
  orchestrator's part of the latter (``Orchestrator.runs_settled``), and the
  SQL statements a call sends;
- **fan-out**: ``--fanout`` independent steps and a join, executed
  ``--batch`` runs per call, as a worker takes a message's batch.

The figures are wall times on a shared machine: compare runs made back to
back.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.common import fresh_postgres, summary
from bench.workflows import _noop, lift_cap

DB = "ostinato_bench_workflow_steps"
TENANT = "bench"


class Collecting:
    """A dispatcher that keeps the run ids it is given, for the loop to execute."""

    def __init__(self) -> None:
        self.run_ids: list[str] = []

    async def dispatch(self, items: Sequence[Any]) -> None:
        self.run_ids.extend(item.run_id for item in items)


class TimedListener:
    """The orchestrator as the recorder's step listener, keeping each ``runs_settled`` call's
    wall time (ms)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.times: list[float] = []

    async def runs_settled(self, uow: Any, final: Any, retries: Any, *, now: Any) -> Any:
        began = time.perf_counter()
        try:
            return await self.inner.runs_settled(uow, final, retries, now=now)
        finally:
            self.times.append((time.perf_counter() - began) * 1000)

    async def cancel_runs(self, run_ids: Sequence[str]) -> None:
        await self.inner.cancel_runs(run_ids)


async def measure(url: str, chain: int, fanout: int, batch: int) -> None:
    from sqlalchemy import event

    from adapters.executors import Executors
    from adapters.python import load_modules
    from adapters.sqlalchemy import SqlAlchemyStore
    from domain.clock import SystemClock
    from services.execution import ExecutionService
    from services.orchestrator import Orchestrator
    from services.outcomes import OutcomeRecorder
    from services.workflows import WorkflowsService

    load_modules(["bench.handlers"])
    store = SqlAlchemyStore.from_url(url)
    clock = SystemClock()
    collected = Collecting()
    settled = TimedListener(Orchestrator(uow=store.unit_of_work, clock=clock))
    workflows = WorkflowsService(uow=store.unit_of_work, clock=clock, dispatcher=collected)
    execution = ExecutionService(
        uow=store.unit_of_work, clock=clock, executors=Executors.default(), dispatcher=collected,
        recorder=OutcomeRecorder(listener=settled),
    )
    calls: list[float] = []
    statements: Counter[str] = Counter()

    @event.listens_for(store.engine.sync_engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[_kind(statement)] += 1

    async def run(spec: dict[str, Any], per_call: int) -> float:
        """Define and start ``spec``, execute its runs ``per_call`` at a time; the wall time (s)."""
        await workflows.create(TENANT, spec)
        began = time.perf_counter()
        await workflows.start(TENANT, spec["slug"])
        calls.clear()
        settled.times.clear()
        statements.clear()
        while collected.run_ids:
            ids = collected.run_ids[:per_call]
            del collected.run_ids[:per_call]
            call_began = time.perf_counter()
            await execution.execute(ids, worker="bench")
            calls.append((time.perf_counter() - call_began) * 1000)
        return time.perf_counter() - began

    try:
        await run({"slug": "warm-up", "name": "Warm-up", "steps": [_noop("a"), _noop("b", "a")]}, 1)
        keys = [f"s{i:03d}" for i in range(chain)]
        steps = [_noop(keys[0])] + [_noop(key, before) for before, key in zip(keys, keys[1:])]
        wall = await run({"slug": "chain", "name": "Chain", "steps": steps}, 1)
        print(f"chain: {chain} no-op Python steps in one process ({wall:.2f}s, {wall / chain * 1000:.1f} ms per step)")
        print("  " + summary("a step's execute call", calls))
        print("  " + summary("  the orchestrator's part", settled.times))
        per_step = ", ".join(f"{name} {n / chain:.1f}" for name, n in statements.most_common())
        print(f"  statements per step: {sum(statements.values()) / chain:.1f} ({per_step})")

        branches = [_noop(f"b{i:04d}") for i in range(fanout)]
        spec = {"slug": "fanout", "name": "Fan-out", "steps": [*branches, _noop("join", *(b["key"] for b in branches))]}
        wall = await run(spec, batch)
        print(f"fan-out: {fanout} no-op branches and a join, {batch} runs per call ({wall:.2f}s)")
        print("  " + summary("an execute call", calls))
        print("  " + summary("  the orchestrator's part", settled.times))
    finally:
        await store.dispose()


def _kind(statement: str) -> str:
    """``SELECT runs``, ``INSERT events``, ``UPDATE workflow_run_steps``: the verb and its table."""
    words = statement.split()
    verb = words[0].upper()
    if verb == "SELECT":
        table = words[words.index("FROM") + 1] if "FROM" in words else "?"
    elif verb in ("INSERT", "DELETE"):
        table = words[2]
    else:
        table = words[1]
    return f"{verb} {table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    lift_cap(max(args.fanout + 1, args.chain, 200))
    url = fresh_postgres(DB)
    asyncio.run(measure(url, args.chain, args.fanout, args.batch))


if __name__ == "__main__":
    main()
