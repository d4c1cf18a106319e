"""Who may call what: bearer tokens, and the role × route matrix.

The policy, stated here independently of the code: a viewer reads; an
operator also operates (pause, resume, hints, reset failures, run, cancel)
and reads the audit trail; an admin does everything, including defining and
changing jobs and endpoints, archiving and managing tokens. A new route
must be added to :data:`ROUTES` with the least role that may call it.

A route that changes a resource for good (cancel a run, retry a dead letter, cancel a
workflow run) names ``{fresh_run}``, ``{dead_letter}`` or ``{fresh_workflow_run}``: each
request gets one of its own in that state, so every allowed role succeeds.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.audit import AuditQuery
from domain.ids import new_id
from domain.tokens import Role
from services.tokens import ensure_first_admin_token
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher, in_app, seed_run
from tests.integration.api.conftest import workflow_definition as definition

ROLES = ["viewer", "operator", "admin"]
RANK = {role: index for index, role in enumerate(ROLES)}

# (method, path, body, least role); {job}, {endpoint}, {run}, {token}, {workflow} (a slug) and
# {workflow_run} are filled in, and {fresh_run} (a new pending run), {dead_letter} (a new dead
# letter) and {fresh_workflow_run} (a new workflow run) anew for each request.
ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/jobs", {"slug": "new-job", "name": "New job"}, "admin"),
    ("GET", "/v1/jobs", None, "viewer"),
    ("GET", "/v1/jobs/{job}", None, "viewer"),
    ("PATCH", "/v1/jobs/{job}", {"name": "Renamed"}, "admin"),
    ("POST", "/v1/jobs/{job}/pause", None, "operator"),
    ("POST", "/v1/jobs/{job}/resume", None, "operator"),
    ("POST", "/v1/jobs/{job}/archive", None, "admin"),
    ("GET", "/v1/jobs/{job}/endpoints", None, "viewer"),
    ("POST", "/v1/endpoints", {**HTTP_ENDPOINT, "name": "new-endpoint"}, "admin"),
    ("GET", "/v1/endpoints", None, "viewer"),
    ("GET", "/v1/endpoints/{endpoint}", None, "viewer"),
    ("PATCH", "/v1/endpoints/{endpoint}", {"description": "changed"}, "admin"),
    ("POST", "/v1/endpoints/{endpoint}/pause", {"until": "2026-01-06T00:00:00Z"}, "operator"),
    ("POST", "/v1/endpoints/{endpoint}/resume", None, "operator"),
    ("POST", "/v1/endpoints/{endpoint}/archive", None, "admin"),
    ("POST", "/v1/endpoints/{endpoint}/reset-failures", None, "operator"),
    ("PUT", "/v1/endpoints/{endpoint}/hints/interval", {"interval_s": 30, "ttl_s": 600}, "operator"),
    ("DELETE", "/v1/endpoints/{endpoint}/hints/interval", None, "operator"),
    ("PUT", "/v1/endpoints/{endpoint}/hints/oneshot", {"run_at": "2026-01-05T12:00:30Z", "ttl_s": 600}, "operator"),
    ("DELETE", "/v1/endpoints/{endpoint}/hints/oneshot", None, "operator"),
    ("GET", "/v1/endpoints/{endpoint}/runs", None, "viewer"),
    ("POST", "/v1/endpoints/{endpoint}/run", {"params": {"full": True}}, "operator"),
    ("GET", "/v1/endpoints/{endpoint}/health", None, "viewer"),
    ("GET", "/v1/runs", None, "viewer"),
    ("GET", "/v1/runs/{run}", None, "viewer"),
    ("GET", "/v1/runs/{run}/logs", None, "viewer"),
    ("POST", "/v1/runs/{fresh_run}/cancel", None, "operator"),
    ("GET", "/v1/dead-letters", None, "viewer"),
    ("POST", "/v1/dead-letters/{dead_letter}/retry", None, "operator"),
    ("POST", "/v1/workflows", definition(slug="new-workflow"), "admin"),
    ("GET", "/v1/workflows", None, "viewer"),
    ("GET", "/v1/workflows/{workflow}", None, "viewer"),
    ("PUT", "/v1/workflows/{workflow}", definition(name="Renamed"), "admin"),
    ("POST", "/v1/workflows/{workflow}/archive", None, "admin"),
    ("POST", "/v1/workflows/{workflow}/plan", None, "viewer"),
    ("POST", "/v1/workflows/{workflow}/run", {"input": {"customer_id": "c-1"}}, "operator"),
    ("GET", "/v1/workflows/{workflow}/runs", None, "viewer"),
    ("GET", "/v1/workflow-runs/{workflow_run}", None, "viewer"),
    ("GET", "/v1/workflow-runs/{workflow_run}/steps", None, "viewer"),
    ("POST", "/v1/workflow-runs/{fresh_workflow_run}/cancel", None, "operator"),
    ("POST", "/v1/events", {"topic": "usage.imported", "payload": {"customer_id": "c-1"}}, "operator"),
    ("GET", "/v1/events", None, "viewer"),
    ("GET", "/v1/audit", None, "operator"),
    ("POST", "/v1/tokens", {"role": "viewer", "name": "ci"}, "admin"),
    ("GET", "/v1/tokens", None, "admin"),
    ("GET", "/v1/tokens/{token}", None, "admin"),
    ("POST", "/v1/tokens/{token}/revoke", None, "admin"),
]

# POST routes that change nothing, so leave no audit entry.
READ_ONLY_POSTS = {("POST", "/v1/workflows/{workflow}/plan")}


def _route_id(route: tuple[str, str, Any, str]) -> str:
    return f"{route[0]} {route[1]}"


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /v1, paths written with {name} placeholders."""
    found = set()
    for route in app.routes:
        if not route.path.startswith("/v1"):
            continue
        path = route.path_format
        for method in getattr(route, "methods", ()):
            if method not in ("HEAD", "OPTIONS"):
                found.add((method, path))
    return found


def test_the_matrix_covers_every_route_the_app_serves():
    app = create_app(bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher()))
    placeholders = {
        "{job}": "{job_id}", "{endpoint}": "{endpoint_id}", "{run}": "{run_id}", "{token}": "{token_id}",
        "{fresh_run}": "{run_id}", "{dead_letter}": "{run_id}", "{workflow}": "{slug}",
        "{workflow_run}": "{workflow_run_id}", "{fresh_workflow_run}": "{workflow_run_id}",
    }

    def normalized(path: str) -> str:
        for short, long in placeholders.items():
            path = path.replace(short, long)
        return path

    assert {(method, normalized(path)) for method, path, _, _ in ROUTES} == app_routes(app)


@pytest.fixture
async def world(client, container, tokens) -> dict[str, str]:
    """A job with an endpoint, a run, a spare token, and a workflow with a run: the ids the routes name."""
    job = (await client.post("/v1/jobs", json={"slug": "billing", "name": "Billing"}, headers=tokens["admin"])).json()
    endpoint = (
        await client.post("/v1/endpoints", json={**HTTP_ENDPOINT, "job_id": job["id"]}, headers=tokens["admin"])
    ).json()
    run = seed_run(client, container, endpoint, at_offset_s=-10)
    spare = in_app(client, container.tokens.create, TENANT, role=Role.VIEWER, name="spare")
    workflow = (await client.post("/v1/workflows", json=definition(), headers=tokens["admin"])).json()
    workflow_run = in_app(client, container.workflows.start, TENANT, workflow["slug"], {"customer_id": "c-1"})
    return {
        "job": job["id"], "endpoint": endpoint["id"], "run": run.id, "token": spare.token.id,
        "workflow": workflow["slug"], "workflow_run": workflow_run.id,
    }


def fill(template: str, world: dict[str, str], client, container) -> str:
    """``template`` with the world's ids, and a new run for ``{fresh_run}``, ``{dead_letter}`` or
    ``{fresh_workflow_run}``."""
    fresh: dict[str, str] = {}
    endpoint = {"id": world["endpoint"], "job_id": world["job"]}
    if "{fresh_run}" in template:
        fresh["fresh_run"] = seed_run(client, container, endpoint, slot=f"fresh:{new_id()}").id
    if "{dead_letter}" in template:
        pending = seed_run(client, container, endpoint, slot=f"dead:{new_id()}")
        now = container.clock.now()
        dead = pending.start(at=now, worker="w-1").fail(at=now, error="HTTP 500").dead_letter()

        async def store() -> None:
            async with container.uow() as uow:
                await uow.runs.update(dead)
                await uow.commit()

        in_app(client, store)
        fresh["dead_letter"] = dead.id
    if "{fresh_workflow_run}" in template:
        fresh["fresh_workflow_run"] = in_app(
            client, container.workflows.start, TENANT, world["workflow"], {"customer_id": "c-1"}
        ).id
    return template.format(**world, **fresh)


def audit_count(client, container) -> int:
    return len(in_app(client, container.audit.list, TENANT, AuditQuery(page=_big_page())).items)


def _big_page():
    from domain.pagination import MAX_LIMIT, PageRequest

    return PageRequest(limit=MAX_LIMIT)


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
async def test_each_role_may_call_a_route_only_if_the_policy_allows_it(client, container, tokens, world, route):
    method, template, body, least = route
    entries_before = audit_count(client, container)
    allowed_writes = 0

    anonymous = await client.request(method, fill(template, world, client, container), json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthenticated"

    for role in ROLES:
        path = fill(template, world, client, container)
        response = await client.request(method, path, json=body, headers=tokens[role])
        if RANK[role] >= RANK[least]:
            assert 200 <= response.status_code < 300, f"{role}: {response.status_code} {response.text}"
            allowed_writes += method != "GET" and (method, template) not in READ_ONLY_POSTS
        else:
            assert response.status_code == 403, f"{role}: {response.status_code} {response.text}"
            assert response.json()["error"]["code"] == "forbidden"

    # refused requests leave no trace; each allowed change leaves exactly one entry
    assert audit_count(client, container) - entries_before == allowed_writes


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer ost_not-a-token-this-server-issued", id="an unknown token"),
        pytest.param("Basic YWRtaW46YWRtaW4=", id="another scheme"),
        pytest.param("Bearer", id="a scheme without a token"),
        pytest.param("ost_plain", id="a token without a scheme"),
    ],
)
async def test_a_bad_authorization_header_answers_401_with_a_bearer_challenge(client, tokens, authorization):
    response = await client.get("/v1/jobs", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_scheme_is_case_insensitive(client, tokens):
    secret = tokens["viewer"]["Authorization"].removeprefix("Bearer ")

    response = await client.get("/v1/jobs", headers={"Authorization": f"bearer {secret}"})

    assert response.status_code == 200


async def test_a_token_issued_through_the_api_works_until_it_is_revoked(client, tokens):
    issued = await client.post("/v1/tokens", json={"role": "operator", "name": "deploy bot"}, headers=tokens["admin"])
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["secret"].startswith("ost_")
    assert body["token"]["role"] == "operator"
    assert body["token"]["name"] == "deploy bot"
    assert body["token"]["active"] is True
    headers = {"Authorization": f"Bearer {body['secret']}"}
    assert (await client.get("/v1/jobs", headers=headers)).status_code == 200

    revoked = await client.post(f"/v1/tokens/{body['token']['id']}/revoke", headers=tokens["admin"])

    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert revoked.json()["revoked_at"] == "2026-01-05T12:00:00Z"
    assert (await client.get("/v1/jobs", headers=headers)).status_code == 401


async def test_token_lists_never_show_a_secret_and_record_the_last_use(client, tokens):
    await client.get("/v1/jobs", headers=tokens["viewer"])

    listed = await client.get("/v1/tokens", headers=tokens["admin"])

    assert listed.status_code == 200
    assert "ost_" not in listed.text
    by_name = {token["name"]: token for token in listed.json()["items"]}
    assert set(by_name) == {"admin", "operator", "viewer"}  # only the caller's tenant
    assert by_name["viewer"]["last_used_at"] == "2026-01-05T12:00:00Z"
    assert set(by_name["viewer"]) == {"id", "role", "name", "active", "created_at", "last_used_at", "revoked_at"}


async def test_health_readiness_and_the_schema_need_no_token(client):
    for path in ("/healthz", "/readyz", "/schema/openapi.json"):
        assert (await client.get(path)).status_code == 200, path


async def test_a_configured_token_authenticates_without_being_stored():
    secret = "configured-secret-0123456789abcdef"
    settings = load_settings(database_url="memory://", api_tokens=f"acme:operator:{secret}")
    store = MemoryStore()
    container = bootstrap(settings, uow=store.unit_of_work, dispatcher=RecordingDispatcher())

    async with AsyncTestClient(create_app(container)) as client:
        listed = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
        archived = await client.post("/v1/jobs", json={"slug": "x", "name": "X"}, headers={"Authorization": f"Bearer {secret}"})
        wrong = await client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}x"})

    assert listed.status_code == 200
    assert archived.status_code == 403  # an operator may not define jobs
    assert wrong.status_code == 401
    assert store.tokens == {}


async def test_the_first_admin_token_is_issued_once_on_a_fresh_store():
    container = bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())

    first = await ensure_first_admin_token(container.tokens)
    second = await ensure_first_admin_token(container.tokens)

    assert first is not None and first.startswith("ost_")
    assert second is None
    principal = await container.tokens.authenticate(first)
    assert (principal.tenant_id, principal.role) == ("default", Role.ADMIN)


async def test_no_first_admin_token_when_tokens_are_configured():
    settings = load_settings(database_url="memory://", api_tokens="default:admin:configured-secret-0123456789abcdef")
    container = bootstrap(settings, uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())

    assert await ensure_first_admin_token(container.tokens) is None
