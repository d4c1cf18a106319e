"""Authentication and authorization: bearer tokens, tenants and roles.

Every route under ``/v1`` declares the one permission it needs
(``opt=needs(Permission.OPERATE)``); :func:`authorizer` builds the guard
that authenticates the bearer token and checks that permission before the
handler, its body or its dependencies are touched. A route that forgot to
declare one needs ``admin`` (closed by default). The authenticated
:class:`~services.tokens.Principal` is then injected as ``principal``; its
tenant scopes every use case, so another tenant's resources are simply not
found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from domain.tokens import Permission
from services.tokens import Principal, TokensService

PERMISSION_KEY = "permission"

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def needs(permission: Permission) -> dict[str, Any]:
    """The ``opt`` of a route handler that requires ``permission``."""
    return {PERMISSION_KEY: permission}


def required_permission(handler: BaseRouteHandler) -> Permission:
    """What ``handler`` declared; :attr:`Permission.ADMIN` when it declared nothing."""
    return handler.opt.get(PERMISSION_KEY, Permission.ADMIN)


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


def authorizer(tokens: TokensService) -> Guard:
    """The guard: 401 without a valid token, 403 when its role lacks the route's permission."""

    async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        principal = await tokens.authenticate(bearer_secret(connection.headers.get("authorization")))
        principal.require(required_permission(handler))
        connection.scope["auth"] = principal

    return authorize


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller, as authenticated by the guard."""
    principal = request.scope.get("auth")
    if not isinstance(principal, Principal):  # pragma: no cover - a route outside the guarded router
        raise RuntimeError("no authenticated principal: is this route under the /v1 router?")
    return principal
