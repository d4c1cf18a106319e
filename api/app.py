"""Where a server finds the HTTP API.

``create_app(container)`` builds it over a container; ``from_environment()``
bootstraps one from ``OSTINATO_*`` settings first, for an ASGI server::

    uvicorn --factory api.app:from_environment
"""

from __future__ import annotations

from litestar import Litestar

from api.http import create_app


def from_environment() -> Litestar:
    """The API over a container bootstrapped from the environment; the container closes on shutdown."""
    from api.bootstrap import bootstrap

    container = bootstrap()
    app = create_app(container)
    app.on_shutdown.append(container.close)
    return app


__all__ = ["create_app", "from_environment"]
