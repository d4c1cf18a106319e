"""The OpenAPI document: complete, documented, and honest about security and errors."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from tests.integration.api.conftest import RecordingDispatcher

V1_ERRORS = {"400", "401", "403", "422", "500"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    container = bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())
    with TestClient(create_app(container)) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_building_the_app_and_its_schema_raises_no_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        container = bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())
        app = create_app(container)
        with TestClient(app) as client:
            assert client.get("/schema/openapi.json").status_code == 200


def test_every_schema_and_property_is_described(document):
    undocumented = []
    for name, schema in document["components"]["schemas"].items():
        if not schema.get("description"):
            undocumented.append(name)
        for prop, prop_schema in (schema.get("properties") or {}).items():
            if not prop_schema.get("description"):
                undocumented.append(f"{name}.{prop}")
    assert undocumented == []


def test_every_operation_and_parameter_is_described_and_named(document):
    undocumented = []
    operation_ids = []
    for path, method, operation in operations(document):
        operation_ids.append(operation.get("operationId"))
        if not operation.get("description") or not operation.get("summary"):
            undocumented.append(f"{method} {path}")
        for parameter in operation.get("parameters", []):
            if not parameter.get("description"):
                undocumented.append(f"{method} {path} ?{parameter['name']}")
    assert undocumented == []
    assert None not in operation_ids
    assert len(set(operation_ids)) == len(operation_ids)


def test_bearer_security_is_declared_on_every_v1_route_and_no_other(document):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, method, operation in operations(document):
        if path.startswith("/v1/"):
            assert operation.get("security") == [{"bearer": []}], f"{method} {path}"
        else:
            assert not operation.get("security"), f"{method} {path}"


def test_every_v1_route_documents_its_errors_in_the_one_error_shape(document):
    for path, method, operation in operations(document):
        if not path.startswith("/v1/"):
            continue
        responses = operation["responses"]
        assert V1_ERRORS <= set(responses), f"{method} {path}: {sorted(responses)}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        for status in V1_ERRORS:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, f"{method} {path} {status}"


def test_the_api_md_routes_are_all_there(document):
    expected = {
        "/v1/jobs": {"get", "post"},
        "/v1/jobs/{job_id}": {"get", "patch"},
        "/v1/jobs/{job_id}/pause": {"post"},
        "/v1/jobs/{job_id}/resume": {"post"},
        "/v1/jobs/{job_id}/archive": {"post"},
        "/v1/jobs/{job_id}/endpoints": {"get"},
        "/v1/endpoints": {"get", "post"},
        "/v1/endpoints/{endpoint_id}": {"get", "patch"},
        "/v1/endpoints/{endpoint_id}/pause": {"post"},
        "/v1/endpoints/{endpoint_id}/resume": {"post"},
        "/v1/endpoints/{endpoint_id}/archive": {"post"},
        "/v1/endpoints/{endpoint_id}/reset-failures": {"post"},
        "/v1/endpoints/{endpoint_id}/hints/interval": {"put", "delete"},
        "/v1/endpoints/{endpoint_id}/hints/oneshot": {"put", "delete"},
        "/v1/endpoints/{endpoint_id}/runs": {"get"},
        "/v1/runs": {"get"},
        "/v1/runs/{run_id}": {"get"},
        "/v1/workflows": {"get", "post"},
        "/v1/workflows/{slug}": {"get", "put"},
        "/v1/workflows/{slug}/archive": {"post"},
        "/v1/workflows/{slug}/run": {"post"},
        "/v1/workflows/{slug}/runs": {"get"},
        "/v1/workflows/{slug}/plan": {"post"},
        "/v1/workflow-runs/{workflow_run_id}": {"get"},
        "/v1/workflow-runs/{workflow_run_id}/steps": {"get"},
        "/v1/workflow-runs/{workflow_run_id}/cancel": {"post"},
        "/v1/events": {"get", "post"},
        "/v1/audit": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(document["paths"].get(path, {})), path


def test_request_timestamps_are_strings_so_numbers_are_refused(document):
    pause = document["components"]["schemas"]["PauseRequest"]["properties"]["until"]
    assert pause["format"] == "date-time"
    assert {"type": "string"} in pause["oneOf"]
    assert not any(option.get("type") in ("integer", "number") for option in pause["oneOf"])
