"""OpenAIPlanner: asks a chat model, through the official ``openai`` client, to order a
workflow's steps into stages.

Any OpenAI-compatible server works (``base_url``). The request carries the
workflow's description (the goal) and each step's key, description and
explicit dependencies, and asks for structured output: a JSON schema
``{"stages": [[key, ...], ...], "rationale": str}`` whose keys are limited
to the steps' own keys.

Transient failures (connection errors, timeouts, 429 and 5xx answers) are
retried with tenacity, exponential backoff, up to ``attempts`` attempts, each
bounded by ``timeout_s`` seconds; the client's own retries are off so the
two never multiply. An answer that is not JSON or not shaped like a plan
raises :class:`PlannerAnswerInvalid`; exhausted retries raise
:class:`PlannerUnavailable`. Neither is handled here: callers go through
:func:`domain.planning.plan_with_fallback`, which also checks the plan itself
(every step once, dependencies honoured) and falls back to the deterministic
plan with the reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import openai
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from domain.errors import InfrastructureError, OstinatoError
from domain.planning import Plan, StepBrief

TRANSIENT: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,  # includes openai.APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    TimeoutError,  # an attempt that outlived timeout_s
)
"""Failures worth another attempt."""

ANSWER_LIMIT = 200_000
"""Longest answer, in characters, that is parsed."""

SYSTEM_PROMPT = """You plan the execution order of a workflow's steps.
You are given the workflow's goal and its steps (key, description, explicit dependencies).
Answer with stages: a list of lists of step keys. Steps in one stage run in parallel; a stage
starts only after every step of the previous stages has finished.
Rules: list every step exactly once; use only the given keys; put every step after all of its
explicit dependencies (in a later stage); order the other steps by what their descriptions
say they need. Give a short rationale."""


class PlannerAnswerInvalid(OstinatoError):
    """Raised when the model's answer is not JSON, or not shaped like a plan."""


class PlannerUnavailable(InfrastructureError):
    """Raised when the model could not be reached, or kept failing, for every attempt."""


def plan_schema(keys: Sequence[str]) -> dict[str, Any]:
    """The JSON schema asked for: stages of the given keys and a rationale (strict mode)."""
    return {
        "type": "object",
        "properties": {
            "stages": {
                "type": "array",
                "description": "Stages in execution order; the steps of one stage may run in parallel.",
                "items": {"type": "array", "items": {"type": "string", "enum": list(keys)}},
            },
            "rationale": {"type": "string", "description": "Why this order, in a few sentences."},
        },
        "required": ["stages", "rationale"],
        "additionalProperties": False,
    }


class OpenAIPlanner:
    """A :class:`~domain.planning.Planner` backed by a chat model.

    ``attempts`` bounds the tries per plan, ``timeout_s`` each try;
    ``backoff_s``/``backoff_max_s`` shape the exponential wait between tries
    (``backoff_s * 2 ** (n - 1)``, capped). ``sleep`` is the wait itself
    (tests pass a recorder).
    """

    name = "openai"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        attempts: int = 3,
        timeout_s: float = 20.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be greater than zero")
        self.client = client
        self.model = model
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep or asyncio.sleep

    async def plan(self, goal: str, steps: Sequence[StepBrief]) -> Plan:
        """The model's plan for ``steps``; raises :class:`PlannerUnavailable` or
        :class:`PlannerAnswerInvalid`. The plan is not validated against the steps here."""
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(_request(goal, steps), ensure_ascii=False)},
        ]
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "workflow_plan", "strict": True, "schema": plan_schema([s.key for s in steps])},
        }
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
            retry=retry_if_exception_type(TRANSIENT),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with asyncio.timeout(self.timeout_s):
                        completion = await self.client.chat.completions.create(
                            model=self.model,
                            messages=messages,
                            response_format=response_format,
                            temperature=0,
                            timeout=self.timeout_s,
                        )
        except TRANSIENT as exc:
            raise PlannerUnavailable(
                f"{self.model} did not answer after {self.attempts} attempt(s): {_describe(exc)}"
            ) from exc
        except openai.APIStatusError as exc:
            raise PlannerUnavailable(f"{self.model} refused the request: {_describe(exc)}") from exc
        return parse_answer(completion, planner=f"{self.name}:{self.model}")


def _request(goal: str, steps: Sequence[StepBrief]) -> dict[str, Any]:
    return {
        "goal": goal,
        "steps": [{"key": s.key, "description": s.description, "depends_on": list(s.depends_on)} for s in steps],
    }


def parse_answer(completion: Any, *, planner: str) -> Plan:
    """A :class:`Plan` from a chat completion; raises :class:`PlannerAnswerInvalid` saying what is wrong."""
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise PlannerAnswerInvalid("the answer has no choices")
    message = choices[0].message
    refusal = getattr(message, "refusal", None)
    if refusal:
        raise PlannerAnswerInvalid(f"the model refused: {refusal[:500]}")
    content = message.content
    if not isinstance(content, str) or not content.strip():
        raise PlannerAnswerInvalid("the answer is empty")
    if len(content) > ANSWER_LIMIT:
        raise PlannerAnswerInvalid(f"the answer is longer than {ANSWER_LIMIT} characters")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise PlannerAnswerInvalid(f"the answer is not JSON ({exc.msg} at position {exc.pos}): {content[:200]!r}") from None
    return plan_from_json(data, planner=planner)


def plan_from_json(data: Any, *, planner: str) -> Plan:
    """A :class:`Plan` from ``{"stages": [[str, ...], ...], "rationale": str}``."""
    if not isinstance(data, dict):
        raise PlannerAnswerInvalid(f"the answer is {type(data).__name__}, not an object with stages and rationale")
    stages = data.get("stages")
    if not isinstance(stages, list):
        raise PlannerAnswerInvalid("the answer has no list of stages")
    for index, stage in enumerate(stages):
        if not isinstance(stage, list) or not all(isinstance(key, str) for key in stage):
            raise PlannerAnswerInvalid(f"stages[{index}] is not a list of step keys")
    rationale = data.get("rationale", "")
    if not isinstance(rationale, str):
        raise PlannerAnswerInvalid("the rationale is not a string")
    return Plan(stages=stages, rationale=rationale, planner=planner)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def from_settings(
    api_key: str | None,
    base_url: str | None,
    model: str,
    http_client: httpx.AsyncClient | None = None,
    **options: Any,
) -> OpenAIPlanner:
    """An :class:`OpenAIPlanner` on a new ``AsyncOpenAI`` client (the client's own retries off).

    ``api_key`` of ``None`` reads ``OPENAI_API_KEY`` (the client refuses to start without one);
    ``base_url`` of ``None`` is OpenAI's; ``http_client`` lets tests and proxies supply the
    transport; ``options`` go to :class:`OpenAIPlanner` (``attempts``, ``timeout_s``, …).
    Building the client does no I/O.
    """
    client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        http_client=http_client,
        max_retries=0,
    )
    return OpenAIPlanner(client, model, **options)
