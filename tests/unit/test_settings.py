"""Settings read from ``OSTINATO_*`` variables; a wrong one names itself."""

from __future__ import annotations

import pytest

from api.settings import SettingsError, load_settings


def test_the_database_pool_keeps_five_connections_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OSTINATO_DATABASE_POOL_SIZE", raising=False)
    assert load_settings().database_pool_size == 5

    monkeypatch.setenv("OSTINATO_DATABASE_POOL_SIZE", "16")
    assert load_settings().database_pool_size == 16


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_database_pool_size_that_is_not_a_positive_number_stops_start_up_naming_it(monkeypatch, value):
    monkeypatch.setenv("OSTINATO_DATABASE_POOL_SIZE", value)

    with pytest.raises(SettingsError, match="^OSTINATO_DATABASE_POOL_SIZE: "):
        load_settings()
