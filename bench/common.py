"""Shared pieces of the benchmarks: databases, seeding, process control, percentiles."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("OSTINATO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OSTINATO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def fresh_postgres(name: str) -> str:
    """Drop and create database ``name``, migrate it, and return its SQLAlchemy URL."""
    from migrations.runner import upgrade

    async def admin() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(admin())
    url = PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + "/" + name
    upgrade(url, "head")
    return url


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


async def seed_endpoints(url: str, count: int, *, interval_s: float, first_at: datetime, spread_s: float = 0.0,
                         tenant: str = "bench", allow_concurrent: bool = False, history: int = 0) -> None:
    """``count`` no-op endpoints every ``interval_s``; the first runs are spread evenly over
    ``[first_at, first_at + spread_s)`` (all at ``first_at`` when ``spread_s`` is 0). On
    PostgreSQL, ``history`` succeeded runs per endpoint before ``first_at``, as a scheduler that
    has been running has them (the planner then plans for a table of runs, not an empty one)."""
    from adapters.sqlalchemy import SqlAlchemyStore
    from domain.endpoints import JobEndpoint
    from domain.schedules import IntervalSchedule
    from domain.targets import PythonTarget
    from attrs import evolve

    store = SqlAlchemyStore.from_url(url)
    now = datetime.now(timezone.utc)
    try:
        for start in range(0, count, 1000):
            async with store.unit_of_work() as uow:
                for i in range(start, min(count, start + 1000)):
                    endpoint = JobEndpoint.new(
                        tenant_id=tenant, name=f"bench-{i}", target=PythonTarget(handler="bench.noop"),
                        schedule=IntervalSchedule(interval=timedelta(seconds=interval_s)), now=now,
                        allow_concurrent=allow_concurrent,
                    )
                    offset = timedelta(seconds=spread_s * i / count) if spread_s else timedelta(0)
                    await uow.endpoints.add(evolve(endpoint, next_run_at=first_at + offset))
                await uow.commit()
        if url.startswith("postgresql"):
            # statistics, as any running database has them (autovacuum's ANALYZE): without them the
            # planner keeps the plans it chose for empty tables
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
            try:
                if history:
                    await conn.execute(
                        """
                        INSERT INTO runs (id, tenant_id, endpoint_id, status, source, slot, attempt, params,
                                          scheduled_at, created_at, started_at, finished_at, duration_s,
                                          has_result, dead_lettered, exclusive, worker_id, dispatched_at)
                        SELECT gen_random_uuid()::text, e.tenant_id, e.id, 'succeeded', 'baseline-interval',
                               'history-' || g, 1, '{}'::jsonb, at, at, at, at + interval '2 ms', 0.002,
                               false, false, true, 'bench', at
                        FROM endpoints e, generate_series(1, $1) AS g,
                             LATERAL (SELECT $2::timestamptz - g * $3 * interval '1 second' AS at) t
                        """,
                        history, first_at, interval_s,
                    )
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
    finally:
        await store.dispose()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``ostinato ARGS`` with ``env``, logging to ``log``."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "ostinato"), *args],
        env=full_env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def stop(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(label: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"{label}: no samples"
    return (f"{label}: n={len(values_ms)} p50={percentile(values_ms, 50):.1f}ms p99={percentile(values_ms, 99):.1f}ms "
            f"max={max(values_ms):.1f}ms mean={statistics.fmean(values_ms):.1f}ms")


def autovacuum_note(dsn: str) -> str:
    """A line saying whether the server vacuums by itself: with ``autovacuum = off`` the
    endpoints table (updated at every firing) fills with dead rows and the engine slows
    down by the second, so figures from such a server are not a deployment's."""

    async def setting() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(await conn.fetchval("SHOW autovacuum"))
        finally:
            await conn.close()

    value = asyncio.run(setting())
    if value == "on":
        return "PostgreSQL autovacuum: on"
    return ("PostgreSQL autovacuum: OFF on this server: dead rows of the endpoints table pile up and the "
            "engine slows down over the run; PostgreSQL's default (and any deployment's) is on")
