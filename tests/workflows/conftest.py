"""Fixtures of the workflow tests: the engine with workflows over each store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.clock import FixedClock
from tests.engine.fakes import RecordingDispatcher
from tests.workflows.fakes import StepExecutor
from tests.workflows.harness import Flow


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def executor() -> StepExecutor:
    return StepExecutor()


@pytest.fixture
async def flow(store: object, clock: FixedClock, dispatcher: RecordingDispatcher, executor: StepExecutor) -> AsyncIterator[Flow]:
    flow = Flow(store, clock, dispatcher, executor)
    try:
        yield flow
    finally:
        await flow.close()
