"""Keyset pagination: pages ordered newest first by ``(timestamp, id)``, with an opaque cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

from attrs import field, frozen

from domain.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@frozen
class Cursor:
    """The position after the last item of a page: its sort timestamp and id."""

    at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            at, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None or not isinstance(item_id, str):
                raise ValueError
            return cls(moment, item_id)
        except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationFailed.field("cursor", "is not a cursor this server issued") from None


def _check_limit(instance: object, attribute: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed.field("limit", f"must be a whole number from 1 to {MAX_LIMIT}")


@frozen(kw_only=True)
class PageRequest:
    """``limit`` items after ``cursor`` (``None``: the first page)."""

    limit: int = field(default=DEFAULT_LIMIT, validator=_check_limit)
    cursor: Cursor | None = None


@frozen(kw_only=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None = None
