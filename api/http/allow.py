"""OPTIONS answers with the right ``Allow`` header.

Litestar 2 answers OPTIONS itself, but when several handlers share a path
its answer lists only the first handler's methods (litestar-org/litestar#4169,
fixed in Litestar 3). :func:`options_middleware` answers OPTIONS from the
merged route instead. (Litestar's 405 answers already carry ``Allow``.)
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.response.base import ASGIResponse
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

_STATE_KEY = "ostinato_allow_by_template"


def _allow_by_template(app: Litestar) -> dict[str, str]:
    """The ``Allow`` value of every HTTP route of ``app``, by path template (``/v1/jobs/{job_id}``);
    built on first use (the routes are final by then) and kept in the app's state."""
    table = app.state.get(_STATE_KEY)
    if table is None:
        table = {
            route.path_format: ", ".join(sorted(route.methods)) for route in app.routes if isinstance(route, HTTPRoute)
        }
        app.state[_STATE_KEY] = table
    return table


def options_middleware(app: ASGIApp) -> ASGIApp:
    """Answer OPTIONS with 204 and the route's full ``Allow`` list, before any guard runs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            litestar_app: Any = scope["litestar_app"]
            allow = _allow_by_template(litestar_app).get(scope.get("path_template", ""))
            if allow is not None:
                await ASGIResponse(body=b"", status_code=204, headers={"Allow": allow})(scope, receive, send)
                return
        await app(scope, receive, send)

    return middleware
