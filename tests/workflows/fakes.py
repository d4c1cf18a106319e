"""A fake executor for workflow tests: each step plays its own script, whatever the call order.

    executor = StepExecutor()
    executor.script("fetch", Outcome.failed("down"), Outcome.succeeded(RunResult(output={"n": 3})))
    executor.script("bill", Block(gate))          # wait for ``gate``, then succeed

A call is recognised by its step key: the part of the run's task name after the
workflow slug (``<slug>.<key>``), or the endpoint's name for endpoint steps. A
call without a script left succeeds with ``{"step": key, "params": params}``
as its output.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from attrs import define

from domain.execution import LogFn, Outcome
from domain.runs import RunResult
from tests.engine.fakes import WAIT_S, Block, Step, _play


@define
class StepCall:
    key: str
    params: dict[str, Any]
    finished: bool = False
    cancelled: bool = False


class StepExecutor:
    """An executor and its registry (every target kind) in one; see the module's docstring."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[Step]] = defaultdict(list)
        self.calls: list[StepCall] = []
        self.gates: list[asyncio.Event] = []
        self._changed = asyncio.Condition()

    def gate(self) -> asyncio.Event:
        event = asyncio.Event()
        self.gates.append(event)
        return event

    def script(self, key: str, *steps: Step) -> None:
        self._scripts[key].extend(steps)

    def for_kind(self, kind: str) -> StepExecutor:
        return self

    def keys(self) -> list[str]:
        """The step keys called, in call order."""
        return [call.key for call in self.calls]

    def params_of(self, key: str) -> list[dict[str, Any]]:
        return [call.params for call in self.calls if call.key == key]

    async def wait_started(self, count: int = 1) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls) >= count), WAIT_S)

    async def execute(self, endpoint: Any, params: dict, *, log: LogFn) -> Outcome:
        key = endpoint.name.split(".", 1)[1] if "." in endpoint.name else endpoint.name
        script = self._scripts.get(key)
        step = script.pop(0) if script else Outcome.succeeded(RunResult(output={"step": key, "params": dict(params)}))
        call = StepCall(key=key, params=dict(params))
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()
        try:
            outcome = await _play(step, log)
            call.finished = True
            return outcome
        except asyncio.CancelledError:
            call.cancelled = True
            raise


def ok(output: Any = None) -> Outcome:
    """A success with ``output``."""
    return Outcome.succeeded(RunResult(output=output))


def boom(error: str = "boom", *, retryable: bool = True) -> Outcome:
    return Outcome.failed(error, retryable=retryable)


__all__ = ["Block", "StepCall", "StepExecutor", "boom", "ok"]
