"""/v1/endpoints on every store: define, list, read, change, lifecycle, hints and runs."""

from __future__ import annotations

from datetime import timedelta

from domain.clock import FixedClock
from domain.runs import RunSource
from tests.integration.api.conftest import HTTP_ENDPOINT, seed_run

PYTHON_ENDPOINT = {
    "name": "hello",
    "target": {"kind": "python", "handler": "examples.hello", "params": {"name": "x"}},
    "schedule": {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"},
    "retry": {"max_attempts": 3, "backoff_s": 1, "backoff_max_s": 60, "jitter": True},
    "timeout_s": 12,
    "priority": 5,
    "allow_concurrent": True,
    "auto_pause_after": 4,
}


async def create(client, tokens, spec=HTTP_ENDPOINT, **changes):
    response = await client.post("/v1/endpoints", json={**spec, **changes}, headers=tokens["admin"])
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_http_endpoint_answers_with_the_api_md_shape(client, tokens):
    endpoint = await create(client, tokens)

    assert endpoint["job_id"] is None
    assert endpoint["name"] == "sync-invoices"
    assert endpoint["target"] == {
        "kind": "http", "method": "POST", "url": "https://billing.example/sync",
        "headers": {"authorization": "secret://env/BILLING_TOKEN"}, "body": {"full": False},
    }
    assert endpoint["schedule"] == {"interval_s": 60}
    assert endpoint["min_interval_s"] == 10
    assert endpoint["max_interval_s"] == 3600
    assert endpoint["retry"] == {"max_attempts": 1, "backoff_s": 1, "backoff_max_s": 300, "jitter": True}
    assert endpoint["timeout_s"] == 30
    assert endpoint["hints"] == {"interval": None, "oneshot": None}
    assert endpoint["paused_until"] is None
    assert endpoint["failure_count"] == 0
    assert endpoint["last_run_at"] is None
    assert endpoint["next_run_at"] == "2026-01-05T12:01:00Z"
    assert endpoint["next_run_source"] == "baseline-interval"
    assert endpoint["status"] == "active"


async def test_a_python_endpoint_with_a_cron_schedule_keeps_every_field(client, tokens):
    endpoint = await create(client, tokens, PYTHON_ENDPOINT)

    assert endpoint["target"] == {"kind": "python", "handler": "examples.hello", "params": {"name": "x"}}
    assert endpoint["schedule"] == {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"}
    assert endpoint["retry"] == {"max_attempts": 3, "backoff_s": 1, "backoff_max_s": 60, "jitter": True}
    assert (endpoint["timeout_s"], endpoint["priority"], endpoint["allow_concurrent"], endpoint["auto_pause_after"]) == (
        12, 5, True, 4,
    )
    assert endpoint["next_run_at"] == "2026-01-05T12:05:00Z"
    assert endpoint["next_run_source"] == "baseline-cron"
    assert (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json() == endpoint


async def test_an_endpoint_can_be_created_inside_a_job(client, tokens):
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()

    endpoint = await create(client, tokens, job_id=job["id"])

    assert endpoint["job_id"] == job["id"]


async def test_an_endpoint_in_an_unknown_job_answers_404_and_is_not_stored(client, tokens):
    response = await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "job_id": "nope"}, headers=tokens["admin"])

    assert response.status_code == 404
    assert (await client.get("/v1/endpoints", headers=tokens["viewer"])).json()["items"] == []


async def test_a_taken_endpoint_name_answers_409_conflict(client, tokens):
    await create(client, tokens)

    response = await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=tokens["admin"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_endpoints_are_listed_newest_first_and_filtered_by_job_and_status(client, tokens, clock: FixedClock):
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()
    standalone = await create(client, tokens, name="standalone")
    clock.advance(timedelta(seconds=1))
    in_job = await create(client, tokens, name="in-job", job_id=job["id"])
    await client.post(f"/v1/endpoints/{standalone['id']}/pause", headers=tokens["operator"])

    async def names(query: str) -> list[str]:
        response = await client.get(f"/v1/endpoints{query}", headers=tokens["viewer"])
        assert response.status_code == 200, response.text
        return [e["name"] for e in response.json()["items"]]

    assert await names("") == ["in-job", "standalone"]
    assert await names(f"?job_id={job['id']}") == ["in-job"]
    assert await names("?status=paused") == ["standalone"]
    assert await names("?status=archived") == []
    assert in_job["job_id"] == job["id"]


async def test_a_patch_replans_the_next_run_at_once(client, tokens, clock: FixedClock):
    endpoint = await create(client, tokens)
    clock.advance(timedelta(seconds=30))

    response = await client.patch(
        f"/v1/endpoints/{endpoint['id']}",
        json={"schedule": {"interval_s": 600}, "description": "Every ten minutes."},
        headers=tokens["admin"],
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["schedule"] == {"interval_s": 600}
    assert changed["description"] == "Every ten minutes."
    assert changed["next_run_at"] == "2026-01-05T12:10:30Z"
    assert changed["target"] == endpoint["target"]


async def test_a_patch_may_clear_a_bound_with_null(client, tokens):
    endpoint = await create(client, tokens)

    changed = (await client.patch(f"/v1/endpoints/{endpoint['id']}", json={"max_interval_s": None}, headers=tokens["admin"])).json()

    assert changed["max_interval_s"] is None
    assert changed["min_interval_s"] == 10


async def test_pause_without_a_body_pauses_until_resumed(client, tokens):
    endpoint = await create(client, tokens)

    paused = await client.post(f"/v1/endpoints/{endpoint['id']}/pause", headers=tokens["operator"])
    resumed = await client.post(f"/v1/endpoints/{endpoint['id']}/resume", headers=tokens["operator"])

    assert (paused.status_code, paused.json()["status"], paused.json()["next_run_at"]) == (200, "paused", None)
    assert (resumed.status_code, resumed.json()["status"]) == (200, "active")
    assert resumed.json()["next_run_at"] == "2026-01-05T12:01:00Z"


async def test_pause_until_a_time_plans_the_next_run_after_it_in_utc(client, tokens):
    endpoint = await create(client, tokens)

    response = await client.post(
        f"/v1/endpoints/{endpoint['id']}/pause", json={"until": "2026-01-05T14:00:00+01:00"}, headers=tokens["operator"]
    )

    assert response.status_code == 200, response.text
    paused = response.json()
    assert paused["paused_until"] == "2026-01-05T13:00:00Z"
    assert paused["next_run_at"] == "2026-01-05T13:01:00Z"


async def test_pause_until_a_past_time_answers_422_on_until(client, tokens):
    endpoint = await create(client, tokens)

    response = await client.post(
        f"/v1/endpoints/{endpoint['id']}/pause", json={"until": "2026-01-05T11:00:00Z"}, headers=tokens["operator"]
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"path": "until", "message": "must be in the future"}]


async def test_archive_stops_an_endpoint_for_good(client, tokens):
    endpoint = await create(client, tokens)

    archived = await client.post(f"/v1/endpoints/{endpoint['id']}/archive", headers=tokens["admin"])
    resumed = await client.post(f"/v1/endpoints/{endpoint['id']}/resume", headers=tokens["admin"])

    assert (archived.status_code, archived.json()["status"], archived.json()["next_run_at"]) == (200, "archived", None)
    assert resumed.status_code == 409
    assert resumed.json()["error"]["code"] == "invalid_transition"


async def test_reset_failures_answers_the_endpoint(client, tokens):
    endpoint = await create(client, tokens)

    response = await client.post(f"/v1/endpoints/{endpoint['id']}/reset-failures", headers=tokens["operator"])

    assert response.status_code == 200
    assert response.json()["failure_count"] == 0


async def test_an_interval_hint_is_set_and_cleared(client, tokens):
    endpoint = await create(client, tokens)

    set_ = await client.put(
        f"/v1/endpoints/{endpoint['id']}/hints/interval",
        json={"interval_s": 15, "ttl_s": 600, "reason": "backlog"},
        headers=tokens["operator"],
    )
    cleared = await client.delete(f"/v1/endpoints/{endpoint['id']}/hints/interval", headers=tokens["operator"])

    assert set_.status_code == 200, set_.text
    assert set_.json()["hints"]["interval"] == {"interval_s": 15, "expires_at": "2026-01-05T12:10:00Z", "reason": "backlog"}
    assert set_.json()["next_run_at"] == "2026-01-05T12:00:15Z"
    assert set_.json()["next_run_source"] == "hint-interval"
    assert cleared.status_code == 200
    assert cleared.json()["hints"]["interval"] is None
    assert cleared.json()["next_run_source"] == "baseline-interval"


async def test_an_interval_hint_outside_the_bounds_answers_422_on_interval_s(client, tokens):
    endpoint = await create(client, tokens)

    response = await client.put(
        f"/v1/endpoints/{endpoint['id']}/hints/interval", json={"interval_s": 5, "ttl_s": 600}, headers=tokens["operator"]
    )

    assert response.status_code == 422
    assert [d["path"] for d in response.json()["error"]["details"]] == ["interval_s"]
    stored = (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json()
    assert stored["hints"]["interval"] is None


async def test_a_oneshot_hint_is_set_and_cleared(client, tokens):
    endpoint = await create(client, tokens, schedule={"interval_s": 3600}, max_interval_s=None)

    set_ = await client.put(
        f"/v1/endpoints/{endpoint['id']}/hints/oneshot",
        json={"run_at": "2026-01-05T12:30:00Z", "expires_at": "2026-01-05T13:00:00Z", "reason": "deploy"},
        headers=tokens["operator"],
    )
    cleared = await client.delete(f"/v1/endpoints/{endpoint['id']}/hints/oneshot", headers=tokens["operator"])

    assert set_.status_code == 200, set_.text
    assert set_.json()["hints"]["oneshot"] == {
        "run_at": "2026-01-05T12:30:00Z", "expires_at": "2026-01-05T13:00:00Z", "reason": "deploy",
    }
    assert set_.json()["next_run_at"] == "2026-01-05T12:30:00Z"
    assert set_.json()["next_run_source"] == "hint-oneshot"
    assert cleared.json()["hints"]["oneshot"] is None
    assert cleared.json()["next_run_at"] == "2026-01-05T13:00:00Z"


async def test_a_hint_needs_a_ttl_or_an_expiry(client, tokens):
    endpoint = await create(client, tokens)

    response = await client.put(
        f"/v1/endpoints/{endpoint['id']}/hints/interval", json={"interval_s": 30}, headers=tokens["operator"]
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "ttl_s"


async def test_an_endpoints_runs_are_listed_with_filters(client, container, tokens, clock: FixedClock):
    endpoint = await create(client, tokens)
    other = await create(client, tokens, name="other")
    early = seed_run(client, container, endpoint, at_offset_s=-120)
    late = seed_run(client, container, endpoint, at_offset_s=-60, source=RunSource.MANUAL, slot="manual:1")
    seed_run(client, container, other, at_offset_s=-30)

    async def ids(query: str = "") -> list[str]:
        response = await client.get(f"/v1/endpoints/{endpoint['id']}/runs{query}", headers=tokens["viewer"])
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["items"]]

    assert await ids() == [late.id, early.id]
    assert await ids("?source=manual") == [late.id]
    assert await ids("?until=2026-01-05T11:59:00Z") == [early.id]
    assert await ids("?since=2026-01-05T11:59:00Z&status=pending") == [late.id]
    assert await ids("?status=failed") == []


async def test_the_runs_of_an_unknown_endpoint_answer_404(client, tokens):
    response = await client.get("/v1/endpoints/nope/runs", headers=tokens["viewer"])

    assert response.status_code == 404
