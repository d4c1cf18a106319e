"""Execution ports: how runs reach workers (``Dispatcher``) and how a worker runs a target (``Executor``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from attrs import field, frozen

from domain.ids import RunId
from domain.run_logs import LogLevel
from domain.runs import RunResult, RunStatus
from domain.targets import HttpTarget, PythonTarget

LogFn = Callable[[LogLevel, str], None]
"""Append a line to the current run's log."""


@frozen(kw_only=True)
class DispatchItem:
    """One run to hand to the workers, with the priority of its endpoint (0 lowest, 9 highest),
    and, for a run sent ahead of its slot, the slot: a worker starts it then, not before."""

    run_id: RunId
    priority: int = 0
    not_before: datetime | None = None


class Dispatcher(Protocol):
    """Carries run ids to workers. The database stays the record of truth: a lost
    message only delays a run, since the reconciler dispatches it again."""

    async def dispatch(self, items: Sequence[DispatchItem]) -> None:
        """Send ``items``; runs of equal priority may travel in one message, each with its
        ``not_before``."""


def _final(instance: object, attribute: object, value: RunStatus) -> None:
    if value not in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT):
        raise ValueError(f"an outcome is succeeded, failed or timed_out, not {value}")


@frozen(kw_only=True)
class Outcome:
    """What executing a target produced. ``retryable`` is false for errors that
    another attempt cannot fix (an unknown handler, a bad secret reference)."""

    status: RunStatus = field(validator=_final)
    result: RunResult | None = None
    error: str | None = None
    retryable: bool = True

    @classmethod
    def succeeded(cls, result: RunResult | None = None) -> Outcome:
        return cls(status=RunStatus.SUCCEEDED, result=result)

    @classmethod
    def failed(cls, error: str, *, result: RunResult | None = None, retryable: bool = True) -> Outcome:
        return cls(status=RunStatus.FAILED, error=error, result=result, retryable=retryable)


class Executable(Protocol):
    """What an executor runs: an endpoint, or a run's task (a workflow step with its own target)."""

    @property
    def id(self) -> str | None: ...

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> HttpTarget | PythonTarget: ...

    @property
    def timeout(self) -> timedelta: ...


class Executor(Protocol):
    """Runs one target. Must not raise for a target's own failure: it returns a failed
    :class:`Outcome`. The caller enforces the endpoint's timeout by cancelling the call."""

    async def execute(self, endpoint: Executable, params: dict, *, log: LogFn) -> Outcome: ...


class ExecutorRegistry(Protocol):
    """Picks the executor for a target kind (``http``, ``python``)."""

    def for_kind(self, kind: str) -> Executor: ...

