"""Run logs: the lines a run wrote while it executed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from api.http.schemas.common import literal_of, utc
from domain.run_logs import LogLevel, LogLine


class LogLineOut(Struct, kw_only=True):
    """One line a run logged."""

    seq: Annotated[int, Meta(ge=1, description="The line's place in the run's log, from 1.")]
    at: Annotated[datetime, Meta(description="When it was logged (UTC).")]
    level: Annotated[literal_of(LogLevel), Meta(description="debug, info, warning or error.")]
    message: Annotated[str, Meta(description="The text (at most 2,000 characters).")]

    @classmethod
    def of(cls, line: LogLine) -> LogLineOut:
        return cls(seq=line.seq, at=utc(line.at), level=line.level.value, message=line.message)


class RunLogs(Struct, kw_only=True):
    """A run's log, oldest line first (at most 1,000 lines)."""

    items: Annotated[list[LogLineOut], Meta(description="The lines, in seq order.")]
