"""The engine's controls over the API, on every store: run now, health, logs, cancel, dead letters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.ids import new_id
from domain.run_logs import LogLevel, LogLine
from domain.runs import Run, RunStatus
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, in_app, seed_run

S = RunStatus


async def an_endpoint(client, tokens, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, **changes}, headers=tokens["admin"])
    assert response.status_code == 201, response.text
    return response.json()


def seed_ended(
    client, container, endpoint: dict[str, Any], status: RunStatus, *, at_offset_s: float,
    error: str | None = None, dead: bool = False,
) -> Run:
    """Store a run of ``endpoint`` that was due ``at_offset_s`` from now and ended in ``status``
    a second later (``pending`` and ``running`` do not end); ``dead`` makes it a dead letter."""
    pending = seed_run(client, container, endpoint, at_offset_s=at_offset_s, slot=f"test:{new_id()}")
    due = pending.scheduled_at
    if status is S.PENDING:
        return pending
    run = pending.start(at=due, worker="w-1")
    at = due + timedelta(seconds=1)
    moves = {
        S.RUNNING: lambda: run,
        S.SUCCEEDED: lambda: run.succeed(at=at),
        S.FAILED: lambda: run.fail(at=at, error=error or "HTTP 500"),
        S.TIMED_OUT: lambda: run.time_out(at=at),
        S.EXPIRED: lambda: run.expire(at=at),
        S.CANCELED: lambda: run.cancel(at=at),
    }
    run = moves[status]()
    if dead:
        run = run.dead_letter()

    async def store() -> None:
        async with container.uow() as uow:
            await uow.runs.update(run)
            await uow.commit()

    in_app(client, store)
    return run


async def audit_entries(client, tokens, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/audit?action={action}", headers=tokens["admin"])
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def stored_run_ids(client, tokens) -> list[str]:
    return [run["id"] for run in (await client.get("/v1/runs?limit=500", headers=tokens["viewer"])).json()["items"]]


# -- run now --------------------------------------------------------------------------


async def test_run_now_creates_a_manual_pending_run_with_its_params_and_dispatches_it(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)

    response = await client.post(
        f"/v1/endpoints/{endpoint['id']}/run", json={"params": {"full": True, "since": "2026-01-01"}},
        headers=tokens["operator"],
    )

    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["endpoint_id"], run["status"], run["source"], run["attempt"]) == (endpoint["id"], "pending", "manual", 1)
    assert run["params"] == {"full": True, "since": "2026-01-01"}
    assert run["scheduled_at"] == "2026-01-05T12:00:00Z"
    assert (await client.get(f"/v1/runs/{run['id']}", headers=tokens["viewer"])).json() == run
    assert [item.run_id for item in container.dispatcher.items] == [run["id"]]
    # the schedule is untouched: the next scheduled run is where it was
    after = (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json()
    assert (after["next_run_at"], after["next_run_source"]) == (endpoint["next_run_at"], endpoint["next_run_source"])


async def test_run_now_is_audited_against_the_new_run_with_the_param_names_only(client, tokens):
    endpoint = await an_endpoint(client, tokens)

    run = (await client.post(
        f"/v1/endpoints/{endpoint['id']}/run", json={"params": {"token": "s3cret-value"}}, headers=tokens["operator"]
    )).json()

    [entry] = await audit_entries(client, tokens, "endpoint.run")
    assert (entry["target_kind"], entry["target_id"], entry["token_id"]) == ("run", run["id"], tokens.ids["operator"])
    assert entry["summary"] == {"endpoint_id": endpoint["id"], "params": ["token"]}
    assert "s3cret-value" not in str(entry)


async def test_run_now_without_a_body_runs_with_no_params_and_twice_makes_two_runs(client, tokens):
    endpoint = await an_endpoint(client, tokens)

    first = await client.post(f"/v1/endpoints/{endpoint['id']}/run", headers=tokens["operator"])
    second = await client.post(f"/v1/endpoints/{endpoint['id']}/run", json={}, headers=tokens["admin"])

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["params"] == {} and second.json()["params"] == {}
    assert first.json()["id"] != second.json()["id"]
    assert sorted(await stored_run_ids(client, tokens)) == sorted([first.json()["id"], second.json()["id"]])


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"params": ["a"]}, "params", id="params not an object"),
        pytest.param({"params": {}, "priority": 9}, "priority", id="an unknown field"),
    ],
)
async def test_run_now_refuses_a_bad_body_naming_the_field_and_creates_nothing(client, tokens, body, path):
    endpoint = await an_endpoint(client, tokens)

    response = await client.post(f"/v1/endpoints/{endpoint['id']}/run", json=body, headers=tokens["operator"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in response.json()["error"]["details"]] == [path]
    assert await stored_run_ids(client, tokens) == []
    assert await audit_entries(client, tokens, "endpoint.run") == []


async def test_run_now_on_an_archived_endpoint_is_an_invalid_transition(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    await client.post(f"/v1/endpoints/{endpoint['id']}/archive", headers=tokens["admin"])

    response = await client.post(f"/v1/endpoints/{endpoint['id']}/run", headers=tokens["operator"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert await stored_run_ids(client, tokens) == []
    assert container.dispatcher.items == []


async def test_run_now_on_an_unknown_endpoint_answers_404(client, tokens):
    response = await client.post("/v1/endpoints/nope/run", headers=tokens["operator"])

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# -- health -----------------------------------------------------------------------------


async def test_health_summarizes_the_recent_runs_and_the_next_run(client, container, tokens):
    endpoint = await an_endpoint(client, tokens, auto_pause_after=10)
    # Given, oldest first: a success, a failure, a timeout, a cancel, a success, a dead letter,
    # and one run running and one pending now
    seed_ended(client, container, endpoint, S.SUCCEEDED, at_offset_s=-600)
    seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-500, error="HTTP 502")
    seed_ended(client, container, endpoint, S.TIMED_OUT, at_offset_s=-400)
    seed_ended(client, container, endpoint, S.CANCELED, at_offset_s=-300)
    success = seed_ended(client, container, endpoint, S.SUCCEEDED, at_offset_s=-200)
    dead = seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-100, error="HTTP 503", dead=True)
    seed_ended(client, container, endpoint, S.RUNNING, at_offset_s=-50)
    seed_ended(client, container, endpoint, S.PENDING, at_offset_s=-10)

    response = await client.get(f"/v1/endpoints/{endpoint['id']}/health", headers=tokens["viewer"])

    assert response.status_code == 200, response.text
    health = response.json()
    assert health["endpoint_id"] == endpoint["id"]
    assert (health["window"], health["finished"]) == (100, 6)
    assert health["counts"] == {"succeeded": 2, "failed": 2, "canceled": 1, "timed_out": 1, "expired": 0}
    assert health["success_rate"] == 2 / 5
    assert (health["pending"], health["running"]) == (1, 1)
    assert health["last_success"] == {
        "run_id": success.id, "at": "2026-01-05T11:56:41Z", "status": "succeeded", "error": None,
    }
    assert health["last_failure"] == {
        "run_id": dead.id, "at": "2026-01-05T11:58:21Z", "status": "failed", "error": "HTTP 503",
    }
    assert (health["dead_lettered"], health["dead_letters"]) == (True, 1)
    assert health["last_dead_letter"]["run_id"] == dead.id
    assert (health["status"], health["paused"], health["paused_until"]) == ("active", False, None)
    assert (health["failure_count"], health["auto_pause_after"]) == (0, 10)
    assert (health["next_run_at"], health["next_run_source"]) == ("2026-01-05T12:01:00Z", "baseline-interval")
    assert health["at"] == "2026-01-05T12:00:00Z"


async def test_health_window_covers_only_the_newest_finished_runs(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    for index in range(4):
        seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-1000 + index)
    newest = [seed_ended(client, container, endpoint, S.SUCCEEDED, at_offset_s=-100 + index) for index in range(3)]

    narrow = (await client.get(f"/v1/endpoints/{endpoint['id']}/health?window=3", headers=tokens["viewer"])).json()
    wide = (await client.get(f"/v1/endpoints/{endpoint['id']}/health?window=5", headers=tokens["viewer"])).json()

    assert (narrow["window"], narrow["finished"], narrow["success_rate"]) == (3, 3, 1.0)
    assert narrow["last_success"]["run_id"] == newest[-1].id
    assert narrow["last_failure"] is not None  # older than the window, still the newest failure
    assert (wide["finished"], wide["counts"]["failed"], wide["success_rate"]) == (5, 2, 3 / 5)


async def test_health_window_is_limited_to_500(client, tokens):
    endpoint = await an_endpoint(client, tokens)

    response = await client.get(f"/v1/endpoints/{endpoint['id']}/health?window=501", headers=tokens["viewer"])

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "window"


async def test_health_of_a_new_paused_endpoint_says_so_and_has_no_rate(client, tokens):
    endpoint = await an_endpoint(client, tokens)
    paused = (await client.post(
        f"/v1/endpoints/{endpoint['id']}/pause", json={"until": "2026-01-06T00:00:00Z"}, headers=tokens["operator"]
    )).json()

    health = (await client.get(f"/v1/endpoints/{endpoint['id']}/health", headers=tokens["viewer"])).json()

    assert (health["paused"], health["paused_until"]) == (True, "2026-01-06T00:00:00Z")
    assert (health["finished"], health["success_rate"]) == (0, None)
    assert (health["last_success"], health["last_failure"], health["last_dead_letter"]) == (None, None, None)
    assert health["dead_lettered"] is False
    assert (health["next_run_at"], health["next_run_source"]) == (paused["next_run_at"], paused["next_run_source"])
    assert health["next_run_at"] > "2026-01-06T00:00:00Z"  # not before the pause ends


async def test_health_of_an_unknown_endpoint_answers_404(client, tokens):
    response = await client.get("/v1/endpoints/nope/health", headers=tokens["viewer"])

    assert response.status_code == 404


# -- logs -------------------------------------------------------------------------------


async def test_a_runs_logs_answer_in_order_with_level_and_time(client, container, tokens, clock):
    endpoint = await an_endpoint(client, tokens)
    run = seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-10)
    other = seed_run(client, container, endpoint, at_offset_s=-5, slot="other")
    now = clock.now()

    async def write() -> None:
        async with container.uow() as uow:
            await uow.run_logs.append([
                LogLine(run_id=run.id, tenant_id=TENANT, seq=2, at=now, level=LogLevel.ERROR, message="HTTP 500"),
                LogLine(run_id=run.id, tenant_id=TENANT, seq=1, at=now - timedelta(seconds=1), message="POST https://billing.example/sync"),
                LogLine(run_id=other.id, tenant_id=TENANT, seq=1, at=now, message="not this run's"),
            ])
            await uow.commit()

    in_app(client, write)

    response = await client.get(f"/v1/runs/{run.id}/logs", headers=tokens["viewer"])

    assert response.status_code == 200, response.text
    assert response.json() == {"items": [
        {"seq": 1, "at": "2026-01-05T11:59:59Z", "level": "info", "message": "POST https://billing.example/sync"},
        {"seq": 2, "at": "2026-01-05T12:00:00Z", "level": "error", "message": "HTTP 500"},
    ]}


async def test_a_run_without_logs_answers_an_empty_list_and_an_unknown_run_404(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    run = seed_run(client, container, endpoint)

    empty = await client.get(f"/v1/runs/{run.id}/logs", headers=tokens["viewer"])
    unknown = await client.get("/v1/runs/nope/logs", headers=tokens["viewer"])

    assert (empty.status_code, empty.json()) == (200, {"items": []})
    assert unknown.status_code == 404


# -- cancel -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING])
async def test_a_pending_or_running_run_is_canceled_and_the_cancel_audited(client, container, tokens, status):
    endpoint = await an_endpoint(client, tokens)
    run = seed_ended(client, container, endpoint, status, at_offset_s=-10)

    response = await client.post(f"/v1/runs/{run.id}/cancel", headers=tokens["operator"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["finished_at"]) == (run.id, "canceled", "2026-01-05T12:00:00Z")
    assert body["error"] == "canceled by an operator"
    assert (await client.get(f"/v1/runs/{run.id}", headers=tokens["viewer"])).json()["status"] == "canceled"
    [entry] = await audit_entries(client, tokens, "run.cancel")
    assert (entry["target_kind"], entry["target_id"], entry["token_id"]) == ("run", run.id, tokens.ids["operator"])


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELED])
async def test_canceling_a_finished_run_is_an_invalid_transition_and_changes_nothing(client, container, tokens, status):
    endpoint = await an_endpoint(client, tokens)
    run = seed_ended(client, container, endpoint, status, at_offset_s=-10)
    before = (await client.get(f"/v1/runs/{run.id}", headers=tokens["viewer"])).json()

    response = await client.post(f"/v1/runs/{run.id}/cancel", headers=tokens["operator"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert (await client.get(f"/v1/runs/{run.id}", headers=tokens["viewer"])).json() == before
    assert await audit_entries(client, tokens, "run.cancel") == []


async def test_canceling_an_unknown_run_answers_404(client, tokens):
    response = await client.post("/v1/runs/nope/cancel", headers=tokens["operator"])

    assert response.status_code == 404


# -- dead letters -----------------------------------------------------------------------


async def test_dead_letters_lists_only_runs_that_failed_on_their_last_attempt(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    other = await an_endpoint(client, tokens, name="other")
    seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-400)  # will be retried: not a dead letter
    first = seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-300, dead=True)
    second = seed_ended(client, container, endpoint, S.TIMED_OUT, at_offset_s=-200, dead=True)
    elsewhere = seed_ended(client, container, other, S.EXPIRED, at_offset_s=-100, dead=True)
    seed_ended(client, container, endpoint, S.SUCCEEDED, at_offset_s=-50)

    async def ids(query: str = "") -> list[str]:
        response = await client.get(f"/v1/dead-letters{query}", headers=tokens["viewer"])
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["items"]]

    assert await ids() == [elsewhere.id, second.id, first.id]
    assert await ids(f"?endpoint_id={endpoint['id']}") == [second.id, first.id]
    assert await ids("?status=timed_out") == [second.id]
    assert await ids("?since=2026-01-05T11:55:00Z") == [elsewhere.id, second.id, first.id]
    assert await ids("?until=2026-01-05T11:55:00Z") == []
    page = (await client.get("/v1/dead-letters?limit=2", headers=tokens["viewer"])).json()
    assert [run["id"] for run in page["items"]] == [elsewhere.id, second.id]
    rest = (await client.get(f"/v1/dead-letters?limit=2&cursor={page['next_cursor']}", headers=tokens["viewer"])).json()
    assert ([run["id"] for run in rest["items"]], rest["next_cursor"]) == ([first.id], None)


async def test_retrying_a_dead_letter_makes_a_new_pending_run_and_takes_it_off_the_list(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    dead = seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-100, dead=True)

    response = await client.post(f"/v1/dead-letters/{dead.id}/retry", headers=tokens["operator"])

    assert response.status_code == 201, response.text
    run = response.json()
    assert run["id"] != dead.id
    assert (run["status"], run["source"], run["retry_of"], run["attempt"]) == ("pending", "retry", dead.id, 1)
    assert run["scheduled_at"] == "2026-01-05T12:00:00Z"
    assert [item.run_id for item in container.dispatcher.items] == [run["id"]]
    assert (await client.get("/v1/dead-letters", headers=tokens["viewer"])).json()["items"] == []
    old = (await client.get(f"/v1/runs/{dead.id}", headers=tokens["viewer"])).json()
    assert (old["status"], old["dead_lettered"]) == ("failed", False)
    [entry] = await audit_entries(client, tokens, "run.retry")
    assert (entry["target_kind"], entry["target_id"], entry["summary"]) == ("run", run["id"], {"retry_of": dead.id})

    again = await client.post(f"/v1/dead-letters/{dead.id}/retry", headers=tokens["operator"])

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"
    assert len(await audit_entries(client, tokens, "run.retry")) == 1


async def test_retrying_a_run_that_is_not_a_dead_letter_answers_409_and_an_unknown_one_404(client, container, tokens):
    endpoint = await an_endpoint(client, tokens)
    failed = seed_ended(client, container, endpoint, S.FAILED, at_offset_s=-100)

    refused = await client.post(f"/v1/dead-letters/{failed.id}/retry", headers=tokens["operator"])
    unknown = await client.post("/v1/dead-letters/nope/retry", headers=tokens["operator"])

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert unknown.status_code == 404
    assert await stored_run_ids(client, tokens) == [failed.id]
