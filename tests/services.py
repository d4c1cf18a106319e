"""Where the test suite finds PostgreSQL and Redis, and what it does when they are absent.

Locally, a test that needs a missing server skips with the reason; under
``CI=true`` it fails, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get("OSTINATO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OSTINATO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> None:
    """Skip (locally) or fail (under CI) when the server behind ``url`` does not answer."""
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if CI:
        pytest.fail(f"{message} (CI=true: tests that need it must run)", pytrace=False)
    pytest.skip(message)


def require_postgres() -> None:
    require("PostgreSQL", POSTGRES_URL, 5432)


def require_redis() -> None:
    require("Redis", REDIS_URL, 6379)
