"""Python handlers: functions registered by name, which python targets call.

::

    from adapters.python import handler

    @handler("billing.sync_invoices")
    async def sync_invoices(full: bool = False, ctx=None) -> dict:
        ...

A worker imports the modules named in ``OSTINATO_HANDLER_MODULES``
(comma-separated) with :func:`load_modules`, so their decorators run before
the first run arrives. Registering is the only thing a decorator does; it
connects to nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, TypeVar, overload

from domain.errors import DomainError, NotFound
from domain.targets import HANDLER_RE

F = TypeVar("F", bound=Callable[..., Any])


class HandlerConflict(DomainError):
    """Raised when a second, different function is registered under a name already taken."""


class HandlerModuleError(DomainError):
    """Raised when a module listed for handlers cannot be imported; the message names it."""


class UnknownHandler(NotFound):
    """Raised when no handler is registered under a name."""

    def __init__(self, name: str) -> None:
        super().__init__("handler", repr(name))
        self.name = name


def _qualified(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


class HandlerRegistry:
    """Handler functions by name. Names look like dotted paths (``billing.sync_invoices``)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}

    def register(self, function: F, name: str | None = None) -> F:
        """Register ``function`` under ``name`` (default ``module.function``) and return it unchanged.

        Registering the same function again is harmless, as is re-registering a
        function of the same module and qualified name (a reloaded module);
        another function under a taken name raises :class:`HandlerConflict`.
        """
        if not callable(function):
            raise TypeError(f"a handler must be callable, not {type(function).__name__}")
        key = name if name is not None else f"{function.__module__}.{function.__name__}"
        if not isinstance(key, str) or not HANDLER_RE.match(key):
            raise ValueError(f"handler name {key!r} must be a dotted name such as 'billing.sync_invoices'")
        existing = self._handlers.get(key)
        if existing is not None and existing is not function and _qualified(existing) != _qualified(function):
            raise HandlerConflict(
                f"handler name {key!r} is already registered to {_qualified(existing)}; "
                f"cannot register {_qualified(function)} under it too (pass another name to @handler)"
            )
        self._handlers[key] = function
        return function

    @overload
    def handler(self, name: F) -> F: ...

    @overload
    def handler(self, name: str | None = None) -> Callable[[F], F]: ...

    def handler(self, name: str | Callable[..., Any] | None = None) -> Any:
        """Decorator form of :meth:`register`: ``@registry.handler()``, ``@registry.handler("x.y")`` or bare."""
        if callable(name):
            return self.register(name)

        def decorate(function: F) -> F:
            return self.register(function, name)

        return decorate

    def get(self, name: str) -> Callable[..., Any]:
        """The handler registered under ``name``; raises :class:`UnknownHandler`."""
        try:
            return self._handlers[name]
        except KeyError:
            raise UnknownHandler(name) from None

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests and reloads); raises :class:`UnknownHandler` when it is not registered."""
        if self._handlers.pop(name, None) is None:
            raise UnknownHandler(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)


default_registry = HandlerRegistry()
"""The registry :func:`handler` registers into and workers run handlers from."""


@overload
def handler(name: F) -> F: ...


@overload
def handler(name: str | None = None) -> Callable[[F], F]: ...


def handler(name: str | Callable[..., Any] | None = None) -> Any:
    """Register the decorated function in :data:`default_registry` under ``name`` (default ``module.function``)."""
    return default_registry.handler(name)


def load_modules(names: Iterable[str]) -> list[ModuleType]:
    """Import each named module so its ``@handler`` decorators run; blank names are skipped.

    Takes the items of ``OSTINATO_HANDLER_MODULES`` split on commas. Raises
    :class:`HandlerModuleError` naming the first module that fails to import.
    """
    modules: list[ModuleType] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        try:
            modules.append(importlib.import_module(name))
        except Exception as exc:
            raise HandlerModuleError(
                f"handler module {name!r} could not be imported: {type(exc).__name__}: {exc}"
            ) from exc
    return modules
