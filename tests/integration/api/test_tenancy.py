"""Tenant isolation: another tenant's resources do not exist for a caller (404, never 403), are
never listed, and cannot be changed, even by that tenant's admin."""

from __future__ import annotations

import pytest

from domain.audit import AuditQuery
from domain.run_logs import LogLine
from tests.integration.api.conftest import HTTP_ENDPOINT, OTHER_TENANT, TENANT, in_app, seed_run, workflow_definition


@pytest.fixture
async def acme(client, container, tokens) -> dict[str, dict]:
    """Tenant acme's job, endpoint (in the job), pending run, dead letter, workflow with a run, and
    an event, as the API answered them."""
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()
    endpoint = (
        await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "job_id": job["id"]}, headers=tokens["admin"])
    ).json()
    run = seed_run(client, container, endpoint, at_offset_s=-10)
    failed = seed_run(client, container, endpoint, at_offset_s=-20)
    now = container.clock.now()
    dead = failed.start(at=now, worker="w-1").fail(at=now, error="HTTP 500").dead_letter()

    async def store() -> None:
        async with container.uow() as uow:
            await uow.runs.update(dead)
            await uow.run_logs.append([LogLine(run_id=dead.id, tenant_id=TENANT, seq=1, at=now, message="acme's secret log")])
            await uow.commit()

    in_app(client, store)
    workflow = (await client.post("/v1/workflows", json=workflow_definition(), headers=tokens["admin"])).json()
    workflow_run = (await client.post(
        f"/v1/workflows/{workflow['slug']}/run", json={"input": {"customer_id": "c-1"}}, headers=tokens["operator"]
    )).json()
    event = (await client.post("/v1/events", json={"topic": "invoices.imported"}, headers=tokens["operator"])).json()
    return {
        "job": job, "endpoint": endpoint, "run": {"id": run.id}, "dead": {"id": dead.id}, "workflow": workflow,
        "workflow_run": workflow_run, "event": event,
    }


READS = [
    "/v1/jobs/{job}",
    "/v1/jobs/{job}/endpoints",
    "/v1/endpoints/{endpoint}",
    "/v1/endpoints/{endpoint}/runs",
    "/v1/endpoints/{endpoint}/health",
    "/v1/runs/{run}",
    "/v1/runs/{run}/logs",
    "/v1/runs/{dead}/logs",
    "/v1/tokens/{token}",
    "/v1/workflows/{workflow}",
    "/v1/workflows/{workflow}?version=1",
    "/v1/workflows/{workflow}/runs",
    "/v1/workflow-runs/{workflow_run}",
    "/v1/workflow-runs/{workflow_run}/steps",
]

CHANGES = [
    ("PATCH", "/v1/jobs/{job}", {"name": "Mine now"}),
    ("POST", "/v1/jobs/{job}/pause", None),
    ("POST", "/v1/jobs/{job}/resume", None),
    ("POST", "/v1/jobs/{job}/archive", None),
    ("PATCH", "/v1/endpoints/{endpoint}", {"description": "mine now"}),
    ("POST", "/v1/endpoints/{endpoint}/pause", None),
    ("POST", "/v1/endpoints/{endpoint}/resume", None),
    ("POST", "/v1/endpoints/{endpoint}/archive", None),
    ("POST", "/v1/endpoints/{endpoint}/reset-failures", None),
    ("PUT", "/v1/endpoints/{endpoint}/hints/interval", {"interval_s": 30, "ttl_s": 600}),
    ("DELETE", "/v1/endpoints/{endpoint}/hints/interval", None),
    ("PUT", "/v1/endpoints/{endpoint}/hints/oneshot", {"run_at": "2026-01-05T12:00:30Z", "ttl_s": 600}),
    ("DELETE", "/v1/endpoints/{endpoint}/hints/oneshot", None),
    ("POST", "/v1/endpoints/{endpoint}/run", {"params": {"full": True}}),
    ("POST", "/v1/runs/{run}/cancel", None),
    ("POST", "/v1/dead-letters/{dead}/retry", None),
    ("POST", "/v1/tokens/{token}/revoke", None),
    ("PUT", "/v1/workflows/{workflow}", workflow_definition(name="Mine now")),
    ("POST", "/v1/workflows/{workflow}/archive", None),
    ("POST", "/v1/workflows/{workflow}/run", {"input": {"customer_id": "c-1"}}),
    ("POST", "/v1/workflows/{workflow}/plan", None),
    ("POST", "/v1/workflow-runs/{workflow_run}/cancel", None),
]


def ids(acme: dict, tokens) -> dict[str, str]:
    return {
        "job": acme["job"]["id"], "endpoint": acme["endpoint"]["id"], "run": acme["run"]["id"],
        "dead": acme["dead"]["id"], "token": tokens.ids["viewer"], "workflow": acme["workflow"]["slug"],
        "workflow_run": acme["workflow_run"]["id"],
    }


@pytest.mark.parametrize("template", READS)
async def test_another_tenants_resource_answers_404(client, tokens, acme, template):
    response = await client.get(template.format(**ids(acme, tokens)), headers=tokens["other_admin"])

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


async def test_another_tenants_resources_are_never_listed(client, tokens, acme):
    other = tokens["other_admin"]
    job_id = acme["job"]["id"]
    endpoint_id = acme["endpoint"]["id"]

    for path in (
        "/v1/jobs", "/v1/jobs?status=active", "/v1/endpoints", f"/v1/endpoints?job_id={job_id}",
        "/v1/runs", f"/v1/runs?job_id={job_id}", f"/v1/runs?endpoint_id={endpoint_id}", "/v1/audit",
        "/v1/dead-letters", f"/v1/dead-letters?endpoint_id={endpoint_id}", "/v1/workflows",
        "/v1/workflows?status=active", "/v1/events", "/v1/events?topic=invoices.imported", "/v1/events?after_seq=0",
    ):
        response = await client.get(path, headers=other)
        assert response.status_code == 200, path
        assert response.json() == {"items": [], "next_cursor": None}, path

    tokens_listed = (await client.get("/v1/tokens", headers=other)).json()["items"]
    assert {t["name"] for t in tokens_listed} == {"other_admin", "other_viewer"}


async def test_another_tenant_cannot_change_anything_and_leaves_no_trace(client, container, tokens, acme):
    before_job = (await client.get(f"/v1/jobs/{acme['job']['id']}", headers=tokens["viewer"])).json()
    before_endpoint = (await client.get(f"/v1/endpoints/{acme['endpoint']['id']}", headers=tokens["viewer"])).json()
    before_runs = (await client.get("/v1/runs", headers=tokens["viewer"])).json()
    before_dead = (await client.get("/v1/dead-letters", headers=tokens["viewer"])).json()
    workflow = f"/v1/workflows/{acme['workflow']['slug']}"
    before_workflow = (await client.get(workflow, headers=tokens["viewer"])).json()
    before_workflow_runs = (await client.get(f"{workflow}/runs", headers=tokens["viewer"])).json()
    workflow_run = f"/v1/workflow-runs/{acme['workflow_run']['id']}"
    before_workflow_run = (await client.get(workflow_run, headers=tokens["viewer"])).json()
    dispatched = list(container.dispatcher.items)
    entries = len(in_app(client, container.audit.list, TENANT, AuditQuery()).items)

    for method, template, body in CHANGES:
        response = await client.request(method, template.format(**ids(acme, tokens)), json=body, headers=tokens["other_admin"])
        assert response.status_code == 404, f"{method} {template}: {response.status_code} {response.text}"

    assert (await client.get(f"/v1/jobs/{acme['job']['id']}", headers=tokens["viewer"])).json() == before_job
    assert (await client.get(f"/v1/endpoints/{acme['endpoint']['id']}", headers=tokens["viewer"])).json() == before_endpoint
    assert (await client.get("/v1/runs", headers=tokens["viewer"])).json() == before_runs  # none triggered or canceled
    assert (await client.get("/v1/dead-letters", headers=tokens["viewer"])).json() == before_dead  # none retried
    assert [item["id"] for item in before_dead["items"]] == [acme["dead"]["id"]]
    assert (await client.get(workflow, headers=tokens["viewer"])).json() == before_workflow  # still version 1, active
    assert (await client.get(f"{workflow}/runs", headers=tokens["viewer"])).json() == before_workflow_runs  # none started
    assert (await client.get(workflow_run, headers=tokens["viewer"])).json() == before_workflow_run  # not canceled
    assert container.dispatcher.items == dispatched
    assert (await client.get("/v1/jobs", headers=tokens["viewer"])).status_code == 200  # acme's viewer token still works
    assert len(in_app(client, container.audit.list, TENANT, AuditQuery()).items) == entries
    assert in_app(client, container.audit.list, OTHER_TENANT, AuditQuery()).items == []


async def test_an_endpoint_cannot_be_attached_to_another_tenants_job(client, tokens, acme):
    created = await client.post(
        "/v1/endpoints", json={**HTTP_ENDPOINT, "name": "intruder", "job_id": acme["job"]["id"]}, headers=tokens["other_admin"]
    )
    moved = await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "name": "mine"}, headers=tokens["other_admin"])
    patched = await client.patch(
        f"/v1/endpoints/{moved.json()['id']}", json={"job_id": acme["job"]["id"]}, headers=tokens["other_admin"]
    )

    assert created.status_code == 404
    assert patched.status_code == 404
    listed = (await client.get(f"/v1/jobs/{acme['job']['id']}/endpoints", headers=tokens["viewer"])).json()["items"]
    assert [e["id"] for e in listed] == [acme["endpoint"]["id"]]


async def test_tenants_may_use_the_same_slugs_and_names(client, tokens, acme):
    job = await client.post("/v1/jobs", json={"slug": "billing", "name": "Their billing"}, headers=tokens["other_admin"])
    endpoint = await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=tokens["other_admin"])

    assert job.status_code == 201
    assert endpoint.status_code == 201
    assert job.json()["id"] != acme["job"]["id"]
    own = (await client.get("/v1/jobs", headers=tokens["other_viewer"])).json()["items"]
    assert [j["name"] for j in own] == ["Their billing"]


async def test_events_are_per_tenant_and_start_only_the_publishers_workflows(client, tokens, acme):
    slug = acme["workflow"]["slug"]
    runs_before = (await client.get(f"/v1/workflows/{slug}/runs", headers=tokens["viewer"])).json()["items"]

    # globex publishes on the topic acme's workflow listens to
    theirs = await client.post(
        "/v1/events", json={"topic": "usage.imported", "payload": {"customer_id": "c-9"}}, headers=tokens["other_admin"]
    )

    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["seq"] == 1  # numbered in globex's own sequence
    assert (await client.get(f"/v1/workflows/{slug}/runs", headers=tokens["viewer"])).json()["items"] == runs_before
    own = [e["id"] for e in (await client.get("/v1/events?limit=500", headers=tokens["viewer"])).json()["items"]]
    assert acme["event"]["id"] in own and theirs.json()["id"] not in own
    others = (await client.get("/v1/events", headers=tokens["other_viewer"])).json()["items"]
    assert [e["id"] for e in others] == [theirs.json()["id"]]


async def test_tenants_may_use_the_same_workflow_slugs(client, tokens, acme):
    theirs = await client.post("/v1/workflows", json=workflow_definition(name="Their billing"), headers=tokens["other_admin"])

    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != acme["workflow"]["id"]
    mine = (await client.get(f"/v1/workflows/{acme['workflow']['slug']}", headers=tokens["viewer"])).json()
    assert mine["name"] == "Nightly billing"
