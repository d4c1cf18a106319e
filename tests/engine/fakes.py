"""Fakes of the execution ports for the engine's service tests.

``RecordingDispatcher`` keeps every :class:`DispatchItem` it is handed.
``ScriptedExecutor`` plays a script of steps, one per call, in call order::

    executor = ScriptedExecutor()
    executor.script(Outcome.failed("boom"), Outcome.succeeded())
    executor.script(Block(gate), Outcome.succeeded())    # wait for ``gate`` first
    executor.script(Sleep(1.0))                           # overrun a short timeout

A call without a step left succeeds. Each call's params are recorded, and
``started`` counts calls that began, so a test can wait until a run is inside
its executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from attrs import define, field, frozen

from domain.endpoints import JobEndpoint
from domain.execution import DispatchItem, LogFn, Outcome
from domain.ids import RunId
from domain.run_logs import LogLevel

WAIT_S = 5.0
"""Longest a test waits for something that should happen at once (a guard against hangs, not a timing assert)."""


class RecordingDispatcher:
    """A :class:`~domain.execution.Dispatcher` that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.batches: list[list[DispatchItem]] = []

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        self.batches.append(list(items))

    @property
    def items(self) -> list[DispatchItem]:
        return [item for batch in self.batches for item in batch]

    @property
    def run_ids(self) -> list[RunId]:
        return [item.run_id for item in self.items]

    def take(self) -> list[RunId]:
        """The run ids sent since the last ``take``, in order."""
        ids = self.run_ids
        self.batches.clear()
        return ids


@frozen
class Block:
    """A step that waits for ``gate`` (an :class:`asyncio.Event`) before its outcome."""

    gate: asyncio.Event
    then: Outcome = field(factory=Outcome.succeeded)


@frozen
class Sleep:
    """A step that sleeps ``seconds`` before its outcome (to overrun a short timeout)."""

    seconds: float
    then: Outcome = field(factory=Outcome.succeeded)


@frozen
class Log:
    """A step that writes ``lines`` (``(level, message)``) to the run's log, then returns ``then``."""

    lines: tuple[tuple[LogLevel, str], ...]
    then: Outcome = field(factory=Outcome.succeeded)


Step = Outcome | Block | Sleep | Log


@define
class Call:
    """One call of the executor: what it was given and how it ended."""

    endpoint: JobEndpoint
    params: dict[str, Any]
    finished: bool = False
    cancelled: bool = False


class ScriptedExecutor:
    """An :class:`~domain.execution.Executor` and its registry (every target kind) in one."""

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self.calls: list[Call] = []
        self.running = 0
        self.most_running = 0
        self._changed = asyncio.Condition()

    def script(self, *steps: Step) -> None:
        """Append steps; each call takes the next one."""
        self._steps.extend(steps)

    def for_kind(self, kind: str) -> ScriptedExecutor:
        return self

    @property
    def params(self) -> list[dict[str, Any]]:
        return [call.params for call in self.calls]

    async def wait_started(self, count: int = 1) -> None:
        """Wait until ``count`` calls have begun (at most :data:`WAIT_S`)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls) >= count), WAIT_S)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def execute(self, endpoint: JobEndpoint, params: dict, *, log: LogFn) -> Outcome:
        call = Call(endpoint=endpoint, params=dict(params))
        self.calls.append(call)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await self._notify()
        step = self._steps.pop(0) if self._steps else Outcome.succeeded()
        try:
            if isinstance(step, Block):
                await step.gate.wait()
                step = step.then
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                step = step.then
            elif isinstance(step, Log):
                for level, message in step.lines:
                    log(level, message)
                step = step.then
            call.finished = True
            return step
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self.running -= 1
