"""Helpers of the API's response schemas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from api.http.schemas.common import utc


def test_utc_converts_an_aware_time_to_utc_and_passes_a_utc_one_through():
    berlin = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    converted = utc(berlin)
    assert converted == berlin and converted.tzinfo is timezone.utc and converted.hour == 1
    offset = datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert utc(offset).hour == 17 and utc(offset).tzinfo is timezone.utc
    already = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    assert utc(already) is already
    assert utc(None) is None
