"""/v1/runs on every store: the run history, its filters and its keyset pages."""

from __future__ import annotations

from datetime import timedelta

from domain.runs import RunResult, RunSource
from tests.integration.api.conftest import HTTP_ENDPOINT, in_app, seed_run


async def endpoint_in_job(client, tokens, name: str, job: dict | None = None) -> dict:
    spec = {**HTTP_ENDPOINT, "name": name}
    if job is not None:
        spec["job_id"] = job["id"]
    response = await client.post("/v1/endpoints", json=spec, headers=tokens["admin"])
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_run_answers_with_the_api_md_shape(client, container, tokens):
    endpoint = await endpoint_in_job(client, tokens, "sync")
    run = seed_run(client, container, endpoint, at_offset_s=-5)

    response = await client.get(f"/v1/runs/{run.id}", headers=tokens["viewer"])

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": run.id, "endpoint_id": endpoint["id"], "job_id": None, "workflow_run_id": None,
        "step_key": None, "status": "pending", "source": "baseline-interval", "attempt": 1, "params": {},
        "scheduled_at": "2026-01-05T11:59:55Z", "created_at": "2026-01-05T12:00:00Z",
        "started_at": None, "finished_at": None, "duration_ms": None, "result": None, "error": None,
        "worker_id": None, "retry_of": None, "dead_lettered": False,
    }


async def test_a_finished_run_shows_its_result_and_duration(client, container, tokens, clock):
    endpoint = await endpoint_in_job(client, tokens, "sync")
    now = clock.now()
    run = seed_run(client, container, endpoint)

    async def finish() -> None:
        async with container.uow() as uow:
            stored = await uow.runs.get(run.id, tenant_id=None)
            started = stored.start(at=now, worker="w1")
            done = started.succeed(
                at=now + timedelta(milliseconds=12.5),
                result=RunResult(status_code=200, body_excerpt="ok", output={"ok": True}),
            )
            await uow.runs.update(done)
            await uow.commit()

    in_app(client, finish)
    body = (await client.get(f"/v1/runs/{run.id}", headers=tokens["viewer"])).json()

    assert body["status"] == "succeeded"
    assert body["worker_id"] == "w1"
    assert body["duration_ms"] == 12.5
    assert body["result"] == {"status_code": 200, "body_excerpt": "ok", "output": {"ok": True}}
    assert body["finished_at"] == "2026-01-05T12:00:00.012500Z"


async def test_runs_are_filtered_by_job_endpoint_status_source_and_time(client, container, tokens):
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()
    in_job = await endpoint_in_job(client, tokens, "in-job", job)
    alone = await endpoint_in_job(client, tokens, "alone")
    first = seed_run(client, container, in_job, at_offset_s=-300)
    second = seed_run(client, container, in_job, at_offset_s=-200, source=RunSource.RETRY, slot="retry:x")
    third = seed_run(client, container, alone, at_offset_s=-100)

    async def ids(query: str = "") -> list[str]:
        response = await client.get(f"/v1/runs{query}", headers=tokens["viewer"])
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["items"]]

    assert await ids() == [third.id, second.id, first.id]
    assert await ids(f"?job_id={job['id']}") == [second.id, first.id]
    assert await ids(f"?endpoint_id={alone['id']}") == [third.id]
    assert await ids("?source=retry") == [second.id]
    assert await ids("?status=pending&source=baseline-interval") == [third.id, first.id]
    assert await ids("?since=2026-01-05T11:55:00Z") == [third.id, second.id, first.id]  # since is inclusive
    assert await ids("?until=2026-01-05T11:55:00Z") == []  # until is exclusive
    assert await ids("?since=2026-01-05T11:56:40Z&until=2026-01-05T11:58:20Z") == [second.id]
    assert await ids("?status=succeeded") == []


async def test_run_pages_follow_the_cursor_without_gaps_or_repeats(client, container, tokens):
    endpoint = await endpoint_in_job(client, tokens, "sync")
    runs = [seed_run(client, container, endpoint, at_offset_s=-index) for index in range(7)]

    seen: list[str] = []
    url = "/v1/runs?limit=3"
    while url:
        body = (await client.get(url, headers=tokens["viewer"])).json()
        assert len(body["items"]) <= 3
        seen += [run["id"] for run in body["items"]]
        url = f"/v1/runs?limit=3&cursor={body['next_cursor']}" if body["next_cursor"] else ""

    assert seen == [run.id for run in runs]


async def test_a_cursor_this_server_did_not_issue_answers_422_on_cursor(client, tokens):
    response = await client.get("/v1/runs?cursor=not-a-cursor", headers=tokens["viewer"])

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "cursor"


async def test_an_unknown_run_answers_404(client, tokens):
    response = await client.get("/v1/runs/nope", headers=tokens["viewer"])

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
