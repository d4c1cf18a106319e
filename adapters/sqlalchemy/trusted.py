"""Entities rebuilt from rows this adapter wrote, without validating them a second time.

Every row was written from an entity that its constructor had validated (and
converted: enums, bounded text), so reading one back does not need the checks
again; on a page of runs they were a third of the API's time. A trusted
constructor sets each field as given and runs no validator, converter or
``__attrs_post_init__``. It touches no global state (``attrs.validators.set_disabled``
would switch validation off for every thread, including those building
entities from user input), so it is safe in any thread.

Only the adapter's row readers use it, with values of the field's type; entities
built anywhere else keep validating.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

T = TypeVar("T")


def trusted(cls: type[T]) -> Callable[..., T]:
    """A keyword-only constructor of the slotted attrs class ``cls`` that takes every field,
    ``init=False`` ones included, and checks nothing but that each was given."""
    if not attrs.has(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted attrs class")
    names = tuple(field.name for field in attrs.fields(cls))
    setters = tuple((_slot(cls, name).__set__, name) for name in names)
    new = object.__new__

    def mismatch(values: dict[str, Any]) -> TypeError:
        missing, unknown = sorted(set(names) - set(values)), sorted(set(values) - set(names))
        return TypeError(f"trusted {cls.__name__}: missing fields {missing}, unknown fields {unknown}")

    def build(**values: Any) -> T:
        if len(values) != len(setters):
            raise mismatch(values)
        instance = new(cls)
        try:
            for set_field, name in setters:
                set_field(instance, values[name])
        except KeyError:
            raise mismatch(values) from None
        return instance

    build.__name__ = build.__qualname__ = f"trusted_{cls.__name__}"
    return build


def _slot(cls: type, name: str) -> Any:
    """The slot descriptor that stores field ``name`` (on ``cls`` or a base class)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise TypeError(f"{cls.__name__}.{name} has no slot")  # pragma: no cover - attrs gives every field one
