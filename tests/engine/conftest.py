"""Fixtures of the engine tests: the fakes and the engine wired to each store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.clock import FixedClock
from tests.engine.fakes import RecordingDispatcher, ScriptedExecutor
from tests.engine.harness import Engine


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def executor() -> ScriptedExecutor:
    return ScriptedExecutor()


@pytest.fixture
async def engine(
    store: object, clock: FixedClock, dispatcher: RecordingDispatcher, executor: ScriptedExecutor
) -> AsyncIterator[Engine]:
    engine = Engine(store, clock, dispatcher, executor)
    try:
        yield engine
    finally:
        await engine.close()
