"""/v1/jobs on every store: create, list with filters and pages, read, change, lifecycle, endpoints."""

from __future__ import annotations

from datetime import timedelta

from domain.clock import FixedClock
from tests.integration.api.conftest import HTTP_ENDPOINT

BILLING = {"slug": "billing", "name": "Billing", "description": "Invoices and payments.", "labels": {"team": "pay"}}


async def test_a_created_job_answers_201_with_its_fields_and_utc_timestamps(client, tokens):
    response = await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])

    assert response.status_code == 201
    job = response.json()
    assert job["slug"] == "billing"
    assert job["name"] == "Billing"
    assert job["description"] == "Invoices and payments."
    assert job["status"] == "active"
    assert job["labels"] == {"team": "pay"}
    assert job["annotations"] == {}
    assert job["created_at"] == job["updated_at"] == "2026-01-05T12:00:00Z"


async def test_a_job_is_read_back_by_id(client, tokens):
    created = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()

    response = await client.get(f"/v1/jobs/{created['id']}", headers=tokens["viewer"])

    assert response.status_code == 200
    assert response.json() == created


async def test_an_unknown_job_answers_404_not_found(client, tokens):
    response = await client.get("/v1/jobs/nope", headers=tokens["viewer"])

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_taken_slug_answers_409_conflict(client, tokens):
    await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])

    response = await client.post("/v1/jobs", json={"slug": "billing", "name": "Again"}, headers=tokens["admin"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_jobs_are_listed_newest_first_and_filtered_by_status_label_and_search(client, tokens, clock: FixedClock):
    admin = tokens["admin"]
    ids = {}
    for slug, labels in [("billing", {"team": "pay"}), ("reports", {"team": "data"}), ("payroll", {"team": "pay"})]:
        ids[slug] = (await client.post("/v1/jobs", json={"slug": slug, "name": slug.title(), "labels": labels}, headers=admin)).json()["id"]
        clock.advance(timedelta(seconds=1))
    await client.post(f"/v1/jobs/{ids['reports']}/pause", headers=admin)

    async def slugs(query: str) -> list[str]:
        response = await client.get(f"/v1/jobs{query}", headers=tokens["viewer"])
        assert response.status_code == 200, response.text
        return [job["slug"] for job in response.json()["items"]]

    assert await slugs("") == ["payroll", "reports", "billing"]
    assert await slugs("?status=paused") == ["reports"]
    assert await slugs("?label=team=pay") == ["payroll", "billing"]
    assert await slugs("?search=PAY") == ["payroll"]
    assert await slugs("?search=r&label=team=data") == ["reports"]


async def test_archived_jobs_are_listed_only_when_asked_for(client, tokens):
    job = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()
    await client.post(f"/v1/jobs/{job['id']}/archive", headers=tokens["admin"])

    assert (await client.get("/v1/jobs", headers=tokens["viewer"])).json()["items"] == []
    archived = (await client.get("/v1/jobs?status=archived", headers=tokens["viewer"])).json()["items"]
    assert [j["id"] for j in archived] == [job["id"]]


async def test_job_pages_follow_the_cursor_until_it_is_null(client, tokens, clock: FixedClock):
    for index in range(5):
        await client.post("/v1/jobs", json={"slug": f"job-{index}", "name": f"Job {index}"}, headers=tokens["admin"])
        clock.advance(timedelta(seconds=1))

    seen: list[str] = []
    url = "/v1/jobs?limit=2"
    pages = 0
    while True:
        body = (await client.get(url, headers=tokens["viewer"])).json()
        pages += 1
        seen += [job["slug"] for job in body["items"]]
        if body["next_cursor"] is None:
            break
        url = f"/v1/jobs?limit=2&cursor={body['next_cursor']}"

    assert pages == 3
    assert seen == [f"job-{index}" for index in reversed(range(5))]


async def test_a_patch_changes_only_the_given_fields(client, tokens, clock: FixedClock):
    job = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()
    clock.advance(timedelta(minutes=1))

    response = await client.patch(
        f"/v1/jobs/{job['id']}", json={"name": "Billing and payments", "annotations": {"owner": "ana"}},
        headers=tokens["admin"],
    )

    assert response.status_code == 200
    changed = response.json()
    assert changed["name"] == "Billing and payments"
    assert changed["annotations"] == {"owner": "ana"}
    assert changed["slug"] == "billing"
    assert changed["labels"] == {"team": "pay"}
    assert changed["updated_at"] == "2026-01-05T12:01:00Z"
    assert (await client.get(f"/v1/jobs/{job['id']}", headers=tokens["viewer"])).json() == changed


async def test_pause_resume_and_archive_move_the_status(client, tokens):
    job = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()

    paused = await client.post(f"/v1/jobs/{job['id']}/pause", headers=tokens["operator"])
    resumed = await client.post(f"/v1/jobs/{job['id']}/resume", headers=tokens["operator"])
    archived = await client.post(f"/v1/jobs/{job['id']}/archive", headers=tokens["admin"])

    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    assert (resumed.status_code, resumed.json()["status"]) == (200, "active")
    assert (archived.status_code, archived.json()["status"]) == (200, "archived")


async def test_an_archived_job_refuses_changes_with_409_invalid_transition(client, tokens):
    job = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()
    await client.post(f"/v1/jobs/{job['id']}/archive", headers=tokens["admin"])

    patched = await client.patch(f"/v1/jobs/{job['id']}", json={"name": "New"}, headers=tokens["admin"])
    resumed = await client.post(f"/v1/jobs/{job['id']}/resume", headers=tokens["admin"])

    assert patched.status_code == 409
    assert patched.json()["error"]["code"] == "invalid_transition"
    assert resumed.status_code == 409
    assert resumed.json()["error"]["code"] == "invalid_transition"


async def test_archiving_a_job_archives_its_endpoints(client, tokens):
    job = (await client.post("/v1/jobs", json=BILLING, headers=tokens["admin"])).json()
    endpoint = (await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "job_id": job["id"]}, headers=tokens["admin"])).json()

    await client.post(f"/v1/jobs/{job['id']}/archive", headers=tokens["admin"])

    stored = (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json()
    assert stored["status"] == "archived"
    assert stored["next_run_at"] is None


async def test_a_jobs_endpoints_are_listed_and_filtered_by_status(client, tokens, clock: FixedClock):
    admin = tokens["admin"]
    job = (await client.post("/v1/jobs", json=BILLING, headers=admin)).json()
    first = (await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "job_id": job["id"]}, headers=admin)).json()
    clock.advance(timedelta(seconds=1))
    second = (await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "name": "second", "job_id": job["id"]}, headers=admin)).json()
    await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "name": "standalone"}, headers=admin)
    await client.post(f"/v1/endpoints/{first['id']}/pause", headers=admin)

    everything = (await client.get(f"/v1/jobs/{job['id']}/endpoints", headers=tokens["viewer"])).json()
    paused = (await client.get(f"/v1/jobs/{job['id']}/endpoints?status=paused", headers=tokens["viewer"])).json()

    assert [e["id"] for e in everything["items"]] == [second["id"], first["id"]]
    assert everything["next_cursor"] is None
    assert [e["id"] for e in paused["items"]] == [first["id"]]


async def test_the_endpoints_of_an_unknown_job_answer_404(client, tokens):
    response = await client.get("/v1/jobs/nope/endpoints", headers=tokens["viewer"])

    assert response.status_code == 404
