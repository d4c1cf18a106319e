"""Reading runs back from the database: entities built without validating again (``adapters.sqlalchemy.trusted``),
the columns read, and the list query prepared once per combination of filters."""

from __future__ import annotations

from datetime import datetime

import attrs
import pytest

from adapters.sqlalchemy.runs import RUN_COLUMNS
from adapters.sqlalchemy.tables import runs as run_table
from adapters.sqlalchemy.trusted import trusted
from domain.errors import ValidationFailed
from domain.runs import Run, RunResult
from tests.builders import a_finished_run, a_run, an_endpoint


def every_field(entity: object) -> dict[str, object]:
    return {field.name: getattr(entity, field.name) for field in attrs.fields(type(entity))}


@pytest.mark.parametrize("run", [a_run(), a_finished_run(endpoint=an_endpoint())], ids=["pending", "finished"])
def test_a_trusted_run_equals_the_validated_run_with_the_same_fields(run):
    built = trusted(Run)(**every_field(run))

    assert type(built) is Run
    assert built == run
    assert every_field(built) == every_field(run)


def test_a_trusted_entity_is_frozen_like_a_validated_one():
    built = trusted(RunResult)(status_code=200, body_excerpt="ok", output=None)

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.status_code = 500  # type: ignore[misc]


def test_a_trusted_constructor_needs_every_field_and_no_other():
    fields = every_field(a_run())
    build = trusted(Run)

    with pytest.raises(TypeError, match=r"trusted_Run\(\) missing 1 required keyword-only argument: 'slot'"):
        build(**{name: value for name, value in fields.items() if name != "slot"})
    with pytest.raises(TypeError, match=r"trusted_Run\(\) got an unexpected keyword argument 'colour'"):
        build(**fields, colour="red")
    with pytest.raises(TypeError, match="positional"):
        build(*fields.values())


def test_only_slotted_attrs_classes_have_a_trusted_constructor():
    with pytest.raises(TypeError, match="not a slotted attrs class"):
        trusted(datetime)


def test_entities_built_elsewhere_still_validate_in_every_thread():
    trusted(Run)(**every_field(a_run()))

    with pytest.raises(ValidationFailed):
        a_run(scheduled_at=datetime(2026, 1, 1))  # naive


def test_runs_are_read_from_every_column_but_the_duration_they_never_read_back():
    assert [column.name for column in RUN_COLUMNS] == [
        column.name for column in run_table.columns if column.name != "duration_s"
    ]


def test_a_combination_of_list_filters_is_built_once_with_its_values_bound_at_execution():
    from adapters.sqlalchemy.runs import _list_statement

    first = _list_statement(frozenset({"tenant_id", "endpoint_id", "cursor_at", "cursor_id", "limit"}), None)
    again = _list_statement(frozenset({"limit", "cursor_id", "cursor_at", "endpoint_id", "tenant_id"}), None)

    assert again is first
    sql = str(first)
    assert ":endpoint_id" in sql and ":cursor_at" in sql and ":limit" in sql
    assert ":job_id" not in sql
