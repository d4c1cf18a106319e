"""Fixtures of the engine tests: the fakes and the engine wired to each store."""

from __future__ import annotations

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
def engine(store: object, clock: FixedClock, dispatcher: RecordingDispatcher, executor: ScriptedExecutor) -> Engine:
    return Engine(store, clock, dispatcher, executor)
