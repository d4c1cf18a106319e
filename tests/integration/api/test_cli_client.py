"""``ostinato jobs|endpoints|runs|workflows|workflow-runs|events``: the CLI client against a live server (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from adapters.memory import MemoryStore
from api.bootstrap import Container, bootstrap
from api.cli import app
from api.http import create_app
from api.settings import load_settings
from domain.ids import new_id
from domain.run_logs import LogLine
from domain.runs import Run, RunSource
from domain.tokens import Role
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher, workflow_definition


class LiveServer:
    def __init__(self, url: str, tokens: dict[str, str], container: Container) -> None:
        self.url = url
        self.tokens = tokens
        self.container = container  # its memory store may be seeded from the test's thread


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
        yield LiveServer(f"http://127.0.0.1:{port}", tokens, container)
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


# -- the engine's controls -------------------------------------------------------------


@pytest.fixture
def endpoint(ostinato, tmp_path: Path) -> dict[str, Any]:
    spec = tmp_path / "endpoint.json"
    spec.write_text(json.dumps(HTTP_ENDPOINT))
    return as_json(ostinato("endpoints", "create", "-f", str(spec), "-o", "json"))


def seed(server: LiveServer, endpoint: dict[str, Any], *, dead: bool = False, logs: Sequence[tuple[str, str]] = ()) -> Run:
    """Store a run of ``endpoint`` that failed (a dead letter when ``dead``), with log lines (level, message)."""
    container = server.container

    async def store() -> Run:
        now = container.clock.now()
        run = Run.scheduled(
            tenant_id=TENANT, endpoint_id=endpoint["id"], job_id=None, source=RunSource.BASELINE_INTERVAL,
            scheduled_at=now - timedelta(seconds=30), now=now, slot=f"test:{new_id()}",
        ).start(at=now, worker="w-1").fail(at=now, error="HTTP 503 from billing")
        if dead:
            run = run.dead_letter()
        async with container.uow() as uow:
            await uow.runs.add(run)
            await uow.run_logs.append([
                LogLine(run_id=run.id, tenant_id=TENANT, seq=seq, at=now, level=level, message=message)
                for seq, (level, message) in enumerate(logs, start=1)
            ])
            await uow.commit()
        return run

    return asyncio.run(store())


def test_an_endpoint_is_run_now_with_params_and_its_health_shows_the_run(ostinato, endpoint):
    run = as_json(ostinato(
        "endpoints", "run", endpoint["id"], "--params-json", '{"full": true, "since": "2025-12-01"}',
        "--param", "since=2026-01-01", "--param", "note=a=b", "-o", "json",
    ))
    health = as_json(ostinato("endpoints", "health", endpoint["id"], "-o", "json"))
    table = ostinato("endpoints", "health", endpoint["id"]).stdout

    assert (run["endpoint_id"], run["source"], run["status"]) == (endpoint["id"], "manual", "pending")
    assert run["params"] == {"full": True, "since": "2026-01-01", "note": "a=b"}  # --param wins over --params-json
    assert (health["pending"], health["finished"], health["success_rate"]) == (1, 0, None)
    assert health["next_run_source"] == "baseline-interval"
    assert "1 pending, 0 running" in table
    assert "(baseline-interval)" in table


def test_health_shows_the_last_failure_and_the_dead_letters_to_retry(ostinato, server, endpoint):
    dead = seed(server, endpoint, dead=True)

    table = ostinato("endpoints", "health", endpoint["id"], "--window", "10").stdout

    assert "the last 1 finished runs (at most 10)" in table
    assert "0% (0 of 1 that succeeded or failed)" in table
    assert f"run {dead.id}  HTTP 503 from billing" in table
    assert f"ostinato runs retry {dead.id}" in table


def test_bad_run_params_are_refused_before_calling_the_server(ostinato, endpoint):
    not_an_object = ostinato("endpoints", "run", endpoint["id"], "--params-json", "[1]", expect=2)
    not_json = ostinato("endpoints", "run", endpoint["id"], "--params-json", "{full", expect=2)
    not_a_pair = ostinato("endpoints", "run", endpoint["id"], "--param", "full", expect=2)

    assert "expected a JSON object" in not_an_object.stderr
    assert "not JSON" in not_json.stderr
    assert "expected key=value" in not_a_pair.stderr
    assert as_json(ostinato("runs", "list", "-o", "json"))["items"] == []


def test_hints_are_set_and_cleared_one_kind_at_a_time(ostinato, endpoint):
    interval = as_json(ostinato(
        "endpoints", "hint", endpoint["id"], "--interval-s", "15", "--ttl-s", "600", "--reason", "backlog", "-o", "json",
    ))
    oneshot = as_json(ostinato(
        "endpoints", "hint", endpoint["id"], "--oneshot-at", "2026-01-05T12:00:30Z", "--ttl-s", "600", "-o", "json",
    ))
    without_interval = as_json(ostinato("endpoints", "hint", endpoint["id"], "--clear", "interval", "-o", "json"))
    without_either = as_json(ostinato("endpoints", "hint", endpoint["id"], "--clear", "oneshot", "-o", "json"))

    assert (interval["hints"]["interval"]["interval_s"], interval["hints"]["interval"]["reason"]) == (15, "backlog")
    assert oneshot["hints"]["oneshot"]["run_at"] == "2026-01-05T12:00:30Z"
    assert oneshot["hints"]["interval"] is not None
    assert without_interval["hints"]["interval"] is None
    assert without_interval["hints"]["oneshot"]["run_at"] == "2026-01-05T12:00:30Z"
    assert without_either["hints"] == {"interval": None, "oneshot": None}


def test_clear_takes_a_kind_and_no_other_hint_option(ostinato, endpoint):
    unknown = ostinato("endpoints", "hint", endpoint["id"], "--clear", "both", expect=2)
    mixed = ostinato("endpoints", "hint", endpoint["id"], "--clear", "interval", "--interval-s", "15", expect=2)

    assert "interval or oneshot" in unknown.stderr
    assert "no other hint option" in mixed.stderr


def test_a_run_is_canceled_once_and_a_second_cancel_is_refused(ostinato, endpoint):
    run = as_json(ostinato("endpoints", "run", endpoint["id"], "-o", "json"))

    canceled = as_json(ostinato("runs", "cancel", run["id"], "-o", "json"))
    again = ostinato("runs", "cancel", run["id"], expect=1)

    assert (canceled["id"], canceled["status"]) == (run["id"], "canceled")
    assert "invalid_transition" in again.stderr
    assert as_json(ostinato("runs", "get", run["id"], "-o", "json"))["status"] == "canceled"


def test_a_runs_logs_are_shown_in_order_and_verbatim(ostinato, server, endpoint):
    run = seed(server, endpoint, logs=[("info", "POST https://billing.example/sync"), ("error", "[red]HTTP 503[/red]")])

    logs = as_json(ostinato("runs", "logs", run.id, "-o", "json"))
    table = ostinato("runs", "logs", run.id).stdout
    empty = ostinato("runs", "logs", seed(server, endpoint).id).stdout

    assert [(line["seq"], line["level"], line["message"]) for line in logs["items"]] == [
        (1, "info", "POST https://billing.example/sync"), (2, "error", "[red]HTTP 503[/red]"),
    ]
    assert "LEVEL" in table and "[red]HTTP 503[/red]" in table  # text, not rich markup
    assert "no log lines" in empty


def test_dead_letters_are_listed_and_retried(ostinato, server, endpoint):
    seed(server, endpoint)  # failed, but not on its last attempt
    dead = seed(server, endpoint, dead=True)

    listed = as_json(ostinato("runs", "dead-letters", "--endpoint", endpoint["id"], "-o", "json"))
    table = ostinato("runs", "dead-letters").stdout
    retried = as_json(ostinato("runs", "retry", dead.id, "-o", "json"))
    again = ostinato("runs", "retry", dead.id, expect=1)

    assert [run["id"] for run in listed["items"]] == [dead.id]
    assert dead.id in table and "HTTP 503 from billing" in table
    assert (retried["source"], retried["status"], retried["retry_of"]) == ("retry", "pending", dead.id)
    assert "invalid_transition" in again.stderr
    assert "no dead letters" in ostinato("runs", "dead-letters").stdout


# -- workflows, workflow runs and events ----------------------------------------------------


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow_definition()))
    return path


def test_a_workflow_is_created_from_a_file_listed_and_shown(ostinato, workflow_file):
    created = as_json(ostinato("workflows", "create", str(workflow_file), "-o", "json"))
    listed = as_json(ostinato("workflows", "list", "-o", "json"))
    shown = as_json(ostinato("workflows", "show", "nightly-billing", "-o", "json"))
    table = ostinato("workflows", "list").stdout
    detail = ostinato("workflows", "show", "nightly-billing").stdout

    assert (created["slug"], created["version"]) == ("nightly-billing", 1)
    assert [w["slug"] for w in listed["items"]] == ["nightly-billing"]
    assert shown == created
    assert "SLUG" in table and "nightly-billing" in table and "event usage.imported, manual" in table
    assert "DEPENDS ON" in detail and "python billing.compute" in detail and "steps.fetch.output.count > 0" in detail


def test_a_bad_workflow_definition_prints_each_path_and_exits_1(ostinato, tmp_path: Path):
    steps = workflow_definition()["steps"]
    steps[2]["depends_on"] = ["bil"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(workflow_definition(steps=steps)))

    result = ostinato("workflows", "create", str(path), expect=1)

    assert "validation_failed" in result.stderr
    assert "steps[2].depends_on[0]: unknown step 'bil'" in result.stderr
    assert as_json(ostinato("workflows", "list", "-o", "json"))["items"] == []


def test_a_missing_definition_file_is_named(ostinato, tmp_path: Path):
    result = ostinato("workflows", "create", str(tmp_path / "nope.json"), expect=2)

    assert "nope.json" in result.stderr


def test_an_update_makes_the_next_version_and_show_reads_an_older_one(ostinato, workflow_file, tmp_path: Path):
    ostinato("workflows", "create", str(workflow_file))
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(workflow_definition(name="Nightly billing v2")))

    updated = as_json(ostinato("workflows", "update", "nightly-billing", str(path), "-o", "json"))
    first = as_json(ostinato("workflows", "show", "nightly-billing", "--version", "1", "-o", "json"))

    assert (updated["version"], updated["name"]) == (2, "Nightly billing v2")
    assert (first["version"], first["name"]) == (1, "Nightly billing")


def test_the_plan_is_previewed_as_stages(ostinato, workflow_file):
    ostinato("workflows", "create", str(workflow_file))

    plan = as_json(ostinato("workflows", "plan", "nightly-billing", "-o", "json"))
    table = ostinato("workflows", "plan", "nightly-billing").stdout

    assert plan["stages"] == [["fetch"], ["bill"], ["notify"]]
    assert plan["planner"] == "deterministic"
    assert "stage 1" in table and "stage 3" in table and "notify" in table


def test_a_workflow_is_run_with_input_and_the_run_shown_listed_and_canceled(ostinato, workflow_file):
    ostinato("workflows", "create", str(workflow_file))

    run = as_json(ostinato(
        "workflows", "run", "nightly-billing", "--input-json", '{"customer_id": "c-1", "full": true}',
        "--input", "customer_id=c-2", "-o", "json",
    ))
    runs = as_json(ostinato("workflows", "runs", "nightly-billing", "-o", "json"))
    shown = as_json(ostinato("workflow-runs", "show", run["id"], "-o", "json"))
    same = as_json(ostinato("workflows", "run-show", run["id"], "-o", "json"))
    table = ostinato("workflow-runs", "show", run["id"]).stdout
    steps = ostinato("workflow-runs", "steps", run["id"]).stdout
    canceled = as_json(ostinato("workflow-runs", "cancel", run["id"], "-o", "json"))
    again = ostinato("workflow-runs", "cancel", run["id"], expect=1)

    assert run["input"] == {"customer_id": "c-2", "full": True}  # --input wins over --input-json
    assert (run["trigger"], run["workflow_version"]) == ("manual", 1)
    assert [r["id"] for r in runs["items"]] == [run["id"]]
    assert [s["step_key"] for s in shown["steps"]] == ["fetch", "bill", "notify"]
    assert same == shown
    assert "STEP" in table and "fetch" in table and "version 1" in table
    assert "ATTEMPT" in steps and "notify" in steps
    assert (canceled["id"], canceled["status"]) == (run["id"], "canceled")
    assert "invalid_transition" in again.stderr
    assert "canceled" in ostinato("workflows", "runs", "nightly-billing").stdout


def test_bad_run_input_is_refused_before_calling_the_server(ostinato, workflow_file):
    ostinato("workflows", "create", str(workflow_file))

    not_an_object = ostinato("workflows", "run", "nightly-billing", "--input-json", "[1]", expect=2)
    not_a_pair = ostinato("workflows", "run", "nightly-billing", "--input", "customer", expect=2)

    assert "expected a JSON object" in not_an_object.stderr
    assert "expected key=value" in not_a_pair.stderr
    assert as_json(ostinato("workflows", "runs", "nightly-billing", "-o", "json"))["items"] == []


def test_a_workflow_is_archived_and_then_refuses_to_run(ostinato, workflow_file):
    ostinato("workflows", "create", str(workflow_file))

    archived = as_json(ostinato("workflows", "archive", "nightly-billing", "-o", "json"))
    refused = ostinato("workflows", "run", "nightly-billing", expect=1)

    assert archived["status"] == "archived"
    assert "invalid_transition" in refused.stderr
    assert "no workflows" in ostinato("workflows", "list").stdout
    assert [w["slug"] for w in as_json(ostinato("workflows", "list", "--status", "archived", "-o", "json"))["items"]] == [
        "nightly-billing"
    ]


def test_an_event_is_published_listed_and_starts_the_workflow_listening_to_it(ostinato, workflow_file):
    ostinato("workflows", "create", str(workflow_file))

    event = as_json(ostinato(
        "events", "publish", "usage.imported", "--payload-json", '{"customer_id": "c-7"}', "-o", "json",
    ))
    other = as_json(ostinato("events", "publish", "invoices.imported", "--payload", "count=3", "-o", "json"))
    listed = as_json(ostinato("events", "list", "-o", "json"))
    on_topic = as_json(ostinato("events", "list", "--topic", "invoices.imported", "-o", "json"))
    after = as_json(ostinato("events", "list", "--after-seq", str(other["seq"] - 1), "-o", "json"))
    table = ostinato("events", "list").stdout
    runs = as_json(ostinato("workflows", "runs", "nightly-billing", "-o", "json"))

    assert (event["seq"], event["topic"], event["payload"]) == (1, "usage.imported", {"customer_id": "c-7"})
    assert other["seq"] > event["seq"]  # the run it started recorded events of its own in between
    assert other["payload"] == {"count": "3"}
    seqs = [e["seq"] for e in listed["items"]]
    assert seqs == sorted(seqs) and {event["id"], other["id"]} <= {e["id"] for e in listed["items"]}
    assert [e["id"] for e in on_topic["items"]] == [other["id"]]
    assert [e["id"] for e in after["items"]] == [other["id"]]
    assert "TOPIC" in table and "usage.imported" in table and '{"customer_id":"c-7"}' in table
    assert [(r["trigger"], r["input"]) for r in runs["items"]] == [("event", {"customer_id": "c-7"})]


def test_a_viewer_may_read_workflows_but_not_run_them_or_publish(ostinato, server, workflow_file, monkeypatch):
    ostinato("workflows", "create", str(workflow_file))
    monkeypatch.setenv("OSTINATO_TOKEN", server.tokens["viewer"])

    assert as_json(ostinato("workflows", "show", "nightly-billing", "-o", "json"))["slug"] == "nightly-billing"
    assert "forbidden" in ostinato("workflows", "run", "nightly-billing", expect=1).stderr
    assert "forbidden" in ostinato("events", "publish", "usage.imported", expect=1).stderr
