"""Throughput, lateness and worker memory of the engine. Prints its figures; asserts nothing.

    python -m bench.throughput burst    [--runs 20000] [--workers 2] [--threads 8]
        20,000 no-op Python-handler runs due at once, through one scheduler process,
        Redis and worker processes into PostgreSQL: completed runs per second,
        lateness (start - scheduled) and each worker's peak memory.
    python -m bench.throughput steady   [--rate 500] [--seconds 30]
        a steady offered load (``rate`` endpoints every second) on the same setup, over a
        database holding 200 earlier runs per endpoint: lateness p50/p99 once warmed up.
    python -m bench.throughput embedded [--runs 20000]
        the embedded default in one process: SQLite file, in-process broker, worker threads.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from bench.common import (
    REDIS_URL, autovacuum_note, cpu_seconds, flush_redis, fresh_postgres, peak_rss_mb, percentile, seed_endpoints, spawn, stop,
    summary,
)

DB = "ostinato_bench"
# succeeded runs per endpoint before a steady run starts: the state of a scheduler that has been running
HISTORY = 200


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _wait_for_runs(dsn: str, expected: int, timeout_s: float, *, since: datetime | None = None) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        done = 0
        while time.monotonic() < deadline:
            done = await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'succeeded'")
            if done >= expected:
                break
            await asyncio.sleep(0.25)
        return done
    finally:
        await conn.close()


async def _figures(dsn: str, *, window: tuple[datetime, datetime] | None = None) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        where = "status = 'succeeded'"
        args: list = []
        if window:
            where += " AND scheduled_at >= $1 AND scheduled_at < $2"
            args = list(window)
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, min(scheduled_at) AS first, max(finished_at) AS last FROM runs WHERE {where}", *args
        )
        lateness = [
            r["ms"] for r in await conn.fetch(
                f"SELECT extract(epoch FROM started_at - scheduled_at) * 1000 AS ms FROM runs WHERE {where}", *args
            )
        ]
        failed = await conn.fetchval("SELECT count(*) FROM runs WHERE status <> 'succeeded'")
        return {"n": row["n"], "first": row["first"], "last": row["last"], "lateness": [float(x) for x in lateness], "other": failed}
    finally:
        await conn.close()


def _env(url: str) -> dict[str, str]:
    return {
        "OSTINATO_DATABASE_URL": url,
        "OSTINATO_BROKER_URL": REDIS_URL,
        "OSTINATO_HANDLER_MODULES": "bench.handlers",
        "OSTINATO_SCHEDULER_BATCH": "1000",
    }


def burst(runs: int, workers: int, threads: int) -> None:
    url = fresh_postgres(DB)
    flush_redis(REDIS_URL)
    far = datetime.now(timezone.utc) + timedelta(days=1)
    asyncio.run(seed_endpoints(url, runs, interval_s=3600, first_at=far))
    logs = Path(tempfile.mkdtemp(prefix="ostinato-bench-"))
    env = _env(url)
    procs = [spawn(["worker", "--threads", str(threads)], env, logs / f"worker{i}.log") for i in range(workers)]
    procs.append(spawn(["scheduler"], env, logs / "scheduler.log"))
    try:
        time.sleep(4)  # workers connect, scheduler starts listening

        async def release() -> None:
            conn = await asyncpg.connect(_dsn(url))
            try:
                await conn.execute("UPDATE endpoints SET next_run_at = now() + interval '500 milliseconds'")
            finally:
                await conn.close()

        asyncio.run(release())
        rss_mid: list[float] = []
        done = asyncio.run(_wait_for_runs(_dsn(url), runs // 2, 120))
        rss_mid = [peak_rss_mb(p.pid) for p in procs[:workers]]
        done = asyncio.run(_wait_for_runs(_dsn(url), runs, 180))
        rss_end = [peak_rss_mb(p.pid) for p in procs[:workers]]
        cpu = [cpu_seconds(p.pid) for p in procs]
        figures = asyncio.run(_figures(_dsn(url)))
    finally:
        stop(procs)
    elapsed = (figures["last"] - figures["first"]).total_seconds() if figures["first"] else float("nan")
    print(f"burst: {runs} no-op runs, 1 scheduler, {workers} workers x {threads} threads, Redis, PostgreSQL")
    print(f"  completed: {done} succeeded ({figures['other']} in other states) in {elapsed:.2f}s "
          f"(first scheduled -> last finished): {figures['n'] / elapsed:.0f} runs/s")
    print("  " + summary("lateness (start - scheduled)", figures["lateness"]))
    print(f"  worker peak RSS at half way: {', '.join(f'{x:.0f} MB' for x in rss_mid)}; "
          f"at the end: {', '.join(f'{x:.0f} MB' for x in rss_end)}")
    print(f"  CPU seconds: workers {', '.join(f'{x:.1f}' for x in cpu[:workers])}, scheduler {cpu[-1]:.1f}")
    print(f"  {autovacuum_note(_dsn(url))}")
    print(f"  logs: {logs}")


def steady(rate: int, seconds: int, workers: int, threads: int) -> None:
    url = fresh_postgres(DB)
    flush_redis(REDIS_URL)
    start = datetime.now(timezone.utc) + timedelta(seconds=15)
    asyncio.run(seed_endpoints(url, rate, interval_s=1.0, first_at=start, spread_s=1.0, history=HISTORY))
    logs = Path(tempfile.mkdtemp(prefix="ostinato-bench-"))
    env = _env(url)
    procs = [spawn(["worker", "--threads", str(threads)], env, logs / f"worker{i}.log") for i in range(workers)]
    procs.append(spawn(["scheduler"], env, logs / "scheduler.log"))
    try:
        wait = (start - datetime.now(timezone.utc)).total_seconds() + seconds
        time.sleep(max(0, wait) + 2)
        cpu = [cpu_seconds(p.pid) for p in procs]
    finally:
        stop(procs)
    window = (start + timedelta(seconds=5), start + timedelta(seconds=seconds - 1))
    figures = asyncio.run(_figures(_dsn(url), window=window))
    span = (window[1] - window[0]).total_seconds()
    print(f"steady: {rate} endpoints every 1 s for {seconds} s, 1 scheduler, {workers} workers x {threads} threads")
    print(f"  measured window {span:.0f} s after 5 s warm-up: {figures['n']} runs ({figures['n'] / span:.0f} runs/s)")
    print("  " + summary("lateness (start - scheduled)", figures["lateness"]))
    print(f"  CPU seconds over the whole run: workers {', '.join(f'{x:.1f}' for x in cpu[:workers])}, "
          f"scheduler {cpu[-1]:.1f}")
    print(f"  {autovacuum_note(_dsn(url))}")
    print(f"  logs: {logs}")


def embedded(runs: int, threads: int) -> None:
    from api.bootstrap import bootstrap
    from api.runtime import SchedulerLoop, start_worker
    from api.settings import load_settings
    from migrations.runner import upgrade
    import sqlite3

    import bench.handlers  # noqa: F401  (registers bench.noop)

    folder = Path(tempfile.mkdtemp(prefix="ostinato-bench-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    upgrade(url, "head")
    settings = load_settings(database_url=url, broker_url="", handler_modules="bench.handlers",
                             worker_threads=threads, scheduler_batch=1000)
    far = datetime.now(timezone.utc) + timedelta(days=1)
    asyncio.run(seed_endpoints(url, runs, interval_s=3600, first_at=far))

    async def main() -> tuple[float, list[float], int]:
        container = bootstrap(settings)
        worker, binding = start_worker(settings, container.transport)
        stop_event = asyncio.Event()
        loop = SchedulerLoop(container)
        await asyncio.sleep(1)
        db = sqlite3.connect(folder / "bench.db")
        t0 = datetime.now(timezone.utc) + timedelta(milliseconds=300)
        db.execute("UPDATE endpoints SET next_run_at = ?", (t0.replace(tzinfo=None).isoformat(sep=" "),))
        db.commit()
        task = asyncio.create_task(loop.run(stop_event))
        deadline = time.monotonic() + 300
        done = 0
        while time.monotonic() < deadline:
            done = db.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone()[0]
            if done >= runs:
                break
            await asyncio.sleep(0.25)
        stop_event.set()
        await task
        await asyncio.to_thread(worker.stop)
        await container.close()
        first, last = db.execute("SELECT min(scheduled_at), max(finished_at) FROM runs WHERE status='succeeded'").fetchone()
        lateness = [
            (datetime.fromisoformat(s) - datetime.fromisoformat(c)).total_seconds() * 1000
            for s, c in db.execute("SELECT started_at, scheduled_at FROM runs WHERE status='succeeded'")
        ]
        elapsed = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
        return elapsed, lateness, done

    elapsed, lateness, done = asyncio.run(main())
    print(f"embedded: {runs} no-op runs, SQLite file, in-process broker, {threads} worker threads, one process")
    print(f"  completed: {done} in {elapsed:.2f}s: {done / elapsed:.0f} runs/s")
    print("  " + summary("lateness (start - scheduled)", lateness))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("burst")
    b.add_argument("--runs", type=int, default=20_000)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--threads", type=int, default=8)
    s = sub.add_parser("steady")
    s.add_argument("--rate", type=int, default=500)
    s.add_argument("--seconds", type=int, default=30)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--threads", type=int, default=8)
    e = sub.add_parser("embedded")
    e.add_argument("--runs", type=int, default=20_000)
    e.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if args.mode == "burst":
        burst(args.runs, args.workers, args.threads)
    elif args.mode == "steady":
        steady(args.rate, args.seconds, args.workers, args.threads)
    else:
        embedded(args.runs, args.threads)


if __name__ == "__main__":
    main()
