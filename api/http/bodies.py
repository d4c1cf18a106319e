"""Strict request bodies.

Litestar converts request data leniently: ``"60"`` becomes a number, ``1``
becomes ``true`` and a bare number becomes a timestamp. The API promises
the types its schema states, so every JSON body is first decoded strictly
against the handler's declared type; what passes is exactly what the
schema allows, and what fails answers 422 with the path of the field.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from api.http.errors import from_msgspec_message
from domain.errors import ValidationFailed


async def decode_strictly(request: Request[Any, Any, Any]) -> None:
    """A ``before_request`` hook: refuse a body that does not match the handler's type exactly."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    raw = await request.body()
    if not raw.strip():
        return
    try:
        msgspec.json.decode(raw, type=data.annotation, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationFailed([from_msgspec_message(str(exc))]) from None
    except msgspec.DecodeError as exc:
        raise ValidationFailed.field("", f"the body is not valid JSON: {exc}") from None
