"""Fakes of the execution ports for the engine's service tests.

``RecordingDispatcher`` keeps every :class:`DispatchItem` it is handed.
``ScriptedExecutor`` plays a script of steps, one per call, in call order::

    executor = ScriptedExecutor()
    executor.script(Outcome.failed("boom"), Outcome.succeeded())
    executor.script(Block(gate), Outcome.succeeded())    # wait for ``gate`` first
    executor.script(Sleep(1.0))                           # overrun a short timeout
    executor.script(Log(((LogLevel.INFO, "hi"),), then=Block(gate)))

A call without a step left succeeds. Each call is recorded (its params, and
whether it finished or was cancelled), and :meth:`ScriptedExecutor.wait_started`
waits until a run is inside its executor. Gates made with
:meth:`ScriptedExecutor.gate` are opened when the test ends, so no task hangs.
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
        self.fail_next = False
        """Set to make the next dispatch fail, as a broker that went away would."""

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the broker is away")
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
    """A step that waits for ``gate`` (an :class:`asyncio.Event`), then plays ``then``."""

    gate: asyncio.Event
    then: Step = field(factory=Outcome.succeeded)


@frozen
class Sleep:
    """A step that sleeps ``seconds`` (to overrun a short timeout), then plays ``then``."""

    seconds: float
    then: Step = field(factory=Outcome.succeeded)


@frozen
class Log:
    """A step that writes ``lines`` (``(level, message)``) to the run's log, then plays ``then``."""

    lines: tuple[tuple[LogLevel, str], ...]
    then: Step = field(factory=Outcome.succeeded)


@frozen
class Raise:
    """A step that raises ``error``, as a buggy executor would."""

    error: Exception


Step = Outcome | Block | Sleep | Log | Raise


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
        self.gates: list[asyncio.Event] = []
        self.running = 0
        self.most_running = 0
        self._changed = asyncio.Condition()

    def gate(self) -> asyncio.Event:
        """A new gate for :class:`Block` steps; the ``engine`` fixture opens every gate at teardown."""
        event = asyncio.Event()
        self.gates.append(event)
        return event

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
        step = self._steps.pop(0) if self._steps else Outcome.succeeded()
        call = Call(endpoint=endpoint, params=dict(params))
        self.calls.append(call)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self._notify()
            outcome = await _play(step, log)
            call.finished = True
            return outcome
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self.running -= 1


async def _play(step: Step, log: LogFn) -> Outcome:
    if isinstance(step, Outcome):
        return step
    if isinstance(step, Raise):
        raise step.error
    if isinstance(step, Block):
        await step.gate.wait()
    elif isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
    else:
        for level, message in step.lines:
            log(level, message)
    return await _play(step.then, log)
