"""Workflows, their runs and events over the API, on every store, through the real services."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.api.conftest import HTTP_ENDPOINT, WORKFLOW
from tests.integration.api.conftest import workflow_definition as definition


async def a_workflow(client, tokens, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/workflows", json=definition(**changes), headers=tokens["admin"])
    assert response.status_code == 201, response.text
    return response.json()


async def audit_entries(client, tokens, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/audit?action={action}", headers=tokens["admin"])
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def listed(client, tokens, path: str, role: str = "viewer") -> list[dict[str, Any]]:
    response = await client.get(path, headers=tokens[role])
    assert response.status_code == 200, response.text
    return response.json()["items"]


# -- definition -------------------------------------------------------------------------


async def test_a_workflow_is_defined_and_read_back_in_the_same_vocabulary(client, tokens):
    created = await a_workflow(client, tokens)

    assert (created["slug"], created["version"], created["status"], created["planner"]) == (
        "nightly-billing", 1, "active", "deterministic",
    )
    assert created["created_at"] == created["updated_at"] == "2026-01-05T12:00:00Z"
    fetch, bill, notify = created["steps"]
    assert fetch == {
        **WORKFLOW["steps"][0], "depends_on": [], "when": None, "on_failure": "halt",
        "target": {"kind": "python", "handler": "billing.fetch", "params": {}},
    }
    assert (bill["when"], bill["on_failure"], bill["timeout_s"]) == ("steps.fetch.output.count > 0", "skip", None)
    assert bill["retry"] == {"max_attempts": 1, "backoff_s": 1.0, "backoff_max_s": 300.0, "jitter": True}
    assert notify["target"] == {
        "kind": "http", "method": "POST", "url": "https://hooks.example.com/finance", "headers": {}, "body": None,
    }
    assert created["triggers"] == WORKFLOW["triggers"]
    assert (await client.get("/v1/workflows/nightly-billing", headers=tokens["viewer"])).json() == created


async def test_defining_a_workflow_is_audited_with_its_shape(client, tokens):
    created = await a_workflow(client, tokens)

    [entry] = await audit_entries(client, tokens, "workflow.create")

    assert (entry["target_kind"], entry["target_id"], entry["token_id"]) == ("workflow", created["id"], tokens.ids["admin"])
    assert entry["summary"] == {
        "slug": "nightly-billing", "name": "Nightly billing", "steps": ["fetch", "bill", "notify"],
        "triggers": ["event", "manual"],
    }


def _broken_steps() -> list[dict[str, Any]]:
    steps = copy.deepcopy(WORKFLOW["steps"])
    steps[2]["depends_on"] = ["bil"]  # a typo
    steps[1]["when"] = "open('/etc/passwd')"
    steps.append({"key": "a", "target": {"kind": "python", "handler": "x.a"}, "depends_on": ["b"]})
    steps.append({"key": "b", "target": {"kind": "python", "handler": "x.b"}, "depends_on": ["a"]})
    return steps


async def test_a_bad_definition_is_refused_whole_naming_each_path_and_nothing_is_stored(client, tokens):
    response = await client.post(
        "/v1/workflows", json=definition(steps=_broken_steps(), triggers=[{"kind": "cron", "cron": "61 * * * *"}]),
        headers=tokens["admin"],
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    details = {d["path"]: d["message"] for d in error["details"]}
    assert "steps[2].depends_on[0]" in details and "unknown step 'bil'" in details["steps[2].depends_on[0]"]
    assert "steps[1].when" in details and "open" in details["steps[1].when"]
    cycles = [message for path, message in details.items() if "cycle" in message]
    assert cycles and any("a -> b -> a" in message or "b -> a -> b" in message for message in cycles)
    assert "triggers[0].cron" in details
    assert await listed(client, tokens, "/v1/workflows") == []
    assert (await client.get("/v1/workflows/nightly-billing", headers=tokens["viewer"])).status_code == 404
    assert await audit_entries(client, tokens, "workflow.create") == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"steps": []}, "steps", id="no steps"),
        pytest.param({"colour": "blue"}, "colour", id="an unknown field"),
        pytest.param({"steps": [{"key": "a"}]}, "steps[0].target", id="a step without a target"),
        pytest.param({"steps": [{"key": "a", "target": {"kind": "ftp"}}]}, "steps[0].target.kind", id="an unknown kind"),
        pytest.param({"triggers": [{"kind": "event"}]}, "triggers[0].topic", id="an event trigger without a topic"),
        pytest.param({"planner": "oracle"}, "planner", id="an unknown planner"),
    ],
)
async def test_a_definition_of_the_wrong_shape_names_the_field(client, tokens, change, path):
    response = await client.post("/v1/workflows", json=definition(**change), headers=tokens["admin"])

    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]
    assert await listed(client, tokens, "/v1/workflows") == []


async def test_a_taken_slug_is_a_conflict(client, tokens):
    await a_workflow(client, tokens)

    response = await client.post("/v1/workflows", json=definition(name="Again"), headers=tokens["admin"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_workflows_are_listed_newest_first_by_keyset_pages_and_filtered_by_status(client, tokens):
    for slug in ("first", "second", "third"):
        await a_workflow(client, tokens, slug=slug)
    await client.post("/v1/workflows/second/archive", headers=tokens["admin"])

    page = (await client.get("/v1/workflows?limit=1&status=active", headers=tokens["viewer"])).json()
    rest = (await client.get(f"/v1/workflows?limit=5&status=active&cursor={page['next_cursor']}", headers=tokens["viewer"])).json()
    archived = await listed(client, tokens, "/v1/workflows?status=archived")

    assert [w["slug"] for w in page["items"] + rest["items"]] == ["third", "first"]
    assert rest["next_cursor"] is None
    assert [w["slug"] for w in archived] == ["second"]


async def test_an_unknown_workflow_answers_404(client, tokens):
    for method, path in [
        ("GET", "/v1/workflows/nope"), ("PUT", "/v1/workflows/nope"), ("POST", "/v1/workflows/nope/archive"),
        ("POST", "/v1/workflows/nope/run"), ("GET", "/v1/workflows/nope/runs"), ("POST", "/v1/workflows/nope/plan"),
        ("GET", "/v1/workflow-runs/nope"), ("GET", "/v1/workflow-runs/nope/steps"),
        ("POST", "/v1/workflow-runs/nope/cancel"),
    ]:
        body = definition() if method == "PUT" else None
        response = await client.request(method, path, json=body, headers=tokens["admin"])
        assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert response.json()["error"]["code"] == "not_found"


# -- versions ---------------------------------------------------------------------------


async def test_an_update_makes_version_2_while_a_started_run_keeps_version_1(client, tokens):
    first = await a_workflow(client, tokens)
    run = (await client.post("/v1/workflows/nightly-billing/run", json={"input": {"customer_id": "c-1"}},
                             headers=tokens["operator"])).json()
    steps = copy.deepcopy(WORKFLOW["steps"][:2])

    response = await client.put(
        "/v1/workflows/nightly-billing", json={"name": "Nightly billing v2", "steps": steps}, headers=tokens["admin"],
    )

    assert response.status_code == 200, response.text
    second = response.json()
    assert (second["id"], second["version"], second["name"]) == (first["id"], 2, "Nightly billing v2")
    assert [s["key"] for s in second["steps"]] == ["fetch", "bill"]
    assert (second["triggers"], second["description"]) == ([], "")  # left out: the defaults
    assert (await client.get("/v1/workflows/nightly-billing", headers=tokens["viewer"])).json() == second
    assert (await client.get("/v1/workflows/nightly-billing?version=1", headers=tokens["viewer"])).json() == first
    kept = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=tokens["viewer"])).json()
    assert kept["workflow_version"] == 1
    assert [s["step_key"] for s in kept["steps"]] == ["fetch", "bill", "notify"]
    new_run = (await client.post("/v1/workflows/nightly-billing/run", headers=tokens["operator"])).json()
    assert new_run["workflow_version"] == 2
    [entry] = await audit_entries(client, tokens, "workflow.update")
    assert (entry["target_kind"], entry["target_id"]) == ("workflow", first["id"])
    assert entry["summary"]["version"] == 2


async def test_an_unknown_version_answers_404(client, tokens):
    await a_workflow(client, tokens)

    response = await client.get("/v1/workflows/nightly-billing?version=2", headers=tokens["viewer"])

    assert response.status_code == 404


async def test_an_update_cannot_change_the_slug_or_break_the_graph(client, tokens):
    first = await a_workflow(client, tokens)

    renamed = await client.put("/v1/workflows/nightly-billing", json=definition(slug="other"), headers=tokens["admin"])
    broken = await client.put("/v1/workflows/nightly-billing", json=definition(steps=_broken_steps()), headers=tokens["admin"])

    assert renamed.status_code == 422
    assert [d["path"] for d in renamed.json()["error"]["details"]] == ["slug"]
    assert broken.status_code == 422
    assert "steps[2].depends_on[0]" in [d["path"] for d in broken.json()["error"]["details"]]
    assert (await client.get("/v1/workflows/nightly-billing", headers=tokens["viewer"])).json() == first
    assert await audit_entries(client, tokens, "workflow.update") == []


async def test_an_archived_workflow_cannot_change_or_run(client, container, tokens):
    await a_workflow(client, tokens)

    archived = await client.post("/v1/workflows/nightly-billing/archive", headers=tokens["admin"])
    updated = await client.put("/v1/workflows/nightly-billing", json=definition(), headers=tokens["admin"])
    run = await client.post("/v1/workflows/nightly-billing/run", headers=tokens["operator"])

    assert archived.status_code == 200, archived.text
    assert archived.json()["status"] == "archived"
    assert (updated.status_code, updated.json()["error"]["code"]) == (409, "invalid_transition")
    assert (run.status_code, run.json()["error"]["code"]) == (409, "invalid_transition")
    assert await listed(client, tokens, "/v1/workflows/nightly-billing/runs") == []
    assert [e["action"] for e in await audit_entries(client, tokens, "workflow.*")] == ["workflow.archive", "workflow.create"]


# -- plans ------------------------------------------------------------------------------


async def test_the_plan_preview_shows_stages_rationale_and_planner_and_stores_nothing(client, tokens):
    await a_workflow(client, tokens, steps=[
        {"key": "fetch", "target": {"kind": "python", "handler": "x.fetch"}},
        {"key": "prices", "target": {"kind": "python", "handler": "x.prices"}},
        {"key": "bill", "target": {"kind": "python", "handler": "x.bill"}, "depends_on": ["fetch", "prices"]},
    ])

    response = await client.post("/v1/workflows/nightly-billing/plan", headers=tokens["viewer"])

    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["stages"] == [["fetch", "prices"], ["bill"]]
    assert (plan["planner"], plan["fallback_reason"]) == ("deterministic", None)
    assert isinstance(plan["rationale"], str)
    assert await listed(client, tokens, "/v1/workflows/nightly-billing/runs") == []


# -- runs -------------------------------------------------------------------------------


async def test_a_run_starts_with_its_input_and_is_listed_and_read_with_its_steps(client, tokens):
    await a_workflow(client, tokens)

    response = await client.post(
        "/v1/workflows/nightly-billing/run", json={"input": {"customer_id": "c-42"}}, headers=tokens["operator"],
    )

    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["workflow_version"], run["trigger"], run["input"]) == (1, "manual", {"customer_id": "c-42"})
    assert run["status"] in ("pending", "running")
    assert run["created_at"] == "2026-01-05T12:00:00Z"
    assert [r["id"] for r in await listed(client, tokens, "/v1/workflows/nightly-billing/runs")] == [run["id"]]
    detail = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=tokens["viewer"])).json()
    assert {k: v for k, v in detail.items() if k not in ("steps", "status", "plan", "started_at")} == {
        k: v for k, v in run.items() if k not in ("status", "plan", "started_at")
    }
    assert [s["step_key"] for s in detail["steps"]] == ["fetch", "bill", "notify"]
    for step in detail["steps"]:
        assert set(step) == {
            "step_key", "status", "remaining", "attempt", "job_run_id", "input", "output", "error", "skip_cause",
            "not_before", "started_at", "finished_at", "duration_s",
        }
    steps = (await client.get(f"/v1/workflow-runs/{run['id']}/steps", headers=tokens["viewer"])).json()
    assert steps == {"items": detail["steps"]}


async def test_running_is_audited_with_the_input_names_only(client, tokens):
    await a_workflow(client, tokens)

    run = (await client.post(
        "/v1/workflows/nightly-billing/run", json={"input": {"token": "s3cret-value"}}, headers=tokens["operator"],
    )).json()

    [entry] = await audit_entries(client, tokens, "workflow.run")
    assert (entry["target_kind"], entry["target_id"], entry["token_id"]) == ("workflow_run", run["id"], tokens.ids["operator"])
    assert entry["summary"] == {"workflow": "nightly-billing", "input": ["token"]}
    assert "s3cret-value" not in str(entry)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"input": ["a"]}, "input", id="input not an object"),
        pytest.param({"input": {}, "priority": 9}, "priority", id="an unknown field"),
    ],
)
async def test_a_bad_run_body_is_refused_and_starts_nothing(client, tokens, body, path):
    await a_workflow(client, tokens)

    response = await client.post("/v1/workflows/nightly-billing/run", json=body, headers=tokens["operator"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["error"]["details"]] == [path]
    assert await listed(client, tokens, "/v1/workflows/nightly-billing/runs") == []


async def test_a_run_is_canceled_once_and_a_second_cancel_is_an_invalid_transition(client, tokens):
    await a_workflow(client, tokens)
    run = (await client.post(
        "/v1/workflows/nightly-billing/run", json={"input": {"customer_id": "c-1"}}, headers=tokens["operator"],
    )).json()
    assert run["status"] == "running"

    canceled = await client.post(f"/v1/workflow-runs/{run['id']}/cancel", headers=tokens["operator"])
    again = await client.post(f"/v1/workflow-runs/{run['id']}/cancel", headers=tokens["operator"])

    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["id"], canceled.json()["status"]) == (run["id"], "canceled")
    assert canceled.json()["finished_at"] == "2026-01-05T12:00:00Z"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invalid_transition")
    detail = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=tokens["viewer"])).json()
    assert detail["status"] == "canceled"
    assert {s["status"] for s in detail["steps"]} == {"canceled"}
    [entry] = await audit_entries(client, tokens, "workflow_run.cancel")
    assert (entry["target_kind"], entry["target_id"]) == ("workflow_run", run["id"])


# -- events -----------------------------------------------------------------------------


async def test_an_event_is_published_with_the_next_sequence_number_and_listed(client, tokens):
    first = await client.post("/v1/events", json={"topic": "invoices.imported", "payload": {"count": 3}}, headers=tokens["operator"])
    second = await client.post("/v1/events", json={"topic": "usage.imported"}, headers=tokens["admin"])

    assert (first.status_code, second.status_code) == (201, 201), first.text
    one, two = first.json(), second.json()
    assert (one["seq"], one["topic"], one["payload"], one["at"]) == (1, "invoices.imported", {"count": 3}, "2026-01-05T12:00:00Z")
    assert (two["seq"], two["payload"]) == (2, {})
    every = await listed(client, tokens, "/v1/events")
    assert sorted(e["seq"] for e in every) == [1, 2]
    assert [e["id"] for e in await listed(client, tokens, "/v1/events?topic=usage.imported")] == [two["id"]]
    assert [e["id"] for e in await listed(client, tokens, "/v1/events?after_seq=1")] == [two["id"]]
    entries = await audit_entries(client, tokens, "event.publish")
    assert sorted((e["target_kind"], e["target_id"]) for e in entries) == sorted([("event", one["id"]), ("event", two["id"])])
    by_target = {e["target_id"]: e for e in entries}
    assert by_target[one["id"]]["summary"] == {"topic": "invoices.imported", "payload": ["count"]}
    assert by_target[one["id"]]["token_id"] == tokens.ids["operator"]


async def test_events_are_listed_by_keyset_pages(client, tokens):
    for index in range(5):
        await client.post("/v1/events", json={"topic": "ticks", "payload": {"n": index}}, headers=tokens["operator"])

    seen: list[int] = []
    cursor = None
    while True:
        query = "/v1/events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query, headers=tokens["viewer"])).json()
        seen.extend(e["seq"] for e in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert len(seen) == 5


async def test_an_event_starts_each_active_workflow_triggered_by_its_topic(client, tokens):
    await a_workflow(client, tokens)
    await a_workflow(client, tokens, slug="other-topic", triggers=[{"kind": "event", "topic": "something.else"}])
    await a_workflow(client, tokens, slug="archived")
    await client.post("/v1/workflows/archived/archive", headers=tokens["admin"])

    event = await client.post(
        "/v1/events", json={"topic": "usage.imported", "payload": {"customer_id": "c-7"}}, headers=tokens["operator"],
    )

    assert event.status_code == 201, event.text
    [run] = await listed(client, tokens, "/v1/workflows/nightly-billing/runs")
    assert (run["trigger"], run["input"], run["workflow_version"]) == ("event", {"customer_id": "c-7"}, 1)
    assert await listed(client, tokens, "/v1/workflows/other-topic/runs") == []
    assert await listed(client, tokens, "/v1/workflows/archived/runs") == []


async def test_ostinatos_own_topics_cannot_be_published(client, tokens):
    response = await client.post("/v1/events", json={"topic": "workflow.run.succeeded"}, headers=tokens["operator"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["error"]["details"]] == ["topic"]
    assert await listed(client, tokens, "/v1/events") == []
    assert await audit_entries(client, tokens, "event.publish") == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"payload": {}}, "topic", id="no topic"),
        pytest.param({"topic": "x", "payload": [1]}, "payload", id="payload not an object"),
        pytest.param({"topic": "x", "extra": 1}, "extra", id="an unknown field"),
    ],
)
async def test_a_bad_event_is_refused_and_recorded_nowhere(client, tokens, body, path):
    response = await client.post("/v1/events", json=body, headers=tokens["operator"])

    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]
    assert await listed(client, tokens, "/v1/events") == []


async def test_a_step_cannot_run_another_tenants_endpoint(client, tokens):
    theirs = (await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=tokens["other_admin"])).json()
    steps = [{"key": "sync", "target": {"kind": "endpoint", "endpoint_id": theirs["id"]}}]

    response = await client.post("/v1/workflows", json=definition(steps=steps, triggers=[]), headers=tokens["admin"])

    assert response.status_code == 422, response.text
    [detail] = response.json()["error"]["details"]
    assert detail == {"path": "steps[0].target.endpoint_id", "message": f"unknown endpoint {theirs['id']!r}"}  # as if none
    assert await listed(client, tokens, "/v1/workflows") == []
