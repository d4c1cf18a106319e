"""Process entry points: ``serve`` (everything in one process), ``worker`` and ``scheduler``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from api.bootstrap import Container, bootstrap, make_transport
from api.runtime import SchedulerLoop, start_worker
from api.settings import Settings
from domain.errors import AlreadyExists, NotFound
from domain.ids import DEFAULT_TENANT

log = logging.getLogger("ostinato")


def serve(settings: Settings, *, load: Iterable[Path] = ()) -> None:
    asyncio.run(_serve(settings, list(load)))


async def _serve(settings: Settings, load: list[Path]) -> None:
    container = bootstrap(settings)
    stop = _stop_on_signals()
    shared = container.uow if settings.database_kind == "memory" else None
    worker, _ = start_worker(settings, container.transport, uow=shared)
    scheduler = SchedulerLoop(container)
    try:
        await _first_admin_token(settings, container)
        for path in load:
            await load_definitions(container, path)
        tasks = [asyncio.create_task(scheduler.run(stop), name="scheduler")]
        server = _http_server(settings, container)
        if server is not None:
            tasks.append(asyncio.create_task(server.serve(), name="http"))
            log.info("serving the API on http://%s:%d", settings.host, settings.port)
        log.info("ostinato is running (database %s, %s); Ctrl-C stops it",
                 settings.database_kind, "in-process broker" if not settings.broker_url else "broker " + settings.broker_url.split("@")[-1])
        await stop.wait()
        log.info("stopping: finishing runs in progress")
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.to_thread(worker.stop)
        await container.close()
        container.transport.close()
        log.info("stopped")


def run_worker(settings: Settings, *, threads: int | None = None) -> None:
    """A worker process: consume run batches until SIGINT/SIGTERM, then finish the runs in hand."""
    transport = make_transport(settings)
    worker, binding = start_worker(settings, transport, threads=threads)
    log.info("worker %s consuming from %s", binding.identity, settings.broker_url.split("@")[-1])

    async def wait() -> None:
        await _stop_on_signals().wait()

    try:
        asyncio.run(wait())
    finally:
        worker.stop()
        transport.close()
        log.info("worker stopped after %d runs", binding.executed)


def run_scheduler(settings: Settings) -> None:
    async def main() -> None:
        container = bootstrap(settings)
        stop = _stop_on_signals()
        try:
            await SchedulerLoop(container).run(stop)
        finally:
            await container.close()
            container.transport.close()

    asyncio.run(main())


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _first_admin_token(settings: Settings, container: Container) -> None:
    """On the embedded default's first start, issue an admin token for tenant ``default`` and
    print it once: it is stored only as a hash."""
    if settings.database_kind != "sqlite":
        return
    from services.tokens import ensure_first_admin_token

    secret = await ensure_first_admin_token(container.tokens)
    if secret is not None:
        print(
            "\n  An admin token for tenant 'default' was created. It is shown this once:\n\n"
            f"      {secret}\n\n"
            f"  export OSTINATO_URL=http://{settings.host}:{settings.port} OSTINATO_TOKEN={secret}\n",
            flush=True,
        )


def _http_server(settings: Settings, container: Container) -> Any:
    import uvicorn

    from api.http import create_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # our loop owns the signals
            yield

    config = uvicorn.Config(create_app(container), host=settings.host, port=settings.port, log_level="warning", lifespan="on")
    return _Server(config)


async def load_definitions(container: Container, path: Path, *, tenant_id: str = DEFAULT_TENANT) -> None:
    """Define the jobs in a JSON file, skipping slugs and endpoint names that already exist, so
    loading the same file twice changes nothing. The file holds one job
    (``{"job": {…}, "endpoints": [{…}]}``) or several (``{"jobs": [{"job": …, "endpoints": …}]}``),
    in the API's vocabulary."""
    document = json.loads(Path(path).read_text())
    for entry in document.get("jobs", [document]):
        spec = dict(entry["job"])
        endpoints = entry.get("endpoints", [])
        try:
            job = await container.jobs.create(tenant_id, spec)
            log.info("defined job %s from %s", job.slug, path)
        except AlreadyExists:
            job = await container.jobs.get_by_slug(tenant_id, spec["slug"])
        for endpoint_spec in endpoints:
            try:
                endpoint = await container.endpoints.create(tenant_id, endpoint_spec, job_id=job.id)
                log.info("defined endpoint %s (next run %s, %s)", endpoint.name, endpoint.next_run_at, endpoint.next_run_source)
            except (AlreadyExists, NotFound):
                continue
