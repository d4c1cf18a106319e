"""Executors: the :class:`~domain.execution.ExecutorRegistry` that picks an executor by target kind."""

from __future__ import annotations

from adapters.http import HttpExecutor
from adapters.python import HandlerRegistry, PythonExecutor, default_registry
from domain.errors import NotFound
from domain.execution import Executor


class Executors:
    """The HTTP and Python executors of one worker, chosen by target kind (``http``, ``python``)."""

    def __init__(self, http: HttpExecutor, python: PythonExecutor) -> None:
        self.http = http
        self.python = python
        self._by_kind: dict[str, Executor] = {"http": http, "python": python}

    @classmethod
    def default(cls, registry: HandlerRegistry | None = None) -> Executors:
        """An HTTP executor with its own client, and a Python executor over ``registry`` (default: the global one)."""
        return cls(http=HttpExecutor(), python=PythonExecutor(registry if registry is not None else default_registry))

    def for_kind(self, kind: str) -> Executor:
        """The executor for ``kind``; raises ``NotFound`` for a kind no executor handles."""
        try:
            return self._by_kind[kind]
        except KeyError:
            raise NotFound("executor for target kind", repr(kind)) from None

    async def aclose(self) -> None:
        """Release the executors' resources (the HTTP client)."""
        await self.http.aclose()
        await self.python.aclose()
