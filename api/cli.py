"""The ``ostinato`` command."""

from __future__ import annotations

import sys

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
def serve() -> None:
    """Run Ostinato in one process on its embedded default (SQLite file, in-process broker)."""
    from migrations.runner import upgrade

    settings = _settings()
    if settings.database_kind != "memory":
        upgrade(settings.database_url, "head")
    typer.echo(f"ostinato: database {_redact(settings.database_url)} migrated")
    typer.echo(f"ostinato: would serve the API on http://{settings.host}:{settings.port} with "
               f"{'the in-process broker' if not settings.broker_url else _redact(settings.broker_url)}")


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
