"""``/healthz`` (the process answers) and ``/readyz`` (its dependencies answer); no token needed."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from api.http.readiness import Check, run_checks
from api.http.schemas.health import Alive, CheckOut, Readiness


class HealthController(Controller):
    path = "/"
    tags = ["health"]

    @get("/healthz", operation_id="healthz", summary="Liveness")
    async def healthz(self) -> Alive:
        """Answers while the process runs; checks nothing else."""
        return Alive()

    @get(
        "/readyz",
        operation_id="readyz",
        summary="Readiness",
        responses={503: ResponseSpec(data_container=Readiness, description="A dependency did not answer.")},
    )
    async def readyz(self, readiness_checks: NamedDependency[dict[str, Check]]) -> Response[Readiness]:
        """Ready when every dependency answers in time (the database: a trivial query)."""
        failures = await run_checks(readiness_checks)
        body = Readiness(
            status="ready" if not any(failures.values()) else "unavailable",
            checks={name: CheckOut(ok=error is None, error=error) for name, error in failures.items()},
        )
        return Response(body, status_code=200 if body.status == "ready" else 503)
