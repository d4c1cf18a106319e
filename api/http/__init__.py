"""The HTTP API (Litestar): ``create_app(container)`` builds it over a bootstrapped container."""

from api.http.app import create_app

__all__ = ["create_app"]
