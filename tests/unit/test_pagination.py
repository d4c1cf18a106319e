"""Keyset pagination cursors and page requests (``domain.pagination``)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.pagination import MAX_LIMIT, Cursor, PageRequest
from tests.strategies import moments

OFFSETS = st.sampled_from([timezone.utc, timezone.max, timezone.min])


@given(st.datetimes(timezones=OFFSETS), st.text())
def test_a_cursor_survives_its_round_trip(at, item_id):
    token = Cursor(at, item_id).encode()
    decoded = Cursor.decode(token)
    assert decoded == Cursor(at, item_id)
    assert decoded.at.utcoffset() == at.utcoffset()


@given(moments(), st.uuids().map(str))
def test_a_cursor_is_url_safe_text(at, item_id):
    token = Cursor(at, item_id).encode()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a cursor",
        "!!!",
        "AAAA",
        _token(["2026-01-05T12:00:00", "id"]),  # naive
        _token(["yesterday", "id"]),
        _token(["2026-01-05T12:00:00+00:00", 7]),
        _token(["2026-01-05T12:00:00+00:00"]),
        _token({"at": "2026-01-05T12:00:00+00:00", "id": "x"}),
        _token(None),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_garbage_cursor_is_refused_naming_cursor(token):
    with pytest.raises(ValidationFailed) as raised:
        Cursor.decode(token)
    assert [e.path for e in raised.value.errors] == ["cursor"]


@given(st.text())
def test_decoding_any_text_either_gives_a_cursor_or_refuses_naming_cursor(token):
    try:
        cursor = Cursor.decode(token)
    except ValidationFailed as exc:
        assert [e.path for e in exc.errors] == ["cursor"]
    else:
        assert cursor.at.tzinfo is not None and isinstance(cursor.id, str)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, 2.5, True, "10"])
def test_a_page_limit_outside_one_to_the_maximum_is_refused_naming_limit(limit):
    with pytest.raises(ValidationFailed) as raised:
        PageRequest(limit=limit)
    assert [e.path for e in raised.value.errors] == ["limit"]


def test_a_page_limit_within_range_is_accepted():
    assert PageRequest(limit=1).limit == 1
    assert PageRequest(limit=MAX_LIMIT).limit == MAX_LIMIT
    assert PageRequest().cursor is None


def test_a_cursor_keeps_microseconds():
    at = datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert Cursor.decode(Cursor(at, "x").encode()).at == at
