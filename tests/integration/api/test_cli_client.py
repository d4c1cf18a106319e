"""``ostinato jobs|endpoints|runs``: the CLI client against a live server (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.cli import app
from api.http import create_app
from api.settings import load_settings
from domain.tokens import Role
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher


class LiveServer:
    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url = url
        self.tokens = tokens


@pytest.fixture
def server() -> Iterator[LiveServer]:
    container = bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())

    async def issue() -> dict[str, str]:
        return {
            role.value: (await container.tokens.create(TENANT, role=role, name=role.value)).secret
            for role in (Role.ADMIN, Role.VIEWER)
        }

    tokens = asyncio.run(issue())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uvicorn_server = uvicorn.Server(uvicorn.Config(create_app(container), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", tokens)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def ostinato(server: LiveServer, monkeypatch: pytest.MonkeyPatch):
    """Run ``ostinato …`` as the admin against the live server; returns the result."""
    monkeypatch.setenv("OSTINATO_URL", server.url)
    monkeypatch.setenv("OSTINATO_TOKEN", server.tokens["admin"])
    monkeypatch.delenv("OSTINATO_OUTPUT", raising=False)

    def run(*args: str, input: str | None = None, expect: int = 0) -> Any:
        result = CliRunner().invoke(app, list(args), input=input)
        assert result.exit_code == expect, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return result

    return run


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)


def test_jobs_are_created_listed_and_shown_by_slug(ostinato):
    created = as_json(ostinato("jobs", "create", "--slug", "billing", "--name", "Billing", "--label", "team=pay", "-o", "json"))
    ostinato("jobs", "create", "--slug", "reports", "--name", "Reports")

    listed = as_json(ostinato("jobs", "list", "--label", "team=pay", "--output", "json"))
    shown = as_json(ostinato("jobs", "get", "billing", "-o", "json"))
    table = ostinato("jobs", "list").stdout

    assert created["labels"] == {"team": "pay"}
    assert [job["slug"] for job in listed["items"]] == ["billing"]
    assert shown == created
    assert "SLUG" in table and "billing" in table and "reports" in table and "team=pay" in table


def test_a_job_is_paused_resumed_and_archived_by_slug(ostinato):
    ostinato("jobs", "create", "--slug", "billing", "--name", "Billing")

    assert as_json(ostinato("jobs", "pause", "billing", "-o", "json"))["status"] == "paused"
    assert as_json(ostinato("jobs", "resume", "billing", "-o", "json"))["status"] == "active"
    assert as_json(ostinato("jobs", "archive", "billing", "-o", "json"))["status"] == "archived"
    assert as_json(ostinato("jobs", "get", "billing", "-o", "json"))["status"] == "archived"


def test_endpoints_are_defined_from_a_file_and_operated(ostinato, tmp_path: Path):
    ostinato("jobs", "create", "--slug", "billing", "--name", "Billing")
    spec = tmp_path / "endpoint.json"
    spec.write_text(json.dumps(HTTP_ENDPOINT))

    endpoint = as_json(ostinato("endpoints", "create", "-f", str(spec), "--job", "billing", "-o", "json"))
    paused = as_json(ostinato("endpoints", "pause", endpoint["id"], "--until", "2026-12-31T00:00:00Z", "-o", "json"))
    resumed = as_json(ostinato("endpoints", "resume", endpoint["id"], "-o", "json"))
    hinted = as_json(ostinato("endpoints", "hint", endpoint["id"], "--every", "15", "--ttl", "600", "--reason", "backlog", "-o", "json"))
    unhinted = as_json(ostinato("endpoints", "unhint", endpoint["id"], "-o", "json"))
    in_job = as_json(ostinato("jobs", "endpoints", "billing", "-o", "json"))
    table = ostinato("endpoints", "list", "--job", "billing").stdout

    assert endpoint["job_id"] is not None
    assert paused["paused_until"] == "2026-12-31T00:00:00Z"
    assert resumed["paused_until"] is None
    assert hinted["hints"]["interval"]["interval_s"] == 15
    assert hinted["next_run_source"] == "hint-interval"
    assert unhinted["hints"] == {"interval": None, "oneshot": None}
    assert [e["id"] for e in in_job["items"]] == [endpoint["id"]]
    assert "sync-invoices" in table and "every 60s" in table


def test_a_definition_is_read_from_stdin(ostinato):
    endpoint = as_json(ostinato("endpoints", "create", "-f", "-", "-o", "json", input=json.dumps(HTTP_ENDPOINT)))

    assert endpoint["name"] == "sync-invoices"


def test_runs_are_listed_empty_at_first(ostinato):
    assert as_json(ostinato("runs", "list", "-o", "json")) == {"items": [], "next_cursor": None}
    assert "no runs" in ostinato("runs", "list").stdout


def test_a_refusal_prints_the_apis_error_with_each_field_and_exits_1(ostinato, tmp_path: Path):
    spec = tmp_path / "endpoint.json"
    spec.write_text(json.dumps({**HTTP_ENDPOINT, "schedule": {"cron": "*/5 * * *"}}))

    result = ostinato("endpoints", "create", "-f", str(spec), expect=1)

    assert "validation_failed" in result.stderr
    assert "schedule.cron: expected 5 fields" in result.stderr
    assert result.stdout == ""


def test_a_viewer_is_refused_changes(ostinato, server, monkeypatch):
    monkeypatch.setenv("OSTINATO_TOKEN", server.tokens["viewer"])

    result = ostinato("jobs", "create", "--slug", "billing", "--name", "Billing", expect=1)

    assert "forbidden" in result.stderr


def test_an_unknown_job_slug_answers_not_found(ostinato):
    result = ostinato("jobs", "get", "nope", expect=1)

    assert "not_found" in result.stderr


def test_without_a_token_the_command_says_how_to_get_one(ostinato, monkeypatch):
    monkeypatch.delenv("OSTINATO_TOKEN")

    result = ostinato("jobs", "list", expect=2)

    assert "OSTINATO_TOKEN" in result.stderr


def test_an_unreachable_server_is_named(ostinato, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    result = ostinato("jobs", "list", "--url", f"http://127.0.0.1:{port}", expect=2)

    assert f"127.0.0.1:{port}" in result.stderr
