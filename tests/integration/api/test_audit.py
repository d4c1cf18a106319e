"""The audit trail: every change made through the API, who made it, in the change's own transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.clock import FixedClock
from domain.tokens import Role
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher, in_app


async def audit(client, tokens, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/v1/audit{query}", headers=tokens["admin"])
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_each_change_is_recorded_with_its_actor_target_and_summary(client, tokens, clock: FixedClock):
    steps = []

    async def step(method: str, path: str, who: str, body: Any = None) -> dict[str, Any]:
        response = await client.request(method, path, json=body, headers=tokens[who])
        assert 200 <= response.status_code < 300, response.text
        clock.advance(timedelta(seconds=1))
        steps.append(who)
        return response.json()

    job = await step("POST", "/v1/jobs", "admin", {"slug": "billing", "name": "Billing"})
    endpoint = await step("POST", "/v1/endpoints", "admin", {**HTTP_ENDPOINT, "job_id": job["id"]})
    await step("PATCH", f"/v1/jobs/{job['id']}", "admin", {"description": "Invoices.", "labels": {"team": "pay"}})
    await step("POST", f"/v1/endpoints/{endpoint['id']}/pause", "operator", {"until": "2026-01-06T00:00:00Z"})
    await step("PUT", f"/v1/endpoints/{endpoint['id']}/hints/interval", "operator", {"interval_s": 30, "ttl_s": 600, "reason": "backlog"})
    await step("POST", f"/v1/jobs/{job['id']}/archive", "admin")
    issued = await step("POST", "/v1/tokens", "admin", {"role": "viewer", "name": "ci"})

    entries = list(reversed(await audit(client, tokens)))  # oldest first, as the steps ran

    assert [(e["action"], e["target_kind"], e["target_id"]) for e in entries] == [
        ("job.create", "job", job["id"]),
        ("endpoint.create", "endpoint", endpoint["id"]),
        ("job.update", "job", job["id"]),
        ("endpoint.pause", "endpoint", endpoint["id"]),
        ("endpoint.hint.interval.set", "endpoint", endpoint["id"]),
        ("job.archive", "job", job["id"]),
        ("token.create", "token", issued["token"]["id"]),
    ]
    assert [e["token_id"] for e in entries] == [tokens.ids[who] for who in steps]
    assert [e["at"] for e in entries][:2] == ["2026-01-05T12:00:00Z", "2026-01-05T12:00:01Z"]
    summaries = [e["summary"] for e in entries]
    assert summaries[0] == {"slug": "billing", "name": "Billing"}
    assert summaries[1] == {"name": "sync-invoices", "job_id": job["id"], "target": "http"}
    assert summaries[2] == {"fields": ["description", "labels"]}
    assert summaries[3] == {"until": "2026-01-06T00:00:00Z"}
    assert summaries[4] == {"interval_s": 30, "ttl_s": 600, "reason": "backlog"}
    assert summaries[6] == {"role": "viewer", "name": "ci"}
    assert issued["secret"] not in str(entries)


async def test_refused_requests_leave_no_entry(client, tokens):
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()
    refusals = [
        ("POST", "/v1/jobs", {"slug": "billing", "name": "Again"}, "admin", 409),
        ("POST", "/v1/endpoints", {**HTTP_ENDPOINT, "schedule": {"cron": "bad"}}, "admin", 422),
        ("POST", "/v1/jobs/nope/pause", None, "operator", 404),
        ("POST", f"/v1/jobs/{job['id']}/archive", None, "operator", 403),
        ("PATCH", f"/v1/jobs/{job['id']}", {"slug": "Not A Slug"}, "admin", 422),
    ]
    for method, path, body, who, status in refusals:
        response = await client.request(method, path, json=body, headers=tokens[who])
        assert response.status_code == status, f"{method} {path}: {response.text}"

    assert [e["action"] for e in await audit(client, tokens)] == ["job.create"]


async def test_the_trail_is_filtered_and_paged_newest_first(client, tokens, clock: FixedClock):
    admin, operator = tokens["admin"], tokens["operator"]
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=admin)).json()
    clock.advance(timedelta(minutes=1))
    endpoint = (await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=admin)).json()
    clock.advance(timedelta(minutes=1))
    await client.post(f"/v1/endpoints/{endpoint['id']}/pause", headers=operator)
    clock.advance(timedelta(minutes=1))
    await client.post(f"/v1/endpoints/{endpoint['id']}/resume", headers=operator)

    async def actions(query: str) -> list[str]:
        return [e["action"] for e in await audit(client, tokens, query)]

    assert await actions("") == ["endpoint.resume", "endpoint.pause", "endpoint.create", "job.create"]
    assert await actions("?action=endpoint.pause") == ["endpoint.pause"]
    assert await actions("?action=endpoint.*") == ["endpoint.resume", "endpoint.pause", "endpoint.create"]
    assert await actions(f"?target_id={job['id']}") == ["job.create"]
    assert await actions("?target_kind=endpoint&token_id=" + tokens.ids["operator"]) == ["endpoint.resume", "endpoint.pause"]
    assert await actions("?since=2026-01-05T12:01:00Z&until=2026-01-05T12:03:00Z") == ["endpoint.pause", "endpoint.create"]

    first = (await client.get("/v1/audit?limit=3", headers=admin)).json()
    rest = (await client.get(f"/v1/audit?limit=3&cursor={first['next_cursor']}", headers=admin)).json()
    assert [e["action"] for e in first["items"] + rest["items"]] == await actions("")
    assert rest["next_cursor"] is None


async def test_an_operator_may_read_the_trail_and_a_viewer_may_not(client, tokens):
    assert (await client.get("/v1/audit", headers=tokens["operator"])).status_code == 200
    assert (await client.get("/v1/audit", headers=tokens["viewer"])).status_code == 403


async def test_a_change_whose_entry_cannot_be_written_is_not_stored():
    """The entry is written in the change's transaction: if it fails, the change rolls back."""
    store = MemoryStore()
    broken = {"on": False}

    class FailingAudit:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        async def add(self, entry: Any) -> None:
            if broken["on"]:
                raise RuntimeError("the audit table is full")
            await self._inner.add(entry)

        async def list(self, *args: Any, **kwargs: Any) -> Any:
            return await self._inner.list(*args, **kwargs)

    def unit_of_work(*, read_only: bool = False):
        uow = store.unit_of_work(read_only=read_only)
        uow.audit = FailingAudit(uow.audit)
        return uow

    container = bootstrap(load_settings(database_url="memory://"), uow=unit_of_work, dispatcher=RecordingDispatcher())
    async with AsyncTestClient(create_app(container)) as client:
        issued = in_app(client, container.tokens.create, TENANT, role=Role.ADMIN)
        headers = {"Authorization": f"Bearer {issued.secret}"}
        broken["on"] = True
        refused = await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=headers)
        broken["on"] = False
        listed = await client.get("/v1/jobs", headers=headers)

    assert refused.status_code == 500
    assert listed.json()["items"] == []
    assert store.jobs == {}
