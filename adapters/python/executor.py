"""PythonExecutor: runs a :class:`~domain.targets.PythonTarget` by calling its registered handler.

The handler receives the target's ``params`` overridden by the run's params as
keyword arguments, plus ``ctx`` (a :class:`HandlerContext`) when it declares a
parameter of that name. ``async def`` handlers are awaited on the worker's event
loop; plain functions run in a thread (``asyncio.to_thread``), so a blocking
handler does not stall other runs. The return value, which must be JSON, becomes
the run's ``output``.

How a handler's ending maps to the outcome:

- returns JSON (at most :data:`OUTPUT_LIMIT` bytes serialised) -> succeeded;
- returns something else -> failed, not retryable;
- raises -> failed with ``ExcType: message``, retryable unless the exception
  is a :class:`PermanentError`, a domain error, or has ``retryable = False``;
- unknown name, or params the handler does not accept -> failed, not retryable.

Log lines reach the run's log only through ``ctx.log``: records sent to
Python's :mod:`logging` from inside a handler go wherever the process's
logging is configured, not to the run. The endpoint's timeout is enforced by
the caller cancelling the call; a sync handler's thread cannot be interrupted
and runs to its end in the background.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
import traceback
from collections.abc import Callable
from typing import Any

from adapters.python.registry import HandlerRegistry, UnknownHandler
from domain.endpoints import JobEndpoint
from domain.errors import DomainError
from domain.execution import LogFn, Outcome
from domain.ids import EndpointId
from domain.run_logs import LOG_LINE_LIMIT, LogLevel
from domain.runs import RunResult
from domain.targets import PythonTarget

OUTPUT_LIMIT = 1024 * 1024
"""Largest handler return value kept as output, in bytes of JSON."""

CTX = "ctx"


class PermanentError(Exception):
    """Raise it (or a subclass) from a handler to fail the run without retrying it."""

    retryable = False


class HandlerContext:
    """What a handler can see of its run: the endpoint, and the run's log."""

    def __init__(self, *, endpoint_name: str, endpoint_id: EndpointId, handler: str, log: LogFn,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint_name = endpoint_name
        self.endpoint_id = endpoint_id
        self.handler = handler
        self._log = log
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._closed = False

    def close(self) -> None:
        """Drop any later line: the run is over (a sync handler's thread may outlive a timeout)."""
        self._closed = True

    def _emit(self, level: LogLevel, text: str) -> None:
        if not self._closed:
            self._log(level, text)

    def log(self, message: str, level: str = "info") -> None:
        """Append ``message`` to the run's log at ``level`` (debug, info, warning, error).

        Safe from a sync handler's thread: the line is handed to the event loop,
        which writes it before the handler's result is taken.
        """
        line_level = LogLevel(level)
        text = str(message)
        if threading.get_ident() == self._loop_thread:
            self._emit(line_level, text)
        elif not self._closed:
            self._loop.call_soon_threadsafe(self._emit, line_level, text)

    def __repr__(self) -> str:
        return f"HandlerContext(endpoint_name={self.endpoint_name!r}, handler={self.handler!r})"


def _signature(function: Callable[..., Any]) -> inspect.Signature | None:
    """``function``'s signature (``None`` if it has none), worked out once per handler."""
    try:
        return _cached_signature(function)
    except TypeError:  # an unhashable callable object
        return _signature_of(function)


def _signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


_cached_signature = functools.lru_cache(maxsize=1024)(_signature_of)


def accepts_ctx(function: Callable[..., Any]) -> bool:
    """True when ``function`` declares a parameter named ``ctx`` that can be passed by keyword."""
    signature = _signature(function)
    if signature is None:
        return False
    parameter = signature.parameters.get(CTX)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY,
    )


def is_retryable(exc: BaseException) -> bool:
    """False for a :class:`PermanentError`, a domain error, or any exception with ``retryable = False``."""
    if isinstance(exc, DomainError):
        return False
    return getattr(exc, "retryable", True) is not False


class PythonExecutor:
    """Executes python targets with the handlers of ``registry``."""

    def __init__(self, registry: HandlerRegistry) -> None:
        self._registry = registry

    async def aclose(self) -> None:
        """Nothing to release; present so every executor closes the same way."""

    async def execute(self, endpoint: JobEndpoint, params: dict, *, log: LogFn) -> Outcome:
        target = endpoint.target
        if not isinstance(target, PythonTarget):
            return Outcome.failed(f"PythonExecutor cannot run a {target.kind} target", retryable=False)
        name = target.handler
        try:
            function = self._registry.get(name)
        except UnknownHandler:
            message = _unknown_message(name, self._registry)
            log(LogLevel.ERROR, message)
            return Outcome.failed(message, retryable=False)

        kwargs: dict[str, Any] = {**target.params, **(params or {})}
        ctx: HandlerContext | None = None
        if accepts_ctx(function):
            if CTX in kwargs:
                message = f"handler {name!r}: 'ctx' is reserved for the run context and cannot be a param"
                log(LogLevel.ERROR, message)
                return Outcome.failed(message, retryable=False)
            ctx = HandlerContext(
                endpoint_name=endpoint.name, endpoint_id=endpoint.id, handler=name,
                log=log, loop=asyncio.get_running_loop(),
            )
            kwargs[CTX] = ctx
        refusal = _check_arguments(function, kwargs)
        if refusal is not None:
            message = f"handler {name!r} does not accept these params: {refusal}"
            log(LogLevel.ERROR, message)
            return Outcome.failed(message, retryable=False)

        try:
            value = await _call(function, kwargs)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            log(LogLevel.ERROR, _traceback_tail(exc))
            return Outcome.failed(message, retryable=is_retryable(exc))
        finally:
            if ctx is not None:
                ctx.close()
        return _outcome_of(name, value, log)


async def _call(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(function):
        value = await function(**kwargs)
    else:
        value = await asyncio.to_thread(function, **kwargs)
    while inspect.isawaitable(value):  # a sync wrapper around a coroutine function
        value = await value
    return value


def _check_arguments(function: Callable[..., Any], kwargs: dict[str, Any]) -> str | None:
    """Why ``function`` cannot be called with ``kwargs`` (``None``: it can); it depends only on
    the names, so it is worked out once per handler and set of names."""
    try:
        return _cached_refusal(function, frozenset(kwargs))
    except TypeError:  # an unhashable callable object
        return _refusal(function, frozenset(kwargs))


def _refusal(function: Callable[..., Any], names: frozenset[str]) -> str | None:
    signature = _signature(function)
    if signature is None:
        return None
    try:
        signature.bind(**dict.fromkeys(names))
    except TypeError as exc:
        return str(exc)
    return None


_cached_refusal = functools.lru_cache(maxsize=1024)(_refusal)


def _outcome_of(name: str, value: Any, log: LogFn) -> Outcome:
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        message = f"handler {name!r} returned a value that is not JSON-serialisable ({type(value).__name__}): {exc}"
        log(LogLevel.ERROR, message)
        return Outcome.failed(message, retryable=False)
    if len(encoded.encode()) > OUTPUT_LIMIT:
        message = f"handler {name!r} returned {len(encoded.encode())} bytes of JSON; the limit is {OUTPUT_LIMIT}"
        log(LogLevel.ERROR, message)
        return Outcome.failed(message, retryable=False)
    # Round-trip so the output holds plain JSON types only (tuples become lists, keys strings).
    return Outcome.succeeded(RunResult(output=json.loads(encoded)))


def _unknown_message(name: str, registry: HandlerRegistry) -> str:
    known = registry.names()
    listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "") if known else "none"
    return (
        f"no handler is registered under {name!r} (registered: {listed}). Register one with "
        f"`from adapters.python import handler` and `@handler({name!r})` on a function, and list its "
        "module in OSTINATO_HANDLER_MODULES so workers import it"
    )


def _traceback_tail(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip()
    limit = LOG_LINE_LIMIT - 1
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
