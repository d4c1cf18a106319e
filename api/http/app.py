"""The Litestar application factory: the API over a :class:`~api.bootstrap.Container`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Router
from litestar.di import Provide

from api.http.allow import options_middleware
from api.http.auth import authorizer, provide_principal
from api.http.bodies import decode_strictly
from api.http.controllers.audit import AuditController
from api.http.controllers.dead_letters import DeadLettersController
from api.http.controllers.endpoints import EndpointsController
from api.http.controllers.events import EventsController
from api.http.controllers.health import HealthController
from api.http.controllers.jobs import JobsController
from api.http.controllers.runs import RunsController
from api.http.controllers.tokens import TokensController
from api.http.controllers.workflow_runs import WorkflowRunsController
from api.http.controllers.workflows import WorkflowsController
from api.http.errors import error_response
from api.http.openapi import SECURITY, DocumentedStructs, openapi_config
from api.http.params import provide_page
from api.http.readiness import readiness_checks

if TYPE_CHECKING:
    from api.bootstrap import Container

V1_CONTROLLERS: list[type[Any]] = [
    JobsController,
    EndpointsController,
    RunsController,
    DeadLettersController,
    WorkflowsController,
    WorkflowRunsController,
    EventsController,
    AuditController,
    TokensController,
]


def create_app(container: Container, *, debug: bool = False) -> Litestar:
    """The HTTP API over ``container``'s services.

    Services are injected by name (``jobs``, ``endpoints``, ``runs``, ``tokens``,
    ``audit``, ``workflows``, ``events``); the caller as ``principal`` and the page of a
    list route as ``page``. The app does not own the container: whoever built it closes it.
    """
    v1 = Router(
        path="/v1",
        route_handlers=V1_CONTROLLERS,
        guards=[authorizer(container.tokens)],
        before_request=decode_strictly,
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "page": Provide(provide_page, sync_to_thread=False),
        },
        security=SECURITY,
    )
    checks = readiness_checks(container)
    return Litestar(
        route_handlers=[HealthController, v1],
        dependencies={
            "jobs": _value(container.jobs),
            "endpoints": _value(container.endpoints),
            "runs": _value(container.runs),
            "tokens": _value(container.tokens),
            "audit": _value(container.audit),
            "workflows": _value(container.workflows),
            "events": _value(container.events),
            "readiness_checks": _value(checks),
        },
        exception_handlers={Exception: error_response},
        middleware=[options_middleware],
        openapi_config=openapi_config(_version()),
        plugins=[DocumentedStructs()],
        logging_config=None,  # the process (the CLI, a server) configures logging, not the app
        debug=debug,
    )


def _value(value: Any) -> Provide:
    """A dependency that is always ``value`` (built once, in the composition root)."""

    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def _version() -> str:
    try:
        return version("ostinato")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without installing
        return "0.0.0"
