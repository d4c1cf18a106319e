"""The ``ostinato`` command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from api.settings import SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Ostinato: jobs on schedules, workflows, a record of every run.")


def _settings():
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"ostinato: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate(revision: str = typer.Option("head", help="Target revision (default: the newest)")) -> None:
    """Bring the database named by OSTINATO_DATABASE_URL to the newest schema."""
    from migrations.runner import upgrade

    settings = _settings()
    if settings.database_kind == "memory":
        typer.echo("memory:// needs no migration")
        return
    upgrade(settings.database_url, revision)
    typer.echo(f"database {_redact(settings.database_url)} is at {revision}")


@app.command()
def serve(
    load: list[Path] = typer.Option([], "--load", help="JSON files of jobs and endpoints to define at start (skipped when the slug exists)"),
) -> None:
    """Run Ostinato in one process: scheduler, workers and the HTTP API, on the embedded default
    (SQLite file, in-process broker) unless OSTINATO_DATABASE_URL / OSTINATO_BROKER_URL say otherwise."""
    from api.serve import serve as run_serve

    settings = _settings()
    _setup_logging()
    _migrate_if_needed(settings)
    run_serve(settings, load=load)


@app.command()
def worker(threads: int = typer.Option(0, help="Worker threads (default: OSTINATO_WORKER_THREADS)")) -> None:
    """Execute runs from the broker named by OSTINATO_BROKER_URL (Redis or RabbitMQ)."""
    from api.serve import run_worker

    settings = _settings()
    if not settings.broker_url:
        typer.echo("ostinato: OSTINATO_BROKER_URL: a separate worker needs redis://… or amqp://…; "
                   "with the in-process broker, workers run inside `ostinato serve`", err=True)
        raise typer.Exit(2)
    _setup_logging()
    run_worker(settings, threads=threads or None)


@app.command()
def scheduler() -> None:
    """Fire due endpoints and hand their runs to the broker; run as many as you like."""
    from api.serve import run_scheduler

    settings = _settings()
    if not settings.broker_url:
        typer.echo("ostinato: OSTINATO_BROKER_URL: a separate scheduler needs redis://… or amqp://…; "
                   "with the in-process broker, the scheduler runs inside `ostinato serve`", err=True)
        raise typer.Exit(2)
    _setup_logging()
    run_scheduler(settings)


tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: each bound to a tenant and a role, stored only as a hash.")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    tenant: str = typer.Option(..., help="The tenant the token acts for, e.g. default"),
    role: str = typer.Option(..., help="admin, operator or viewer"),
    name: str = typer.Option("", help="What the token is for, shown in token lists"),
) -> None:
    """Issue an API token and print its secret (on stdout, once: only its hash is stored)."""
    import asyncio

    from api.bootstrap import bootstrap
    from domain.errors import ValidationFailed
    from services.audit import Actor

    settings = _settings()
    if settings.database_kind == "memory":
        typer.echo("ostinato: OSTINATO_DATABASE_URL: memory:// forgets tokens when this command ends", err=True)
        raise typer.Exit(2)
    _migrate_if_needed(settings)

    class _NoDispatch:  # issuing a token runs nothing
        async def dispatch(self, items) -> None: ...

    async def issue():
        container = bootstrap(settings, dispatcher=_NoDispatch())
        try:
            async with container.audit.action(Actor(tenant_id=tenant), "token.create", "token", summary={"role": role, "name": name}):
                return await container.tokens.create(tenant, role=role, name=name)
        finally:
            await container.close()

    try:
        issued = asyncio.run(issue())
    except ValidationFailed as exc:
        typer.echo(f"ostinato: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"ostinato: issued {issued.token.role} token {issued.token.id} for tenant {tenant}; "
               "its secret follows and is not shown again", err=True)
    typer.echo(issued.secret)


def _register_client_commands() -> None:
    from api.client.commands import register
    from api.client.workflows import register as register_workflows

    register(app)
    register_workflows(app)


_register_client_commands()


def _migrate_if_needed(settings) -> None:
    if settings.database_kind == "memory":
        return
    from migrations.runner import upgrade

    upgrade(settings.database_url, "head")


def _setup_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _redact(url: str) -> str:
    """``url`` without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def main() -> None:
    try:
        app()
    except SettingsError as exc:  # pragma: no cover - guarded in _settings
        typer.echo(f"ostinato: {exc}", err=True)
        sys.exit(2)
