"""``ostinato tokens create``: issues a token into the configured database and prints it once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.bootstrap import bootstrap
from api.cli import app
from api.settings import load_settings
from domain.audit import AuditQuery
from domain.tokens import Role
from tests.integration.api.conftest import RecordingDispatcher


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ostinato.db'}"
    monkeypatch.setenv("OSTINATO_DATABASE_URL", url)
    return url


def test_a_created_token_is_printed_once_and_authenticates(database):
    result = CliRunner().invoke(app, ["tokens", "create", "--tenant", "acme", "--role", "operator", "--name", "deploys"])

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("ost_") and "\n" not in secret
    assert secret not in result.stderr

    async def check():
        container = bootstrap(load_settings(database_url=database), dispatcher=RecordingDispatcher())
        try:
            return await container.tokens.authenticate(secret), (await container.audit.list("acme", AuditQuery())).items
        finally:
            await container.close()

    principal, [entry] = asyncio.run(check())
    assert (principal.tenant_id, principal.role, principal.name) == ("acme", Role.OPERATOR, "deploys")
    assert (entry.action, entry.target_id, entry.token_id) == ("token.create", principal.token_id, None)


def test_an_unknown_role_is_refused_naming_it(database):
    result = CliRunner().invoke(app, ["tokens", "create", "--tenant", "acme", "--role", "root"])

    assert result.exit_code == 2
    assert "role" in result.stderr
    assert result.stdout == ""


def test_the_memory_store_is_refused(monkeypatch):
    monkeypatch.setenv("OSTINATO_DATABASE_URL", "memory://")

    result = CliRunner().invoke(app, ["tokens", "create", "--tenant", "acme", "--role", "admin"])

    assert result.exit_code == 2
    assert "OSTINATO_DATABASE_URL" in result.stderr
