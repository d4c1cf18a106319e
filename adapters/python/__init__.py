"""Python targets: handlers registered by name (:func:`handler`) and the :class:`PythonExecutor` that calls them."""

from adapters.python.executor import OUTPUT_LIMIT, HandlerContext, PermanentError, PythonExecutor
from adapters.python.registry import (
    HandlerConflict,
    HandlerModuleError,
    HandlerRegistry,
    UnknownHandler,
    default_registry,
    handler,
    load_modules,
)

__all__ = [
    "OUTPUT_LIMIT",
    "HandlerConflict",
    "HandlerContext",
    "HandlerModuleError",
    "HandlerRegistry",
    "PermanentError",
    "PythonExecutor",
    "UnknownHandler",
    "default_registry",
    "handler",
    "load_modules",
]
