"""The real HttpExecutor against a local HTTP server: outcomes, bounds, params and secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from adapters.http import HttpExecutor
from adapters.secrets import EnvSecrets, SecretResolver
from domain.execution import Outcome
from domain.run_logs import LogLevel
from domain.runs import BODY_EXCERPT_LIMIT, RunStatus
from tests.builders import an_endpoint, an_http_target
from tests.http_server import Reply, StubHttpServer, http_server  # noqa: F401

pytestmark = pytest.mark.timeout(30)


class Log:
    """A LogFn that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[LogLevel, str]] = []

    def __call__(self, level: LogLevel, message: str) -> None:
        self.lines.append((level, message))

    @property
    def text(self) -> str:
        return "\n".join(message for _, message in self.lines)


@pytest.fixture
async def executor() -> AsyncIterator[HttpExecutor]:
    http = HttpExecutor()
    yield http
    await http.aclose()


def endpoint_for(url: str, *, timeout_s: float = 10, **target: object):
    return an_endpoint(target=an_http_target(url=url, **target), timeout=timedelta(seconds=timeout_s))


async def run(executor: HttpExecutor, endpoint, params: dict | None = None) -> tuple[Outcome, Log]:
    log = Log()
    outcome = await executor.execute(endpoint, params or {}, log=log)
    return outcome, log


async def test_a_2xx_json_response_succeeds_with_its_body_as_output(executor, http_server: StubHttpServer):
    url = http_server.route("/ok", status=201, json={"ok": True, "items": [1, 2]})

    outcome, log = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.status_code == 201
    assert outcome.result.output == {"ok": True, "items": [1, 2]}
    assert json.loads(outcome.result.body_excerpt) == {"ok": True, "items": [1, 2]}
    assert f"POST {url}" in log.text
    assert "201 Created in" in log.text


async def test_a_problem_json_body_is_parsed_too(executor, http_server: StubHttpServer):
    url = http_server.route("/p", status=200, json={"a": 1}, content_type="application/problem+json; charset=utf-8")

    outcome, _ = await run(executor, endpoint_for(url))

    assert outcome.result.output == {"a": 1}


async def test_a_text_response_is_kept_as_an_excerpt_without_output(executor, http_server: StubHttpServer):
    url = http_server.route("/text", body="plain words")

    outcome, _ = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.body_excerpt == "plain words"
    assert outcome.result.output is None


async def test_a_500_fails_and_may_be_retried(executor, http_server: StubHttpServer):
    url = http_server.route("/boom", status=500, json={"error": "down"})

    outcome, log = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.FAILED
    assert outcome.retryable is True
    assert outcome.error == "HTTP 500 Internal Server Error"
    assert outcome.result.status_code == 500
    assert outcome.result.output == {"error": "down"}
    assert any(level is LogLevel.WARNING for level, _ in log.lines)


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_throttling_and_server_errors_are_retryable(executor, http_server: StubHttpServer, status: int):
    url = http_server.route("/x", status=status)

    outcome, _ = await run(executor, endpoint_for(url))

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, True)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_other_client_errors_are_not_retried(executor, http_server: StubHttpServer, status: int):
    url = http_server.route("/x", status=status)

    outcome, _ = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.FAILED
    assert outcome.retryable is False
    assert outcome.error.startswith(f"HTTP {status}")


async def test_a_redirect_is_not_followed(executor, http_server: StubHttpServer):
    url = http_server.route("/moved", status=302, headers={"location": "https://elsewhere.example/"})

    outcome, _ = await run(executor, endpoint_for(url))

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "not followed" in outcome.error
    assert http_server.hits() == 1


async def test_a_response_slower_than_the_timeout_times_out(executor, http_server: StubHttpServer):
    url = http_server.route("/slow", delay=10)

    outcome, log = await run(executor, endpoint_for(url, timeout_s=0.3))

    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.retryable is True
    assert "timed out" in outcome.error and "ReadTimeout" in outcome.error
    assert any(level is LogLevel.ERROR for level, _ in log.lines)


async def test_a_refused_connection_fails_and_may_be_retried(executor, http_server: StubHttpServer):
    url = http_server.url_for("/gone")
    http_server.stop()

    outcome, _ = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.FAILED
    assert outcome.retryable is True
    assert "ConnectError" in outcome.error


async def test_a_huge_body_is_read_only_up_to_the_excerpt(executor, http_server: StubHttpServer):
    # Given a 200 MB response
    url = http_server.route("/huge", body_size=200_000_000, content_type="text/plain")

    # When it runs, the executor stops reading after the excerpt (the test would time out otherwise)
    outcome, _ = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.body_excerpt == "x" * BODY_EXCERPT_LIMIT


async def test_a_json_body_over_the_output_limit_gets_no_output(http_server: StubHttpServer):
    items = list(range(5000))
    url = http_server.route("/big", json={"items": items})
    executor = HttpExecutor(json_limit=1000)
    try:
        outcome, log = await run(executor, endpoint_for(url))
    finally:
        await executor.aclose()

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.output is None
    assert len(outcome.result.body_excerpt) == BODY_EXCERPT_LIMIT
    assert "larger than 1000 bytes" in log.text


async def test_an_invalid_json_body_succeeds_without_output(executor, http_server: StubHttpServer):
    url = http_server.route("/bad", body="{not json", content_type="application/json")

    outcome, log = await run(executor, endpoint_for(url))

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.output is None
    assert "does not parse" in log.text


async def test_run_params_are_merged_into_an_object_body(executor, http_server: StubHttpServer):
    url = http_server.route("/hook", json={})

    await run(executor, endpoint_for(url, method="POST", body={"full": False, "keep": 1}), {"full": True, "extra": "y"})

    assert http_server.requests("/hook")[0].json == {"full": True, "keep": 1, "extra": "y"}


async def test_run_params_become_the_body_when_there_is_none(executor, http_server: StubHttpServer):
    url = http_server.route("/hook", json={})

    await run(executor, endpoint_for(url, method="PUT"), {"a": 1})

    received = http_server.requests("/hook")[0]
    assert (received.method, received.json) == ("PUT", {"a": 1})


async def test_a_bodyless_request_sends_no_body(executor, http_server: StubHttpServer):
    url = http_server.route("/hook", json={})

    await run(executor, endpoint_for(url, method="POST"))

    assert http_server.requests("/hook")[0].body == b""


async def test_run_params_cannot_merge_into_a_list_body(executor, http_server: StubHttpServer):
    url = http_server.route("/hook", json={})

    outcome, _ = await run(executor, endpoint_for(url, body=[1, 2]), {"a": 1})

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "cannot be merged" in outcome.error
    assert http_server.hits() == 0


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD"])
async def test_run_params_of_a_get_like_request_travel_as_query_parameters(
    executor, http_server: StubHttpServer, method: str
):
    url = http_server.route("/search", json={"found": 1})

    outcome, log = await run(
        executor, endpoint_for(url + "?page=1&q=old", method=method), {"q": "new", "tags": ["a", "b"], "n": 3}
    )

    assert outcome.status is RunStatus.SUCCEEDED
    received = http_server.requests("/search")[0]
    assert received.method == method
    assert received.query == {"page": ["1"], "q": ["new"], "tags": ["a", "b"], "n": ["3"]}
    assert received.body == b""
    assert "tags=a&tags=b" in log.text


async def test_configured_headers_are_sent(executor, http_server: StubHttpServer):
    url = http_server.route("/h", json={})

    await run(executor, endpoint_for(url, headers={"x-team": "pay"}))

    headers = http_server.requests("/h")[0].headers
    assert headers["x-team"] == "pay"
    assert headers["user-agent"] == "ostinato"


# -- secrets ------------------------------------------------------------------------------

TOKEN = "s3cr3t-T0ken/with+odd chars"


async def test_secrets_are_resolved_in_headers_and_url_and_appear_nowhere_in_the_record(
    http_server: StubHttpServer,
):
    # Given a target whose URL and header hold references, and a server that echoes the header back
    http_server.route("/s", json={"echo": f"Bearer {TOKEN}", TOKEN: "as a key"})
    executor = HttpExecutor(secrets=SecretResolver([EnvSecrets({"API_TOKEN": TOKEN, "API_KEY": "k-12345"})]))
    endpoint = endpoint_for(
        http_server.url_for("/s?key=secret://env/API_KEY"),
        headers={"authorization": "Bearer secret://env/API_TOKEN"},
    )

    # When it runs
    try:
        outcome, log = await run(executor, endpoint)
    finally:
        await executor.aclose()

    # Then the server saw the values
    received = http_server.requests("/s")[0]
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.query == {"key": ["k-12345"]}
    # And the outcome and the log hold only the references
    assert outcome.status is RunStatus.SUCCEEDED
    record = repr(outcome) + log.text
    assert TOKEN not in record and "k-12345" not in record
    assert outcome.result.output == {"echo": "Bearer secret://env/API_TOKEN", "secret://env/API_TOKEN": "as a key"}
    assert "?key=secret://env/API_KEY" in log.text


async def test_secrets_read_the_process_environment_at_run_time(
    executor, http_server: StubHttpServer, monkeypatch: pytest.MonkeyPatch
):
    url = http_server.route("/s", json={})
    endpoint = endpoint_for(url, headers={"x-api-key": "secret://env/OSTINATO_TEST_KEY"})
    monkeypatch.setenv("OSTINATO_TEST_KEY", "from-env")

    outcome, _ = await run(executor, endpoint)

    assert outcome.status is RunStatus.SUCCEEDED
    assert http_server.requests("/s")[0].headers["x-api-key"] == "from-env"


async def test_a_missing_secret_fails_without_retry_and_names_the_variable(
    executor, http_server: StubHttpServer, monkeypatch: pytest.MonkeyPatch
):
    url = http_server.route("/s", json={})
    monkeypatch.delenv("OSTINATO_TEST_MISSING", raising=False)
    endpoint = endpoint_for(url, headers={"authorization": "Bearer secret://env/OSTINATO_TEST_MISSING"})

    outcome, log = await run(executor, endpoint)

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "OSTINATO_TEST_MISSING" in outcome.error
    assert "OSTINATO_TEST_MISSING" in log.text
    assert http_server.hits() == 0


async def test_a_malformed_reference_is_refused_rather_than_sent(executor, http_server: StubHttpServer):
    url = http_server.route("/s", json={})

    outcome, _ = await run(executor, endpoint_for(url, headers={"authorization": "secret://env/"}))

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "malformed secret reference" in outcome.error
    assert http_server.hits() == 0


async def test_an_error_message_holding_the_url_is_redacted(http_server: StubHttpServer):
    # Given a transport that fails with the resolved URL in its message
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    executor = HttpExecutor(client, secrets=SecretResolver([EnvSecrets({"API_KEY": "k-12345"})]))
    log = Log()

    outcome = await executor.execute(
        endpoint_for("https://api.example.com/v1?key=secret://env/API_KEY"), {}, log=log
    )
    await client.aclose()

    assert outcome.status is RunStatus.FAILED and outcome.retryable is True
    assert "k-12345" not in outcome.error + log.text
    assert "key=secret://env/API_KEY" in outcome.error


async def test_an_injected_client_is_left_open_for_its_owner():
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    executor = HttpExecutor(client)

    outcome = await executor.execute(endpoint_for("https://example.com/x"), {}, log=Log())
    await executor.aclose()

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.body_excerpt is None
    assert not client.is_closed
    await client.aclose()
