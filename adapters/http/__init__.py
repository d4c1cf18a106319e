"""HTTP targets: :class:`HttpExecutor` calls an endpoint's URL with httpx."""

from adapters.http.executor import JSON_OUTPUT_LIMIT, HttpExecutor, default_client

__all__ = ["JSON_OUTPUT_LIMIT", "HttpExecutor", "default_client"]
