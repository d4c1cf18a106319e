"""List-runs latency and throughput of the HTTP API over 1,000,000 runs in PostgreSQL.

    python -m bench.api [--runs 1000000] [--endpoints 10] [--seconds 10] [--connections 16] [--workers 1,2]

Seeds ``runs`` rows spread over ``endpoints`` endpoints (set-based SQL, a minute
or so), then, for each worker count in ``--workers``, starts the API as a
deployment does (``uvicorn --factory api.app:from_environment --workers N``, with
``OSTINATO_DATABASE_POOL_SIZE`` set so each worker's pool can hold all
``connections``), warms it up for 2 s, and measures ``GET /v1/runs?endpoint_id=…&limit=50``
newest first at page 1, and at pages 100, 1,000 and the last page through their
keyset cursors: p50/p99 latency and requests per second. Uses ``wrk`` when installed (``apt-get install wrk``: a C
load generator that leaves the CPU to the server) and an httpx load generator
in a separate process otherwise. Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench.common import ROOT, fresh_postgres, percentile, stop

DB = "ostinato_bench_api"
PORT = 8765
TENANT = "bench"
WARM_UP_S = 2  # unmeasured load first: the workers open their pools' connections


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def seed(url: str, runs: int, endpoints: int) -> list[str]:
    """``endpoints`` endpoints and ``runs`` succeeded runs, one per second per endpoint, backwards from now."""
    from datetime import datetime, timedelta, timezone

    from adapters.sqlalchemy import SqlAlchemyStore
    from domain.endpoints import JobEndpoint
    from domain.schedules import IntervalSchedule
    from domain.targets import PythonTarget

    store = SqlAlchemyStore.from_url(url)
    ids: list[str] = []
    now = datetime.now(timezone.utc)
    try:
        async with store.unit_of_work() as uow:
            for i in range(endpoints):
                endpoint = JobEndpoint.new(
                    tenant_id=TENANT, name=f"api-bench-{i}", target=PythonTarget(handler="bench.noop"),
                    schedule=IntervalSchedule(interval=timedelta(days=365)), now=now,
                )
                await uow.endpoints.add(endpoint)
                ids.append(endpoint.id)
            await uow.commit()
    finally:
        await store.dispose()
    conn = await asyncpg.connect(_dsn(url))
    try:
        per = runs // endpoints
        for endpoint_id in ids:
            await conn.execute(
                """
                INSERT INTO runs (id, tenant_id, endpoint_id, status, source, slot, attempt, params,
                                  scheduled_at, created_at, started_at, finished_at, duration_s,
                                  has_result, dead_lettered, exclusive, worker_id)
                SELECT gen_random_uuid()::text, $1, $2, 'succeeded', 'baseline-interval',
                       'slot-' || g, 1, '{}'::jsonb,
                       now() - g * interval '1 second', now() - g * interval '1 second',
                       now() - g * interval '1 second', now() - g * interval '1 second' + interval '5 ms', 0.005,
                       false, false, true, 'bench'
                FROM generate_series(1, $3) AS g
                """,
                TENANT, endpoint_id, per,
            )
        await conn.execute("ANALYZE runs")
    finally:
        await conn.close()
    return ids


def serve(url: str, log: Path, *, workers: int, pool_size: int) -> subprocess.Popen:
    """The API as docs/execution.md runs it: uvicorn's factory over ``OSTINATO_*`` settings."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OSTINATO_DATABASE_URL": url,
           "OSTINATO_DATABASE_POOL_SIZE": str(pool_size)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:from_environment", "--host", "127.0.0.1",
               "--port", str(PORT), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("a"), stderr=subprocess.STDOUT)


async def make_token(url: str) -> str:
    from api.bootstrap import bootstrap
    from api.settings import load_settings

    container = bootstrap(load_settings(database_url=url))
    try:
        issued = await container.tokens.create(TENANT, role="viewer", name="bench")
        return issued.secret
    finally:
        await container.close()


def cursors(base: str, token: str, endpoint_id: str, depths: list[int]) -> dict[int, str]:
    """The cursor that starts each page in ``depths`` (1-based), found by walking the pages."""
    found: dict[int, str] = {}
    cursor = None
    page = 1
    wanted = sorted(depths)
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
        while wanted and page <= wanted[-1]:
            if page in wanted:
                found[page] = cursor or ""
            params = {"endpoint_id": endpoint_id, "limit": 50}
            if cursor:
                params["cursor"] = cursor
            body = client.get("/v1/runs", params=params).json()
            cursor = body["next_cursor"]
            if cursor is None:
                found.setdefault(page, found.get(page, ""))
                break
            page += 1
    return found


def measure_wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return ms("50%"), ms("99%"), rps


async def _python_load(url: str, token: str, seconds: int, connections: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30,
                                 limits=httpx.Limits(max_connections=connections)) as client:
        async def one() -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                response = await client.get(url)
                response.raise_for_status()
                latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(one() for _ in range(connections)))
    return latencies, len(latencies)


def measure_python(url: str, token: str, seconds: int, connections: int) -> tuple[float, float, float]:
    latencies, count = asyncio.run(_python_load(url, token, seconds, connections))
    return percentile(latencies, 50), percentile(latencies, 99), count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="API worker processes, comma-separated: one server each")
    args = parser.parse_args()
    worker_counts = [int(count) for count in args.workers.split(",")]

    url = fresh_postgres(DB)
    started = time.monotonic()
    endpoint_ids = asyncio.run(seed(url, args.runs, args.endpoints))
    print(f"seeded {args.runs:,} runs over {args.endpoints} endpoints in {time.monotonic() - started:.0f}s")
    token = asyncio.run(make_token(url))
    log = Path(tempfile.mkdtemp(prefix="ostinato-bench-")) / "api.log"
    base = f"http://127.0.0.1:{PORT}"
    per = args.runs // args.endpoints
    last = (per + 49) // 50
    depths = sorted({depth for depth in (1, 100, 1000) if depth < last} | {last})
    tool = "wrk" if shutil.which("wrk") else "python"
    for workers in worker_counts:
        # each worker's pool holds every load connection: the kernel need not split them evenly
        # between the workers, and a pool too small for its share opens and closes a connection
        # per request over it (measured: 8 a worker gave p99 41-359 ms, 16 gave 10-12 ms)
        pool_size = args.connections
        server = serve(url, log, workers=workers, pool_size=pool_size)
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            starts = cursors(base, token, endpoint_ids[0], depths)
            print(f"GET /v1/runs?endpoint_id=…&limit=50 (one endpoint of {per:,} runs), {args.connections} connections, "
                  f"{args.seconds}s each after {WARM_UP_S}s of warm-up, load from {tool}; API: {workers} uvicorn worker process"
                  f"{'es' if workers > 1 else ''}, OSTINATO_DATABASE_POOL_SIZE={pool_size}:")
            pages = {
                depth: f"{base}/v1/runs?endpoint_id={endpoint_ids[0]}&limit=50"
                + (f"&cursor={starts[depth]}" if starts.get(depth) else "")
                for depth in depths
            }
            measure = measure_wrk if tool == "wrk" else measure_python
            measure(pages[depths[0]], token, WARM_UP_S, args.connections)
            for depth, target in pages.items():
                p50, p99, rps = measure(target, token, args.seconds, args.connections)
                print(f"  page {depth:>6,}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  {rps:8.0f} req/s")
        finally:
            stop([server])
    print(f"server log: {log}")


if __name__ == "__main__":
    main()
