"""Helpers of the API's response schemas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec

from api.http.schemas.common import utc
from api.http.schemas.runs import RunOut
from domain.runs import RunView
from tests.builders import a_finished_run, a_run, an_endpoint


def test_utc_converts_an_aware_time_to_utc_and_passes_a_utc_one_through():
    berlin = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    converted = utc(berlin)
    assert converted == berlin and converted.tzinfo is timezone.utc and converted.hour == 1
    offset = datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert utc(offset).hour == 17 and utc(offset).tzinfo is timezone.utc
    already = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    assert utc(already) is already
    assert utc(None) is None


def test_a_run_out_has_the_fields_of_a_run_view_in_their_order():
    assert RunOut.__struct_fields__ == RunView._fields


def test_a_run_shows_the_same_json_from_its_view_as_from_itself():
    endpoint = an_endpoint()
    berlin = datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    for run in (a_finished_run(endpoint=endpoint), a_run(endpoint=endpoint, scheduled_at=berlin)):
        assert msgspec.json.encode(RunOut.of_view(RunView.of(run))) == msgspec.json.encode(RunOut.of(run))
