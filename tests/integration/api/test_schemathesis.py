"""Property-based conformance: schemathesis generates requests from the OpenAPI document and runs
its checks on every answer: no 5xx, every status, header and body as documented, schema-invalid
requests refused, and routes that declare security refuse a request without the token.

In process, on the memory store, as an admin. Path ids are the seeded resources' half of the
time (so changes really happen) and generated the other half (so unknown ids answer 404).
Examples per operation are bounded to keep the module well under a minute on two cores.

One check is left out: ``positive_data_acceptance`` expects every schema-valid request to be
accepted, but the domain refuses values no JSON Schema can describe (a cron expression that
never fires, a time zone that does not exist, bounds the wrong way round, a cursor this server
did not issue); those answer 422 with the field's path, which the other checks verify.

The app is built when the module is imported: schemathesis parametrizes tests at collection,
and its lazy fixture loader does not work with pytest 9.
"""

from __future__ import annotations

import asyncio

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from adapters.memory import MemoryStore
from api.bootstrap import bootstrap
from api.http import create_app
from api.settings import load_settings
from domain.runs import Run, RunSource
from domain.tokens import Role
from tests.integration.api.conftest import HTTP_ENDPOINT, TENANT, RecordingDispatcher, workflow_definition

MAX_EXAMPLES = 20

_container = bootstrap(load_settings(database_url="memory://"), uow=MemoryStore().unit_of_work, dispatcher=RecordingDispatcher())


async def _seed() -> dict[str, str]:
    admin = await _container.tokens.create(TENANT, role=Role.ADMIN, name="schemathesis")
    spare = await _container.tokens.create(TENANT, role=Role.VIEWER, name="spare")
    job = await _container.jobs.create(TENANT, {"slug": "billing", "name": "Billing"})
    endpoint = await _container.endpoints.create(TENANT, {**HTTP_ENDPOINT, "job_id": job.id})
    now = _container.clock.now()
    run = Run.scheduled(
        tenant_id=TENANT, endpoint_id=endpoint.id, job_id=job.id, source=RunSource.MANUAL, scheduled_at=now, now=now
    )
    async with _container.uow() as uow:
        await uow.runs.add(run)
        await uow.commit()
    workflow = await _container.workflows.create(TENANT, workflow_definition())
    workflow_run = await _container.workflows.start(TENANT, workflow.slug, {"customer_id": "c-1"})
    return {
        "secret": admin.secret, "job_id": job.id, "endpoint_id": endpoint.id, "run_id": run.id,
        "token_id": spare.token.id, "slug": workflow.slug, "workflow_run_id": workflow_run.id,
    }


_seeded = asyncio.run(_seed())
_PATH_IDS = ("job_id", "endpoint_id", "run_id", "token_id", "slug", "workflow_run_id")
_config = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"bearer": {"bearer": _seeded["secret"]}}},
        "dictionaries": {name: {"values": [_seeded[name]]} for name in _PATH_IDS},
        "parameters": {f"path.{name}": {"dictionary": name, "probability": 0.5} for name in _PATH_IDS},
    }
)
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(_container), config=_config)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_the_schema(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
