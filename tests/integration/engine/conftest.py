"""The engine as it runs in production, for one test at a time.

Each test that takes ``engine`` gets a PostgreSQL database of its own
(created, migrated to head, dropped afterwards) and Redis database
:data:`REDIS_DB` (flushed before and after), and starts real ``ostinato
scheduler`` and ``ostinato worker`` processes on them, stopped when it ends.
It defines endpoints and reads runs through the product's own services and
tables; it never reaches into a process.

Waits are bounded (:func:`eventually`) and generous: a deadline guards against
a hang, it never measures speed. When a test fails, the processes' logs are
attached to its report.

Tests that restart PostgreSQL or Redis are marked ``chaos``; their helpers
(:func:`restart_postgres`, :func:`stop_redis`…) put the servers back however
the test ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from domain.endpoints import JobEndpoint
from domain.ids import TenantId
from tests.conftest import asyncpg_url
from tests.http_server import http_server  # noqa: F401  (the fixture)
from tests.services import POSTGRES_URL, require_postgres, require_redis

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[3]
TENANT = TenantId("itest")
HANDLERS = "tests.integration.engine.handlers"
TEST_APP = "ostinato-itest"
REDIS_DB = 13
REDIS_URL = os.environ.get("OSTINATO_TEST_ENGINE_REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
STOP_TIMEOUT_S = 20.0
"""How long a stopped process may take to finish the runs in hand before it is killed."""

PG_VERSION = (sorted(os.listdir("/etc/postgresql")) or ["15"])[-1] if os.path.isdir("/etc/postgresql") else "15"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


# -- waiting -------------------------------------------------------------------------


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Call ``probe`` until it returns something true and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(every)


# -- the record, read straight from the tables ----------------------------------------------


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs``, as the engine left it."""

    id: str
    endpoint_id: str
    status: str
    source: str
    slot: str
    attempt: int
    scheduled_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    dead_lettered: bool
    retry_of: str | None
    worker_id: str | None
    error: str | None
    status_code: int | None

    @property
    def final(self) -> bool:
        return self.status not in ("pending", "running")


RUN_COLUMNS = ", ".join(RunRow.__dataclass_fields__)


def dsn(url: str) -> str:
    """An asyncpg DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _connect(target: str) -> Any:
    import asyncpg

    return await asyncpg.connect(target, timeout=5)


async def pg_execute(target: str, statement: str, *args: Any) -> Any:
    conn = await _connect(target)
    try:
        return await conn.execute(statement, *args)
    finally:
        await conn.close()


async def pg_fetch(target: str, query: str, *args: Any) -> list[Any]:
    conn = await _connect(target)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


# -- processes -------------------------------------------------------------------------


@dataclass
class Process:
    """An ``ostinato`` process a test started, and its log."""

    name: str
    popen: subprocess.Popen
    log: Path
    _terminated: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def runs_as(self, worker_id: str | None) -> bool:
        """True when ``worker_id`` (``role@host:pid``) names this process."""
        return worker_id is not None and worker_id.endswith(f":{self.pid}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is cleaned up."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self) -> None:
        """SIGTERM (once: a second one would kill it mid-shutdown); see :meth:`wait`."""
        if self.alive and not self._terminated:
            self._terminated = True
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Wait for the end, then SIGKILL if it has not come after ``timeout`` seconds."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


class Engine:
    """One test's engine: its database, the Redis database, its processes, and the services to drive it."""

    def __init__(self, url: str, broker_url: str, logs: Path) -> None:
        from adapters.sqlalchemy import SqlAlchemyStore
        from domain.clock import SystemClock
        from services.endpoints import EndpointsService
        from services.runs import RunsService

        self.url = url
        self.dsn = dsn(url)
        self.broker_url = broker_url
        self.logs = logs
        # named, so that the connections of the processes under test can be told from the test's own
        self.store = SqlAlchemyStore.from_url(url, connect_args={"server_settings": {"application_name": TEST_APP}})
        self.clock = SystemClock()
        self.endpoints = EndpointsService(uow=self.store.unit_of_work, clock=self.clock)
        self.runs_service = RunsService(uow=self.store.unit_of_work, clock=self.clock)
        self.processes: list[Process] = []
        self._names = 0

    # -- processes -----------------------------------------------------------------

    def env(self, **settings: Any) -> dict[str, str]:
        """The environment of an ``ostinato`` process: ``settings`` are ``OSTINATO_*`` in lower case."""
        base: dict[str, Any] = {
            "database_url": self.url,
            "broker_url": self.broker_url,
            "handler_modules": HANDLERS,
            "worker_threads": 4,
        }
        base.update(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSTINATO_")}
        env.update({f"OSTINATO_{key.upper()}": str(value) for key, value in base.items()})
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def spawn(self, role: str, *args: str, name: str | None = None, **settings: Any) -> Process:
        """Start ``ostinato ROLE ARGS`` with this engine's settings (and ``settings``)."""
        name = name or f"{role}-{sum(1 for p in self.processes if p.name.startswith(role)) + 1}"
        log = self.logs / f"{name}.log"
        popen = subprocess.Popen(
            [str(Path(sys.executable).parent / "ostinato"), role, *args],
            env=self.env(**settings), cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        process = Process(name=name, popen=popen, log=log)
        self.processes.append(process)
        return process

    def scheduler(self, **settings: Any) -> Process:
        return self.spawn("scheduler", **settings)

    def worker(self, **settings: Any) -> Process:
        return self.spawn("worker", **settings)

    async def start(self, *, schedulers: int = 1, workers: int = 1, **settings: Any) -> list[Process]:
        """Start processes and wait until each worker consumes and the schedulers hold connections."""
        started = [self.worker(**settings) for _ in range(workers)]
        started += [self.scheduler(**settings) for _ in range(schedulers)]
        for process in started[:workers]:
            await self.until_logged(process, "consuming from")
        await eventually(
            lambda: self._at_least(schedulers), timeout=30, what=f"{schedulers} scheduler(s) to connect"
        )
        return started

    async def _at_least(self, count: int) -> bool:
        return await self.backends() >= count

    def stop(self, *processes: Process) -> None:
        """SIGTERM the given processes (all by default) at once, and wait for each."""
        chosen = list(processes) or self.processes
        for process in chosen:
            process.terminate()
        for process in chosen:
            process.wait()

    async def until_logged(self, process: Process, text: str, *, timeout: float = 20.0) -> None:
        """Wait until ``process`` has written ``text`` to its log."""

        async def probe() -> bool:
            if not process.alive:
                raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.output()[-3000:]}")
            return text in process.output()

        await eventually(probe, timeout=timeout, what=f"{process.name} to log {text!r}")

    def report(self) -> str:
        """Every process's log, for a failed test's report."""
        parts = []
        for process in self.processes:
            status = "running" if process.alive else f"exit {process.popen.returncode}"
            parts.append(f"==== {process.name} (pid {process.pid}, {status}) ====\n{process.output()[-6000:]}")
        return "\n".join(parts)

    # -- definitions ---------------------------------------------------------------

    async def define(self, **spec: Any) -> JobEndpoint:
        """Define an endpoint through the endpoints service: a no-op Python handler every
        second unless ``spec`` says otherwise."""
        self._names += 1
        definition: dict[str, Any] = {
            "name": f"endpoint-{self._names}",
            "target": {"kind": "python", "handler": "itest.noop"},
            "schedule": {"interval_s": 1},
        }
        definition.update(spec)
        return await self.endpoints.create(TENANT, definition)

    async def one_slot_now(self, **spec: Any) -> str:
        """An hourly endpoint whose one-shot hint fires a first slot in half a second (its id):
        that slot and its retries are all that runs while a test lasts."""
        endpoint = await self.define(schedule={"interval_s": 3600}, **spec)
        run_at = datetime.now(timezone.utc) + timedelta(milliseconds=500)
        await self.endpoints.set_oneshot_hint(TENANT, endpoint.id, {"run_at": run_at.isoformat(), "ttl_s": 600})
        return endpoint.id

    async def seed(self, count: int, *, interval_s: float, first_at: datetime) -> list[str]:
        """``count`` no-op endpoints every ``interval_s`` with their first slot at ``first_at``,
        stored in one transaction (faster than the service for thousands); their ids."""
        from attrs import evolve

        from domain.schedules import IntervalSchedule
        from domain.targets import PythonTarget

        now = datetime.now(timezone.utc)
        ids: list[str] = []
        async with self.store.unit_of_work() as uow:
            for i in range(count):
                endpoint = JobEndpoint.new(
                    tenant_id=TENANT, name=f"seeded-{i}", target=PythonTarget(handler="itest.noop"),
                    schedule=IntervalSchedule(interval=timedelta(seconds=interval_s)), now=now,
                )
                await uow.endpoints.add(evolve(endpoint, next_run_at=first_at))
                ids.append(endpoint.id)
            await uow.commit()
        return ids

    async def endpoint(self, endpoint: JobEndpoint | str) -> JobEndpoint:
        """The endpoint as stored now."""
        endpoint_id = endpoint if isinstance(endpoint, str) else endpoint.id
        return await self.endpoints.get(TENANT, endpoint_id)

    # -- reading the record -------------------------------------------------------------

    async def runs(self, endpoint: JobEndpoint | str | None = None) -> list[RunRow]:
        """Runs (of ``endpoint``, or all), by slot time, then attempt."""
        query = f"SELECT {RUN_COLUMNS} FROM runs"
        args: list[Any] = []
        if endpoint is not None:
            query += " WHERE endpoint_id = $1"
            args.append(endpoint if isinstance(endpoint, str) else endpoint.id)
        query += " ORDER BY scheduled_at, attempt, created_at"
        return [RunRow(**dict(row)) for row in await pg_fetch(self.dsn, query, *args)]

    async def runs_until(
        self, endpoint: JobEndpoint | str | None, done: Callable[[list[RunRow]], bool], *, timeout: float, what: str
    ) -> list[RunRow]:
        """Wait until ``done(runs)`` holds for the runs of ``endpoint``; return them."""
        latest: list[RunRow] = []

        async def probe() -> bool:
            nonlocal latest
            latest = await self.runs(endpoint)
            return done(latest)

        try:
            await eventually(probe, timeout=timeout, what=what)
        except AssertionError as exc:
            summary = [(r.source, r.attempt, r.status, r.scheduled_at.isoformat()) for r in latest[-10:]]
            raise AssertionError(f"{exc}; runs so far ({len(latest)}), last ones: {summary}") from None
        return latest

    async def unfinished(self) -> int:
        rows = await pg_fetch(self.dsn, "SELECT count(*) AS n FROM runs WHERE status IN ('pending', 'running')")
        return rows[0]["n"]

    async def backends(self) -> int:
        """Connections the processes under test hold to this test's database."""
        rows = await pg_fetch(
            self.dsn,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM $1",
            TEST_APP,
        )
        return rows[0]["n"]

    async def close(self) -> None:
        self.stop()
        await self.store.dispose()


# -- fixtures ---------------------------------------------------------------------------


async def create_database() -> str:
    """A fresh database migrated to head (its SQLAlchemy URL)."""
    from migrations.runner import upgrade

    name = f"ostinato_engine_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await pg_execute(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    url = asyncpg_url(POSTGRES_URL, name)
    await asyncio.to_thread(upgrade, url, "head")
    return url


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    await wait_for_postgres(timeout=60)
    await pg_execute(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
async def engine_database() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own, migrated; dropped afterwards."""
    require_postgres()
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def engine(request: pytest.FixtureRequest, engine_database: str, tmp_path: Path) -> AsyncIterator[Engine]:
    """The engine on this test's database and Redis database 13; processes are started by the test."""
    require_redis()
    flush_redis()
    logs = tmp_path / "logs"
    logs.mkdir()
    instance = Engine(engine_database, REDIS_URL, logs)
    request.node.ostinato_engine = instance
    try:
        yield instance
    finally:
        await asyncio.to_thread(instance.stop)
        await instance.store.dispose()
        await wait_for_redis(timeout=30)
        flush_redis()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    report = yield
    engine_instance = getattr(item, "ostinato_engine", None)
    if engine_instance is not None and report.failed and report.when == "call":
        report.sections.append(("ostinato processes", engine_instance.report()))
    return report


# -- the shared servers, for chaos tests ---------------------------------------------------


async def wait_for_postgres(*, timeout: float) -> None:
    async def up() -> bool:
        try:
            await pg_execute(POSTGRES_URL, "SELECT 1")
            return True
        except Exception:
            return False

    await eventually(up, timeout=timeout, what="PostgreSQL to accept connections", every=0.25)


async def wait_for_redis(*, timeout: float) -> None:
    import redis

    async def up() -> bool:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(await asyncio.to_thread(client.ping))
        except redis.RedisError:
            return False
        finally:
            client.close()

    await eventually(up, timeout=timeout, what="Redis to answer", every=0.25)


def _pg_ctl(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action],
        capture_output=True, text=True, timeout=120,
    )


async def restart_postgres() -> None:
    """Restart the PostgreSQL cluster (every connection drops) and wait until it serves again."""
    done = await asyncio.to_thread(_pg_ctl, "restart")
    if done.returncode != 0:
        await ensure_postgres()
        raise AssertionError(f"pg_ctlcluster restart failed: {done.stderr or done.stdout}")
    await wait_for_postgres(timeout=60)


async def ensure_postgres() -> None:
    """Start PostgreSQL if it is not serving (the end of every chaos test, however it ended)."""
    try:
        await wait_for_postgres(timeout=3)
        return
    except AssertionError:
        pass
    await asyncio.to_thread(_pg_ctl, "start")
    await wait_for_postgres(timeout=60)


async def stop_redis() -> None:
    """Shut Redis down without saving: every queued message is gone, as after a crash."""
    await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=30)

    async def down() -> bool:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        try:
            await asyncio.to_thread(client.ping)
            return False
        except redis.RedisError:
            return True
        finally:
            client.close()

    await eventually(down, timeout=15, what="Redis to stop")


async def start_redis() -> None:
    """Start Redis as the machine's CI does, and wait until it answers."""
    try:
        await wait_for_redis(timeout=1)
        return
    except AssertionError:
        pass
    done = await asyncio.to_thread(subprocess.run, REDIS_START, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"redis-server did not start: {done.stderr or done.stdout}")
    await wait_for_redis(timeout=30)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


LOOKAHEAD = timedelta(milliseconds=100)
"""How far ahead the schedulers these tests start fire an endpoint (``OSTINATO_SCHEDULER_LOOKAHEAD_MS``'s default)."""


def fired_at(run: RunRow) -> datetime:
    """The moment the governor planned the run's successor from: its slot when the scheduler fired
    it ahead of time, the tick's time when it fired it late (``next = now + interval``)."""
    return max(run.created_at, run.scheduled_at)


def assert_not_early(run: RunRow) -> None:
    """Fired no more than the lookahead ahead of its slot, and started at or after the slot."""
    assert run.created_at >= run.scheduled_at - LOOKAHEAD, run
    assert run.started_at is None or run.started_at >= run.scheduled_at, run
