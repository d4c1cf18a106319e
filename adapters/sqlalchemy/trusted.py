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

_NEW, _CLS = "_trusted_new", "_trusted_cls"


def trusted(cls: type[T]) -> Callable[..., T]:
    """A keyword-only constructor of the slotted attrs class ``cls`` that takes every field,
    ``init=False`` ones included, and checks nothing but that each was given (Python's own
    ``TypeError`` names a missing or unknown one).

    Like attrs' own ``__init__``, its source is generated: one line per field that stores
    the value through the field's slot. A loop over the fields reading a dict of values
    cost a run read back about 60% more."""
    if not attrs.has(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted attrs class")
    names = tuple(field.name for field in attrs.fields(cls))
    name = f"trusted_{cls.__name__}"
    namespace: dict[str, Any] = {_NEW: object.__new__, _CLS: cls}
    lines = [f"def {name}(*, {', '.join(names)}):", f"    instance = {_NEW}({_CLS})"]
    for index, field in enumerate(names):
        namespace[f"_trusted_set_{index}"] = _slot(cls, field).__set__
        lines.append(f"    _trusted_set_{index}(instance, {field})")
    lines.append("    return instance")
    if set(names) & {*namespace, "instance"}:
        raise TypeError(f"{cls.__name__} has a field named like a trusted constructor's own variables")
    exec("\n".join(lines), namespace)  # noqa: S102 - the source is built from attrs field names only
    build = namespace[name]
    build.__qualname__ = name
    return build


def _slot(cls: type, name: str) -> Any:
    """The slot descriptor that stores field ``name`` (on ``cls`` or a base class)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise TypeError(f"{cls.__name__}.{name} has no slot")  # pragma: no cover - attrs gives every field one
