"""HttpExecutor: runs an :class:`~domain.targets.HttpTarget` with httpx.

What a run records of the response is bounded: the status code, the first
:data:`~domain.runs.BODY_EXCERPT_LIMIT` characters of the body, and, for a JSON
body no larger than ``json_limit`` bytes, the parsed body as ``output``. The
executor never reads more of a response than that, however large it is.

Secret references in the URL and header values are resolved just before the
request; the resolved values never reach the outcome, the log or an error text
(see :mod:`adapters.secrets`). Redirects are not followed: a 3xx fails the run,
so that headers carrying secrets are never sent to another host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from adapters.secrets import Resolution, SecretError, SecretResolver
from domain.endpoints import JobEndpoint
from domain.execution import LogFn, Outcome
from domain.run_logs import LogLevel
from domain.runs import BODY_EXCERPT_LIMIT, RunResult, RunStatus
from domain.targets import HttpTarget

JSON_OUTPUT_LIMIT = 1024 * 1024
"""Largest JSON body, in bytes, that is parsed into ``RunResult.output``."""

QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
"""Methods whose run params travel as query parameters rather than in a JSON body."""

USER_AGENT = "ostinato"

# Enough bytes for BODY_EXCERPT_LIMIT characters of any UTF-8 text, plus one more character.
_EXCERPT_BYTES = BODY_EXCERPT_LIMIT * 4 + 4


def default_client() -> httpx.AsyncClient:
    """The shared client :class:`HttpExecutor` makes when given none: pooled, no redirects."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
        trust_env=False,
    )


class _RequestRefused(Exception):
    """Raised while building a request that cannot be sent; its text is safe to record."""


class HttpExecutor:
    """Executes HTTP targets through one shared :class:`httpx.AsyncClient`.

    ``client`` is the caller's to close when given; otherwise the executor makes
    one (:func:`default_client`) and :meth:`aclose` closes it. An httpx client
    belongs to the event loop it first runs on: use one executor per loop.
    ``json_limit`` is in bytes.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        secrets: SecretResolver | None = None,
        json_limit: int = JSON_OUTPUT_LIMIT,
    ) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else default_client()
        self._secrets = secrets if secrets is not None else SecretResolver()
        self._json_limit = json_limit

    async def aclose(self) -> None:
        """Close the client if this executor made it."""
        if self._owns_client:
            await self._client.aclose()

    async def execute(self, endpoint: JobEndpoint, params: dict, *, log: LogFn) -> Outcome:
        target = endpoint.target
        if not isinstance(target, HttpTarget):
            return Outcome.failed(f"HttpExecutor cannot run a {target.kind} target", retryable=False)
        secrets = self._secrets.resolution()
        timeout_s = endpoint.timeout.total_seconds()
        try:
            query, body = _split_params(target, params)
            request = self._build(target, query, body, secrets, timeout_s)
        except (SecretError, _RequestRefused) as exc:
            log(LogLevel.ERROR, str(exc))
            return Outcome.failed(str(exc), retryable=False)

        log(LogLevel.INFO, f"{target.method} {_display_url(target.url, query)}")
        started = time.perf_counter()
        try:
            response = await self._client.send(request, stream=True)
            try:
                raw, complete = await _read_bounded(response, self._limit_for(response))
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            message = f"timed out after {_ms(started)} (limit {timeout_s:g} s): {_describe(exc, secrets)}"
            log(LogLevel.ERROR, message)
            return Outcome(status=RunStatus.TIMED_OUT, error=message, retryable=True)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            message = f"request could not be sent: {_describe(exc, secrets)}"
            log(LogLevel.ERROR, message)
            return Outcome.failed(message, retryable=False)
        except httpx.HTTPError as exc:
            message = f"request failed after {_ms(started)}: {_describe(exc, secrets)}"
            log(LogLevel.ERROR, message)
            return Outcome.failed(message, retryable=True)

        status = response.status_code
        summary = f"{status} {response.reason_phrase}".strip()
        level = LogLevel.INFO if response.is_success else LogLevel.WARNING
        log(level, f"{summary} in {_ms(started)}")
        result = self._result(response, raw, complete, secrets, log)
        if response.is_success:
            return Outcome.succeeded(result)
        if response.is_redirect:
            location = secrets.redact(response.headers.get("location", "?"))
            return Outcome.failed(f"HTTP {summary}: redirects are not followed (to {location})", result=result, retryable=False)
        retryable = status in (408, 429) or status >= 500
        return Outcome.failed(f"HTTP {summary}", result=result, retryable=retryable)

    # -- request -------------------------------------------------------------------

    def _build(
        self, target: HttpTarget, query: Mapping[str, Any], body: Any, secrets: Resolution, timeout_s: float
    ) -> httpx.Request:
        url_text = secrets.resolve(target.url)
        headers = {name: secrets.resolve(value) for name, value in target.headers.items()}
        try:
            url = httpx.URL(url_text)
            if query:
                url = url.copy_merge_params(_query_items(query))
            return self._client.build_request(
                target.method,
                url,
                headers=headers,
                json=body,
                timeout=httpx.Timeout(timeout_s),
            )
        except (httpx.InvalidURL, httpx.LocalProtocolError, ValueError, TypeError) as exc:
            raise _RequestRefused(f"request could not be built: {_describe(exc, secrets)}") from None

    # -- response ------------------------------------------------------------------

    def _limit_for(self, response: httpx.Response) -> int:
        return max(self._json_limit + 1, _EXCERPT_BYTES) if _is_json(response) else _EXCERPT_BYTES

    def _result(
        self, response: httpx.Response, raw: bytes, complete: bool, secrets: Resolution, log: LogFn
    ) -> RunResult:
        # Redact before cutting, so a secret straddling the cut cannot survive in part.
        excerpt = secrets.redact(_decode(raw[:_EXCERPT_BYTES], response))[:BODY_EXCERPT_LIMIT] if raw else None
        output = None
        if _is_json(response) and raw:
            if not complete or len(raw) > self._json_limit:
                log(LogLevel.INFO, f"JSON body is larger than {self._json_limit} bytes: output not parsed")
            else:
                try:
                    output = json.loads(raw)
                except ValueError as exc:
                    log(LogLevel.WARNING, f"body says it is JSON but does not parse: {exc}")
        return RunResult(
            status_code=response.status_code,
            body_excerpt=excerpt,
            output=secrets.redact_json(output),
        )


def _split_params(target: HttpTarget, params: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """(query params, JSON body): run params go to the query for GET-like methods, else into the body."""
    if not params:
        return {}, target.body
    if target.method in QUERY_METHODS:
        return dict(params), target.body
    if target.body is None:
        return {}, dict(params)
    if isinstance(target.body, dict):
        return {}, {**target.body, **params}
    raise _RequestRefused(
        f"run params cannot be merged into a JSON body that is a {type(target.body).__name__}, not an object"
    )


def _query_items(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs from JSON params: strings as they are, lists as repeated keys, anything else as JSON."""
    items: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        items.extend((key, item if isinstance(item, str) else json.dumps(item)) for item in values)
    return items


def _display_url(url: str, query: Mapping[str, Any]) -> str:
    """The URL as configured (secret references unresolved), with the run's query params appended."""
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(_query_items(query))


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most about ``limit`` bytes of the body, and whether that is the whole body."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[: limit + 1]), False
    return bytes(buffer), True


def _is_json(response: httpx.Response) -> bool:
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _decode(raw: bytes, response: httpx.Response) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _describe(exc: BaseException, secrets: Resolution) -> str:
    """``ExcType: message`` with every resolved secret put back in reference form."""
    text = str(exc).strip()
    return secrets.redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"
