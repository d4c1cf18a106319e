"""The OpenAI planner driven through the real ``openai`` client over an ``httpx.MockTransport``.

No test reaches a model: a handler plays the OpenAI-compatible server, and
every plan goes through :func:`domain.planning.plan_with_fallback` as the
orchestrator will use it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from adapters.openai.planner import (
    OpenAIPlanner,
    PlannerAnswerInvalid,
    PlannerUnavailable,
    from_settings,
)
from domain.planning import DETERMINISTIC, StepBrief, deterministic_plan, plan_with_fallback

GOAL = "Every night, bill customers for yesterday's usage and tell finance."
STEPS = (
    StepBrief(key="fetch_usage", description="download yesterday's usage records"),
    StepBrief(key="compute_bills", description="compute each customer's bill from the usage"),
    StepBrief(key="send_invoices", description="email the invoices to customers", depends_on=("compute_bills",)),
    StepBrief(key="notify_finance", description="post a summary to finance"),
)
FALLBACK = deterministic_plan(STEPS).stages


def completion(content: str | None, **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "planner-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content, **message}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
    }


def answer(stages: list[list[str]], rationale: str = "usage comes first") -> httpx.Response:
    return httpx.Response(200, json=completion(json.dumps({"stages": stages, "rationale": rationale})))


class Server:
    """An OpenAI-compatible server: each request gets the next scripted reply (a response,
    an exception to raise, or a callable taking the request)."""

    def __init__(self, *replies: httpx.Response | BaseException | Callable[[httpx.Request], Any]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(request)
            if asyncio.iscoroutine(reply):
                reply = await reply
        return reply

    def body(self, index: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def planner_for(server: Server, **options: Any) -> OpenAIPlanner:
    client = openai.AsyncOpenAI(
        api_key="test", base_url="http://mock/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)), max_retries=0,
    )
    options.setdefault("sleep", Sleeps())
    return OpenAIPlanner(client, "planner-model", attempts=options.pop("attempts", 3), **options)


async def test_a_valid_answer_becomes_the_plan():
    server = Server(answer([["fetch_usage"], ["compute_bills", "notify_finance"], ["send_invoices"]]))
    plan = await plan_with_fallback(planner_for(server), GOAL, STEPS)
    assert plan.stages == (("fetch_usage",), ("compute_bills", "notify_finance"), ("send_invoices",))
    assert (plan.planner, plan.rationale, plan.fallback_reason) == ("openai:planner-model", "usage comes first", None)


async def test_the_request_asks_for_structured_output_from_the_descriptions():
    server = Server(answer([["fetch_usage", "compute_bills", "notify_finance"], ["send_invoices"]]))
    await planner_for(server).plan(GOAL, STEPS)
    [request] = server.requests
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    body = server.body()
    assert body["model"] == "planner-model" and body["temperature"] == 0
    schema = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["strict"] is True
    assert schema["schema"]["required"] == ["stages", "rationale"]
    assert schema["schema"]["properties"]["stages"]["items"]["items"]["enum"] == [s.key for s in STEPS]
    told = json.loads(body["messages"][1]["content"])
    assert told["goal"] == GOAL
    assert told["steps"][2] == {
        "key": "send_invoices", "description": "email the invoices to customers", "depends_on": ["compute_bills"],
    }


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            httpx.Response(200, json=completion("Sure! First fetch the usage, then...")),
            "the openai planner failed: PlannerAnswerInvalid: the answer is not JSON (Expecting value at position 0): "
            "'Sure! First fetch the usage, then...'",
        ),
        (
            httpx.Response(200, json=completion(json.dumps({"order": ["fetch_usage"]}))),
            "the openai planner failed: PlannerAnswerInvalid: the answer has no list of stages",
        ),
        (
            httpx.Response(200, json=completion(json.dumps({"stages": [["fetch_usage", 3]], "rationale": ""}))),
            "the openai planner failed: PlannerAnswerInvalid: stages[0] is not a list of step keys",
        ),
        (
            httpx.Response(200, json=completion(None, refusal="I cannot help with billing.")),
            "the openai planner failed: PlannerAnswerInvalid: the model refused: I cannot help with billing.",
        ),
        (
            answer([["fetch_usage"], ["compute_bills"], ["send_invoices"]]),
            "the openai planner's plan was invalid: stages: step 'notify_finance' is missing",
        ),
        (
            answer([["fetch_usage", "compute_bills"], ["send_invoices", "compute_bills"], ["notify_finance"]]),
            "the openai planner's plan was invalid: stages[1][1]: step 'compute_bills' appears twice (also stages[0][1])",
        ),
        (
            answer([["fetch_usage", "ghost"], ["compute_bills", "notify_finance"], ["send_invoices"]]),
            "the openai planner's plan was invalid: stages[0][1]: unknown step 'ghost'",
        ),
        (
            answer([["fetch_usage", "send_invoices"], ["compute_bills", "notify_finance"]]),
            "the openai planner's plan was invalid: stages[0][1]: step 'send_invoices' depends on 'compute_bills', "
            "which is not in an earlier stage (it is in stages[1])",
        ),
    ],
    ids=["not-json", "wrong-shape", "not-strings", "refusal", "missing-step", "duplicated-step", "unknown-step", "order-violation"],
)
async def test_an_unusable_answer_falls_back_to_the_deterministic_plan_and_says_why(reply, reason):
    server = Server(reply)
    plan = await plan_with_fallback(planner_for(server), GOAL, STEPS)
    assert plan.stages == FALLBACK
    assert plan.planner == DETERMINISTIC
    assert plan.fallback_reason == reason
    assert len(server.requests) == 1  # a bad answer is not a transient failure


async def test_a_read_timeout_is_retried_then_falls_back():
    sleeps = Sleeps()
    server = Server(httpx.ReadTimeout("read timed out"))
    plan = await plan_with_fallback(planner_for(server, sleep=sleeps, backoff_s=0.01), GOAL, STEPS)
    assert plan.stages == FALLBACK
    assert plan.fallback_reason == (
        "the openai planner failed: PlannerUnavailable: planner-model did not answer after 3 attempt(s): "
        "APITimeoutError: Request timed out."
    )
    assert len(server.requests) == 3
    assert sleeps.waits == [0.01, 0.02]  # exponential backoff between the attempts


async def test_a_server_slower_than_the_timeout_is_cut_off_and_falls_back():
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return answer([["fetch_usage"]])

    server = Server(slow)
    started = asyncio.get_running_loop().time()
    plan = await plan_with_fallback(planner_for(server, attempts=2, timeout_s=0.05), GOAL, STEPS)
    assert asyncio.get_running_loop().time() - started < 2
    assert plan.stages == FALLBACK
    assert plan.fallback_reason == (
        "the openai planner failed: PlannerUnavailable: planner-model did not answer after 2 attempt(s): TimeoutError"
    )
    assert len(server.requests) == 2


async def test_a_rate_limit_is_retried_and_the_next_answer_is_used():
    sleeps = Sleeps()
    server = Server(
        httpx.Response(429, json={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
        answer([["fetch_usage", "notify_finance"], ["compute_bills"], ["send_invoices"]]),
    )
    plan = await plan_with_fallback(planner_for(server, sleep=sleeps, backoff_s=0.01), GOAL, STEPS)
    assert plan.fallback_reason is None
    assert plan.stages == (("fetch_usage", "notify_finance"), ("compute_bills",), ("send_invoices",))
    assert len(server.requests) == 2 and sleeps.waits == [0.01]


async def test_server_errors_and_dropped_connections_are_retried():
    server = Server(
        httpx.Response(500, json={"error": {"message": "oops"}}),
        httpx.ConnectError("connection refused"),
        answer([["fetch_usage", "compute_bills", "notify_finance"], ["send_invoices"]]),
    )
    plan = await planner_for(server).plan(GOAL, STEPS)
    assert plan.stages[1] == ("send_invoices",) and len(server.requests) == 3


async def test_a_client_error_is_not_retried():
    server = Server(httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}))
    with pytest.raises(PlannerUnavailable, match="planner-model refused the request: AuthenticationError"):
        await planner_for(server).plan(GOAL, STEPS)
    assert len(server.requests) == 1


async def test_the_planner_raises_its_own_errors_when_used_directly():
    with pytest.raises(PlannerAnswerInvalid, match="the answer has no choices"):
        await planner_for(Server(httpx.Response(200, json={**completion("{}"), "choices": []}))).plan(GOAL, STEPS)


async def test_from_settings_builds_a_planner_on_any_compatible_base_url():
    server = Server(answer([["fetch_usage", "compute_bills", "notify_finance"], ["send_invoices"]]))
    planner = from_settings(
        "key-1", "http://local-llm:8080/v1", "local-model",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)), attempts=1,
    )
    assert (planner.model, planner.attempts, planner.client.max_retries) == ("local-model", 1, 0)
    plan = await plan_with_fallback(planner, GOAL, STEPS)
    assert plan.planner == "openai:local-model"
    assert str(server.requests[0].url) == "http://local-llm:8080/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer key-1"
