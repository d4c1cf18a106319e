"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct


class Alive(Struct, kw_only=True):
    """The process answers."""

    status: Annotated[Literal["alive"], Meta(description="Always alive.")] = "alive"


class CheckOut(Struct, kw_only=True):
    """One dependency's state."""

    ok: Annotated[bool, Meta(description="True when the dependency answered in time.")]
    error: Annotated[str | None, Meta(description="The kind of failure, when it did not.")] = None


class Readiness(Struct, kw_only=True):
    """Whether the process can serve requests: each dependency checked."""

    status: Annotated[Literal["ready", "unavailable"], Meta(description="ready when every check is ok.")]
    checks: Annotated[dict[str, CheckOut], Meta(description="Each check by name, e.g. database.")]
