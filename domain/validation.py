"""attrs validators shared by the entities; each failure names its field."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from domain.errors import ValidationFailed

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def aware(instance: Any, attribute: Any, value: datetime | None) -> None:
    """Refuse naive datetimes: every timestamp in the domain carries its time zone."""
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ValidationFailed.field(attribute.name, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed.field(attribute.name, "must be timezone-aware")


def positive_duration(instance: Any, attribute: Any, value: timedelta | None) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta):
        raise ValidationFailed.field(attribute.name, "must be a duration")
    if value <= timedelta(0):
        raise ValidationFailed.field(attribute.name, "must be greater than zero")


def slug(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise ValidationFailed.field(
            attribute.name,
            "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        )


def non_empty_text(max_length: int):
    def check(instance: Any, attribute: Any, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed.field(attribute.name, "must not be empty")
        if len(value) > max_length:
            raise ValidationFailed.field(attribute.name, f"must be at most {max_length} characters")

    return check


def text(max_length: int):
    def check(instance: Any, attribute: Any, value: str) -> None:
        if not isinstance(value, str):
            raise ValidationFailed.field(attribute.name, "must be a string")
        if len(value) > max_length:
            raise ValidationFailed.field(attribute.name, f"must be at most {max_length} characters")

    return check


def string_map(instance: Any, attribute: Any, value: dict[str, str]) -> None:
    if not isinstance(value, dict):
        raise ValidationFailed.field(attribute.name, "must be an object of strings")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationFailed.field(attribute.name, "keys must be non-empty strings")
        if not isinstance(item, str):
            raise ValidationFailed.field(f"{attribute.name}.{key}", "must be a string")


def non_negative_int(instance: Any, attribute: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationFailed.field(attribute.name, "must be a whole number of at least 0")


def positive_int(instance: Any, attribute: Any, value: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationFailed.field(attribute.name, "must be a whole number of at least 1")
