"""Workflow orchestration overhead on PostgreSQL + Redis. Prints its figures; asserts nothing.

    python -m bench.workflows [--chain 200] [--fanout 1000] [--workers 2] [--threads 8]

Two worker processes (``ostinato worker``) and one scheduler on a fresh
PostgreSQL database and Redis; every step is the no-op Python handler
``bench.noop``, so the figures are Ostinato's own cost.

- **chain**: ``--chain`` steps, each depending on the one before. Step-to-step
  overhead is the next step's job run ``started_at`` minus the previous one's
  ``finished_at``: the recording transaction that advances the workflow and
  creates the next job run, the dispatch through Redis, the worker's start.
- **fan-out**: one run of ``--fanout`` independent steps and a join after all of
  them: the time from the run's start to the join's end, and its parts.

A workflow holds at most 200 steps (``domain.workflows.MAX_STEPS``). The
fan-out is measured twice: at the product's cap (``199`` branches and the
join, processes unchanged), and at ``--fanout`` branches with the cap lifted
in this benchmark's own processes only (they are started through
``python -m bench.workflows role …``, which raises the cap, then runs the CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import REDIS_URL, ROOT, flush_redis, fresh_postgres, percentile, stop, summary

DB = "ostinato_bench_workflows"
TENANT = "bench"
LIFTED_CAP_ENV = "OSTINATO_BENCH_MAX_STEPS"


def lift_cap(limit: int) -> None:
    """Raise the steps-per-workflow cap in this process (a benchmark's process only)."""
    import domain.workflow_specs
    import domain.workflows

    domain.workflows.MAX_STEPS = limit
    domain.workflow_specs.MAX_STEPS = limit


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _spawn(role: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ostinato ROLE`` through this module, so the process lifts the cap first."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.workflows", "role", *role],
        env=full_env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def _wait_logged(log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{log.name} did not log {text!r}:\n{log.read_text(errors='replace')[-2000:]}")


def _noop(key: str, *depends_on: str) -> dict[str, Any]:
    return {"key": key, "target": {"kind": "python", "handler": "bench.noop"}, "depends_on": list(depends_on)}


class Bench:
    """The benchmark's own view: a WorkflowsService over the database, dispatching to Redis."""

    def __init__(self, url: str) -> None:
        from adapters.dramatiq import DramatiqTransport
        from adapters.sqlalchemy import SqlAlchemyStore
        from domain.clock import SystemClock
        from services.workflows import WorkflowsService

        self.url = url
        self.store = SqlAlchemyStore.from_url(url)
        self.transport = DramatiqTransport(REDIS_URL)
        self.workflows = WorkflowsService(
            uow=self.store.unit_of_work, clock=SystemClock(), dispatcher=self.transport.dispatcher
        )

    async def run(self, spec: dict[str, Any], timeout_s: float) -> tuple[str, float]:
        """Define and start a workflow, wait for its run to end; its id and the wall time (s)."""
        await self.workflows.create(TENANT, spec)
        began = time.monotonic()
        run = await self.workflows.start(TENANT, spec["slug"])
        conn = await asyncpg.connect(_dsn(self.url))
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                status = await conn.fetchval("SELECT status FROM workflow_runs WHERE id = $1", run.id)
                if status not in ("pending", "running"):
                    break
                await asyncio.sleep(0.02)
        finally:
            await conn.close()
        return run.id, time.monotonic() - began

    async def close(self) -> None:
        await self.store.dispose()
        self.transport.close()


async def _rows(url: str, query: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


async def chain(bench: Bench, length: int) -> None:
    keys = [f"s{i:03d}" for i in range(length)]
    steps = [_noop(keys[0])] + [_noop(key, before) for before, key in zip(keys, keys[1:])]
    run_id, wall = await bench.run({"slug": "chain", "name": "Chain", "steps": steps}, timeout_s=600)
    status = (await _rows(bench.url, "SELECT status FROM workflow_runs WHERE id = $1", run_id))[0]["status"]
    jobs = await _rows(
        bench.url,
        "SELECT step_key, started_at, finished_at FROM runs WHERE workflow_run_id = $1 AND status = 'succeeded' "
        "ORDER BY step_key",
        run_id,
    )
    gaps = [_ms(after["started_at"], before["finished_at"]) for before, after in zip(jobs, jobs[1:])]
    execute = [_ms(j["finished_at"], j["started_at"]) for j in jobs]
    print(f"chain: {length} no-op Python steps, one after the other ({status}, {len(jobs)} steps ran)")
    print("  " + summary("step-to-step overhead (next started - previous finished)", gaps))
    print("  " + summary("inside the worker (started -> finished)", execute))
    print(f"  whole run: {wall:.2f}s wall, {wall / max(len(jobs), 1) * 1000:.1f} ms per step")


async def fanout(bench: Bench, width: int, *, slug: str) -> None:
    branches = [_noop(f"b{i:04d}") for i in range(width)]
    spec = {"slug": slug, "name": f"Fan-out {width}", "steps": [*branches, _noop("join", *(b["key"] for b in branches))]}
    run_id, wall = await bench.run(spec, timeout_s=900)
    [run] = await _rows(bench.url, "SELECT status, started_at, finished_at FROM workflow_runs WHERE id = $1", run_id)
    jobs = await _rows(
        bench.url, "SELECT step_key, created_at, started_at, finished_at FROM runs WHERE workflow_run_id = $1", run_id
    )
    branch_jobs = [j for j in jobs if j["step_key"] != "join"]
    [join] = [j for j in jobs if j["step_key"] == "join"] or [None]
    print(f"fan-out: {width} no-op branches and a join ({run['status']}, {len(jobs)} job runs)")
    if join is None or join["finished_at"] is None:
        print("  the join did not finish")
        return
    started = run["started_at"]
    last_branch = max(j["finished_at"] for j in branch_jobs)
    print(f"  run start -> join finished: {_ms(join['finished_at'], started):.0f} ms (wall, start call -> seen done: {wall:.2f}s)")
    print(f"  run start -> first branch started: {_ms(min(j['started_at'] for j in branch_jobs), started):.0f} ms; "
          f"-> last branch finished: {_ms(last_branch, started):.0f} ms; "
          f"last branch finished -> join started: {_ms(join['started_at'], last_branch):.0f} ms")
    lateness = [_ms(j["started_at"], j["created_at"]) for j in branch_jobs]
    print("  " + summary("branch job run created -> started", lateness))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    role = sub.add_parser("role", help=argparse.SUPPRESS)
    role.add_argument("args", nargs=argparse.REMAINDER)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if args.mode == "role":  # a worker or scheduler process of this benchmark
        lift_cap(int(os.environ.get(LIFTED_CAP_ENV, "200")))
        from api.cli import main as cli

        sys.argv = ["ostinato", *args.args]
        cli()
        return
    cap = max(args.fanout + 1, args.chain, 200)
    lift_cap(cap)
    url = fresh_postgres(DB)
    flush_redis(REDIS_URL)
    logs = Path(tempfile.mkdtemp(prefix="ostinato-bench-workflows-"))
    env = {
        "OSTINATO_DATABASE_URL": url,
        "OSTINATO_BROKER_URL": REDIS_URL,
        "OSTINATO_HANDLER_MODULES": "bench.handlers",
        LIFTED_CAP_ENV: str(cap),
    }
    procs = [_spawn(["worker", "--threads", str(args.threads)], env, logs / f"worker{i}.log") for i in range(args.workers)]
    procs.append(_spawn(["scheduler"], env, logs / "scheduler.log"))
    try:
        for i in range(args.workers):
            _wait_logged(logs / f"worker{i}.log", "consuming from")

        async def measure() -> None:
            bench = Bench(url)
            try:
                print(f"PostgreSQL + Redis, {args.workers} workers x {args.threads} threads, 1 scheduler")
                await fanout(bench, 20, slug="warm-up")  # connections, caches
                await chain(bench, args.chain)
                await fanout(bench, 199, slug="fanout-199")
                print(f"  (above: the widest fan-out a workflow may have; below: {args.fanout} with the cap lifted)")
                await fanout(bench, args.fanout, slug=f"fanout-{args.fanout}")
            finally:
                await bench.close()

        asyncio.run(measure())
    finally:
        stop(procs)
    print(f"  logs: {logs}")


if __name__ == "__main__":
    main()
