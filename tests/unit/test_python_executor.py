"""The Python executor and the handler registry: calling handlers by name and recording how they end."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from pathlib import Path

import pytest

from adapters.executors import Executors
from adapters.http import HttpExecutor
from adapters.python import (
    HandlerConflict,
    HandlerModuleError,
    HandlerRegistry,
    PermanentError,
    PythonExecutor,
    UnknownHandler,
    load_modules,
)
from adapters.python import registry as registry_module
from domain.errors import NotFound, ValidationFailed
from domain.execution import Outcome
from domain.run_logs import LogLevel
from domain.runs import RunStatus
from domain.targets import PythonTarget
from tests.builders import an_endpoint

pytestmark = pytest.mark.timeout(30)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[LogLevel, str]] = []

    def __call__(self, level: LogLevel, message: str) -> None:
        self.lines.append((level, message))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.lines]


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


async def run(
    registry: HandlerRegistry, handler: str, run_params: dict | None = None, *, params: dict | None = None
) -> tuple[Outcome, Log]:
    """Execute ``handler`` with target ``params`` and ``run_params``."""
    endpoint = an_endpoint(name="nightly-sync", target=PythonTarget(handler=handler, params=params or {}))
    log = Log()
    outcome = await PythonExecutor(registry).execute(endpoint, run_params or {}, log=log)
    return outcome, log


# -- calling ----------------------------------------------------------------------------


async def test_a_sync_handler_gets_merged_params_and_its_return_value_is_the_output(registry):
    seen = {}

    @registry.handler("demo.add")
    def add(a: int, b: int = 0) -> dict:
        seen["thread"] = threading.current_thread()
        return {"sum": a + b}

    outcome, _ = await run(registry, "demo.add", {"b": 5}, params={"a": 1, "b": 2})

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.output == {"sum": 6}
    assert seen["thread"] is not threading.main_thread()  # sync handlers run in a worker thread


async def test_an_async_handler_is_awaited_on_the_loop(registry):
    @registry.handler("demo.wait")
    async def wait(seconds: float) -> list:
        await asyncio.sleep(seconds)
        return ["done", seconds]

    outcome, _ = await run(registry, "demo.wait", {"seconds": 0.01})

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.output == ["done", 0.01]


async def test_the_output_holds_plain_json_types(registry):
    registry.register(lambda: {"pair": (1, 2), 3: None}, "demo.tuple")

    outcome, _ = await run(registry, "demo.tuple")

    assert outcome.result.output == {"pair": [1, 2], "3": None}


async def test_a_handler_returning_none_succeeds_with_null_output(registry):
    registry.register(lambda: None, "demo.nothing")

    outcome, _ = await run(registry, "demo.nothing")

    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result.output is None


@pytest.mark.parametrize("sync", [True, False])
async def test_a_handler_logs_to_its_run_through_ctx(registry, sync: bool):
    if sync:
        def greet(name: str, ctx) -> str:
            ctx.log(f"greeting {name} for {ctx.endpoint_name}")
            ctx.log("careful", level="warning")
            return "ok"
    else:
        async def greet(name: str, ctx) -> str:
            ctx.log(f"greeting {name} for {ctx.endpoint_name}")
            ctx.log("careful", level="warning")
            return "ok"
    registry.register(greet, "demo.greet")

    outcome, log = await run(registry, "demo.greet", {"name": "Ada"})

    assert outcome.status is RunStatus.SUCCEEDED
    assert (LogLevel.INFO, "greeting Ada for nightly-sync") in log.lines
    assert (LogLevel.WARNING, "careful") in log.lines
    # the handler's own lines, in order, all in before the outcome (the executor adds none of its own)
    assert log.messages == ["greeting Ada for nightly-sync", "careful"]


async def test_ctx_is_passed_only_to_handlers_that_declare_it(registry):
    registry.register(lambda **kwargs: sorted(kwargs), "demo.kwargs")

    outcome, _ = await run(registry, "demo.kwargs", {"a": 1})

    assert outcome.result.output == ["a"]


async def test_ctx_cannot_be_a_param_of_a_handler_that_takes_ctx(registry):
    registry.register(lambda ctx: None, "demo.ctx")

    outcome, _ = await run(registry, "demo.ctx", {"ctx": 1})

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "reserved" in outcome.error


async def test_params_the_handler_does_not_accept_fail_without_retry(registry):
    registry.register(lambda a: a, "demo.one")

    outcome, _ = await run(registry, "demo.one", {"a": 1, "b": 2})

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "does not accept these params" in outcome.error and "'b'" in outcome.error


# -- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("sync", [True, False])
async def test_an_exception_fails_the_run_and_may_be_retried(registry, sync: bool):
    def boom() -> None:
        raise ConnectionError("ledger unreachable")

    async def aboom() -> None:
        boom()

    registry.register(boom if sync else aboom, "demo.boom")

    outcome, log = await run(registry, "demo.boom")

    assert outcome.status is RunStatus.FAILED
    assert outcome.retryable is True
    assert outcome.error == "ConnectionError: ledger unreachable"
    assert any(level is LogLevel.ERROR and "Traceback" in message for level, message in log.lines)


async def test_a_permanent_error_is_not_retried(registry):
    class BadInvoice(PermanentError):
        pass

    def reject() -> None:
        raise BadInvoice("invoice 7 has no customer")

    registry.register(reject, "demo.reject")

    outcome, _ = await run(registry, "demo.reject")

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert outcome.error == "BadInvoice: invoice 7 has no customer"


async def test_exceptions_marked_not_retryable_and_domain_errors_are_not_retried(registry):
    class Marked(Exception):
        retryable = False

    def marked() -> None:
        raise Marked("no")

    def invalid() -> None:
        raise ValidationFailed.field("x", "bad")

    registry.register(marked, "demo.marked")
    registry.register(invalid, "demo.invalid")

    assert (await run(registry, "demo.marked"))[0].retryable is False
    assert (await run(registry, "demo.invalid"))[0].retryable is False


async def test_an_unknown_handler_fails_without_retry_and_says_how_to_register_it(registry):
    registry.register(lambda: None, "demo.known")

    outcome, log = await run(registry, "demo.missing")

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "'demo.missing'" in outcome.error
    assert "demo.known" in outcome.error
    assert "@handler('demo.missing')" in outcome.error and "OSTINATO_HANDLER_MODULES" in outcome.error
    assert log.lines[-1][0] is LogLevel.ERROR


async def test_a_return_value_that_is_not_json_fails_without_retry(registry):
    registry.register(lambda: {"when": object()}, "demo.object")
    registry.register(lambda: float("nan"), "demo.nan")

    outcome, _ = await run(registry, "demo.object")
    nan_outcome, _ = await run(registry, "demo.nan")

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "not JSON-serialisable" in outcome.error and "object" in outcome.error
    assert (nan_outcome.status, nan_outcome.retryable) == (RunStatus.FAILED, False)


async def test_an_output_over_the_limit_fails_without_retry(registry, monkeypatch: pytest.MonkeyPatch):
    from adapters.python import executor as executor_module

    monkeypatch.setattr(executor_module, "OUTPUT_LIMIT", 100)
    registry.register(lambda: "x" * 200, "demo.big")

    outcome, _ = await run(registry, "demo.big")

    assert (outcome.status, outcome.retryable) == (RunStatus.FAILED, False)
    assert "the limit is 100" in outcome.error


async def test_a_cancelled_run_drops_later_lines_from_its_sync_handler(registry):
    # Given a sync handler still running when the caller gives up (its thread cannot be stopped)
    release = threading.Event()
    finished = threading.Event()

    def slow(ctx) -> None:
        release.wait(10)
        ctx.log("too late")
        finished.set()

    registry.register(slow, "demo.slow")
    endpoint = an_endpoint(target=PythonTarget(handler="demo.slow"))
    log = Log()
    task = asyncio.ensure_future(PythonExecutor(registry).execute(endpoint, {}, log=log))
    await asyncio.sleep(0.05)

    # When the caller cancels, and the thread goes on to log
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.to_thread(finished.wait, 10)
    await asyncio.sleep(0.01)

    # Then the late line is not written to the finished run
    assert "too late" not in log.messages


# -- registry ----------------------------------------------------------------------------


def test_a_handler_is_named_after_its_module_and_function_by_default(registry):
    @registry.handler()
    def sync_invoices() -> None: ...

    @registry.handler
    def bare() -> None: ...

    assert registry.names() == [f"{__name__}.bare", f"{__name__}.sync_invoices"]
    assert registry.get(f"{__name__}.sync_invoices") is sync_invoices


def test_two_functions_under_one_name_are_refused(registry):
    @registry.handler("billing.sync")
    def first() -> None: ...

    with pytest.raises(HandlerConflict, match=r"'billing.sync' is already registered to .*first"):
        @registry.handler("billing.sync")
        def second() -> None: ...

    registry.register(first, "billing.sync")  # the same function again is harmless
    assert registry.get("billing.sync") is first


def test_a_handler_name_must_be_a_dotted_name(registry):
    with pytest.raises(ValueError, match="dotted name"):
        registry.register(lambda: None, "not a name")


def test_an_unknown_name_raises_not_found(registry):
    with pytest.raises(UnknownHandler) as caught:
        registry.get("nope.nothing")
    assert isinstance(caught.value, NotFound)


def test_load_modules_imports_each_so_their_decorators_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a module on the path that registers a handler with the module-level decorator
    fresh = HandlerRegistry()
    monkeypatch.setattr(registry_module, "default_registry", fresh)
    module = f"ostinato_handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from adapters.python import handler\n\n"
        "@handler('tmp.hello')\n"
        "def hello(name='x'):\n"
        "    return {'hi': name}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    # When it is loaded from a comma-separated setting
    try:
        loaded = load_modules(f" {module} , ,".split(","))
    finally:
        sys.modules.pop(module, None)

    # Then its handler is registered
    assert [m.__name__ for m in loaded] == [module]
    assert fresh.names() == ["tmp.hello"]


def test_a_module_that_cannot_be_imported_is_named(tmp_path: Path):
    with pytest.raises(HandlerModuleError, match="'ostinato_no_such_module'.*ModuleNotFoundError"):
        load_modules(["ostinato_no_such_module"])


# -- executors by kind -------------------------------------------------------------------


async def test_executors_pick_by_target_kind(registry):
    executors = Executors(http=HttpExecutor(), python=PythonExecutor(registry))
    try:
        assert executors.for_kind("http") is executors.http
        assert executors.for_kind("python") is executors.python
        with pytest.raises(NotFound, match="'ftp'"):
            executors.for_kind("ftp")
    finally:
        await executors.aclose()


async def test_the_examples_register_their_handlers():
    from adapters.python import default_registry

    load_modules(["examples.hello"])

    assert {"examples.hello", "examples.flaky", "examples.sleep"} <= set(default_registry.names())
    outcome, log = await run(default_registry, "examples.hello", {"name": "Ada"})
    assert outcome.result.output["greeting"] == "Hello, Ada!"


def test_the_example_jobs_file_is_a_valid_job_and_endpoints():
    import json

    from domain.specs import endpoint_fields, job_fields

    spec = json.loads((Path(__file__).parents[2] / "examples" / "jobs.json").read_text())

    job_fields(spec["job"])
    endpoints = [endpoint_fields(endpoint) for endpoint in spec["endpoints"]]
    assert [e["target"].handler for e in endpoints] == ["examples.hello", "examples.flaky"]
