"""Run logs: the lines a run wrote while it executed, kept with the run."""

from __future__ import annotations

import enum
from datetime import datetime

from attrs import field, frozen

from domain.ids import RunId, TenantId
from domain.validation import aware

LOG_LINE_LIMIT = 2000
LOG_LINES_PER_RUN = 1000


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _clip(value: str) -> str:
    return value if len(value) <= LOG_LINE_LIMIT else value[:LOG_LINE_LIMIT] + "…"


@frozen(kw_only=True)
class LogLine:
    """One line of a run's log; ``seq`` orders the lines of a run from 1."""

    run_id: RunId
    tenant_id: TenantId
    seq: int
    at: datetime = field(validator=aware)
    level: LogLevel = field(default=LogLevel.INFO, converter=LogLevel)
    message: str = field(converter=_clip)
