"""Every refusal has one shape, names the field at fault, and changes nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.errors import StorageUnavailable
from domain.tokens import Role
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher, in_app


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


async def nothing_stored(client, tokens) -> None:
    for resource in ("jobs", "endpoints"):
        listed = await client.get(f"/v1/{resource}", headers=tokens["viewer"])
        assert listed.json()["items"] == [], f"a refused request stored a {resource[:-1]}"


async def test_a_bad_cron_answers_422_on_schedule_cron_and_stores_nothing(client, tokens):
    response = await client.post(
        "/v1/endpoints", json={**HTTP_ENDPOINT, "schedule": {"cron": "*/5 * * *"}}, headers=tokens["admin"]
    )

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["message"] == "1 field is invalid"
    assert error["details"] == [
        {"path": "schedule.cron", "message": "expected 5 fields (minute hour day month weekday), got 4"}
    ]
    await nothing_stored(client, tokens)


async def test_every_invalid_field_is_named_in_one_answer(client, tokens):
    response = await client.post(
        "/v1/endpoints",
        json={**HTTP_ENDPOINT, "target": {"kind": "http", "url": "ftp://files.example"}, "schedule": {"cron": "nope"}},
        headers=tokens["admin"],
    )

    assert response.status_code == 422
    error = error_of(response)
    assert sorted(d["path"] for d in error["details"]) == ["schedule.cron", "target.url"]
    assert error["message"] == "2 fields are invalid"
    await nothing_stored(client, tokens)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"slug": 5, "name": "x"}, "slug", id="a number for a string"),
        pytest.param({"name": "Billing"}, "slug", id="a required field missing"),
        pytest.param({"slug": "billing", "name": "Billing", "colour": "red"}, "colour", id="an unknown field"),
        pytest.param({"slug": "Not A Slug", "name": "Billing"}, "slug", id="a slug breaking its pattern"),
        pytest.param({"slug": "billing", "name": "Billing", "labels": {"team": 1}}, "labels", id="a label not a string"),
    ],
)
async def test_a_bad_job_body_answers_422_with_the_path(client, tokens, body, path):
    response = await client.post("/v1/jobs", json=body, headers=tokens["admin"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in error_of(response)["details"]] == [path]
    await nothing_stored(client, tokens)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        pytest.param({"schedule": {"interval_s": "60"}}, "schedule.interval_s", id="a string for a number"),
        pytest.param({"schedule": {"interval_s": 0}}, "schedule.interval_s", id="a zero interval"),
        pytest.param({"retry": {"max_attempts": "3"}}, "retry.max_attempts", id="a string for an integer"),
        pytest.param({"allow_concurrent": 1}, "allow_concurrent", id="a number for a boolean"),
        pytest.param({"target": {"kind": "ftp", "url": "x"}}, "target.kind", id="an unknown target kind"),
        pytest.param({"target": {"kind": "http", "url": "https://x.example", "verb": "GET"}}, "target.verb", id="an unknown nested field"),
        pytest.param({"schedule": {"interval_s": 60, "cron": "* * * * *"}}, "schedule", id="both cron and interval"),
        pytest.param({"schedule": {"cron": "* * * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone", id="an unknown time zone"),
        pytest.param({"min_interval_s": 100, "max_interval_s": 10}, "min_interval_s", id="bounds the wrong way round"),
    ],
)
async def test_a_bad_endpoint_body_answers_422_with_the_path(client, tokens, changes, path):
    response = await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, **changes}, headers=tokens["admin"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in error_of(response)["details"]] == [path]
    await nothing_stored(client, tokens)


async def test_a_body_that_is_not_json_answers_422_on_the_root(client, tokens):
    response = await client.post(
        "/v1/jobs", content=b'{"slug": "billing",', headers={**tokens["admin"], "content-type": "application/json"}
    )

    assert response.status_code == 422
    [detail] = error_of(response)["details"]
    assert detail["path"] == ""
    assert "not valid JSON" in detail["message"]


async def test_a_number_for_a_timestamp_answers_422(client, tokens):
    endpoint = (await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=tokens["admin"])).json()

    response = await client.post(f"/v1/endpoints/{endpoint['id']}/pause", json={"until": 1767657600}, headers=tokens["operator"])

    assert response.status_code == 422
    assert [d["path"] for d in error_of(response)["details"]] == ["until"]
    stored = (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json()
    assert stored == endpoint


async def test_a_refused_patch_changes_nothing(client, tokens):
    endpoint = (await client.post("/v1/endpoints", json=HTTP_ENDPOINT, headers=tokens["admin"])).json()

    response = await client.patch(
        f"/v1/endpoints/{endpoint['id']}",
        json={"description": "changed", "schedule": {"cron": "61 * * * *"}},
        headers=tokens["admin"],
    )

    assert response.status_code == 422
    assert [d["path"] for d in error_of(response)["details"]] == ["schedule.cron"]
    assert (await client.get(f"/v1/endpoints/{endpoint['id']}", headers=tokens["viewer"])).json() == endpoint


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("status=bogus", "status"),
        ("source=bogus", "source"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-01-05T12:00:00", "until"),
    ],
)
async def test_a_bad_query_parameter_answers_422_with_its_name(client, tokens, query, path):
    response = await client.get(f"/v1/runs?{query}", headers=tokens["viewer"])

    assert response.status_code == 422, response.text
    assert [d["path"] for d in error_of(response)["details"]] == [path]


async def test_a_malformed_label_filter_answers_422_on_label(client, tokens):
    response = await client.get("/v1/jobs?label=team", headers=tokens["viewer"])

    assert response.status_code == 422
    assert [d["path"] for d in error_of(response)["details"]] == ["label"]


async def test_an_unknown_route_answers_404_in_the_same_shape(client, tokens):
    response = await client.get("/v1/nothing-here", headers=tokens["viewer"])

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_an_unsupported_method_answers_405_in_the_same_shape(client, tokens):
    response = await client.delete("/v1/jobs", headers=tokens["admin"])

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# -- failures of the server itself (memory store only: they are about the API, not the store) --


class _Failing:
    """A repository whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self._error

        return fail


async def _client_whose_jobs_fail(error: Exception):
    store = MemoryStore()

    def unit_of_work(*, read_only: bool = False):
        uow = store.unit_of_work(read_only=read_only)
        uow.jobs = _Failing(error)
        return uow

    container = bootstrap(load_settings(database_url="memory://"), uow=unit_of_work, dispatcher=RecordingDispatcher())
    client = AsyncTestClient(create_app(container))
    await client.__aenter__()
    issued = in_app(client, container.tokens.create, TENANT, role=Role.ADMIN)
    return client, {"Authorization": f"Bearer {issued.secret}"}


async def test_an_unexpected_error_answers_500_internal_without_its_details(caplog):
    client, headers = await _client_whose_jobs_fail(RuntimeError("password=hunter2"))
    try:
        with caplog.at_level(logging.ERROR, logger="ostinato.api"):
            response = await client.get("/v1/jobs", headers=headers)
    finally:
        await client.__aexit__(None, None, None)

    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal"
    assert error["details"] == []
    assert "hunter2" not in response.text
    assert any("hunter2" in str(record.exc_info[1]) for record in caplog.records if record.exc_info), "not logged"


async def test_an_unavailable_database_answers_503_unavailable():
    client, headers = await _client_whose_jobs_fail(StorageUnavailable("connection refused to 10.0.0.5"))
    try:
        response = await client.get("/v1/jobs", headers=headers)
    finally:
        await client.__aexit__(None, None, None)

    assert response.status_code == 503
    assert error_of(response)["code"] == "unavailable"
    assert "10.0.0.5" not in response.text
