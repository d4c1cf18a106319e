"""Every error the API answers, in one shape and from one place.

``{"error": {"code", "message", "details"}}``: the status and code come from
:data:`ERRORS`, looked up along the exception's class hierarchy, so a new
domain error needs no new handler. Litestar's own refusals (bad JSON, wrong
types, unknown routes) pass through the same table. Anything unexpected is
logged with its traceback and answers 500 ``internal`` without details.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Annotated, Any

from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from msgspec import Meta, Struct

from domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    InvalidTransition,
    NotFound,
    StorageUnavailable,
    ValidationFailed,
)
from domain.tokens import Forbidden, Unauthenticated

log = logging.getLogger("ostinato.api")


class ErrorCode(enum.StrEnum):
    VALIDATION_FAILED = "validation_failed"
    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    INVALID_TRANSITION = "invalid_transition"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


# Looked up along the exception's MRO: the most specific class wins.
ERRORS: dict[type[BaseException], tuple[int, ErrorCode]] = {
    ValidationFailed: (422, ErrorCode.VALIDATION_FAILED),
    NotFound: (404, ErrorCode.NOT_FOUND),
    InvalidTransition: (409, ErrorCode.INVALID_TRANSITION),
    Conflict: (409, ErrorCode.CONFLICT),
    Unauthenticated: (401, ErrorCode.UNAUTHENTICATED),
    Forbidden: (403, ErrorCode.FORBIDDEN),
    DomainError: (400, ErrorCode.BAD_REQUEST),
    StorageUnavailable: (503, ErrorCode.UNAVAILABLE),
    ValidationException: (422, ErrorCode.VALIDATION_FAILED),
    NotAuthorizedException: (401, ErrorCode.UNAUTHENTICATED),
    PermissionDeniedException: (403, ErrorCode.FORBIDDEN),
    NotFoundException: (404, ErrorCode.NOT_FOUND),
    MethodNotAllowedException: (405, ErrorCode.METHOD_NOT_ALLOWED),
    ClientException: (400, ErrorCode.BAD_REQUEST),
    BaseException: (500, ErrorCode.INTERNAL),
}


class ErrorDetail(Struct, kw_only=True):
    """One invalid field."""

    path: Annotated[str, Meta(description="The field, dotted from the body's root (schedule.cron); empty for the whole body.")]
    message: Annotated[str, Meta(description="What is wrong with it.")]


class ErrorInfo(Struct, kw_only=True):
    """What went wrong."""

    code: Annotated[
        str,
        Meta(description="A stable code: " + ", ".join(code.value for code in ErrorCode) + "."),
    ]
    message: Annotated[str, Meta(description="A sentence for people.")]
    details: Annotated[list[ErrorDetail], Meta(description="Each invalid field (validation_failed); otherwise empty.")]


class ErrorBody(Struct, kw_only=True):
    """The body of every error response."""

    error: Annotated[ErrorInfo, Meta(description="The error.")]


def classify(exc: BaseException) -> tuple[int, ErrorCode]:
    """The status and code for ``exc``: the first class of its MRO found in :data:`ERRORS`."""
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            status, code = ERRORS[cls]
            if cls is ClientException and isinstance(exc.__cause__, SerializationException):
                return 422, ErrorCode.VALIDATION_FAILED  # the body is not JSON
            if cls is ClientException and isinstance(exc, HTTPException):
                return exc.status_code, code
            return status, code
    return 500, ErrorCode.INTERNAL  # pragma: no cover - BaseException is in the table


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The exception handler for everything (registered for ``Exception``)."""
    status, code = classify(exc)
    details: list[FieldError] = []
    headers: dict[str, str] = {}
    if code is ErrorCode.VALIDATION_FAILED:
        details = _field_errors(exc)
        message = "1 field is invalid" if len(details) == 1 else f"{len(details)} fields are invalid"
    elif code is ErrorCode.INTERNAL:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "internal error; the server log has the details"
    elif code is ErrorCode.UNAVAILABLE:
        log.warning("storage unavailable on %s %s: %s", request.method, request.url.path, exc)
        message = "the database is unavailable; retry shortly"
    elif isinstance(exc, HTTPException):
        message = exc.detail
        headers.update(exc.headers or {})
    else:
        message = str(exc)
    if code is ErrorCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="ostinato"'
    body = ErrorBody(
        error=ErrorInfo(
            code=code.value,
            message=message,
            details=[ErrorDetail(path=d.path, message=d.message) for d in details],
        )
    )
    return Response(body, status_code=status, headers=headers or None)


def _field_errors(exc: BaseException) -> list[FieldError]:
    if isinstance(exc, ValidationFailed):
        return list(exc.errors)
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        errors = [_litestar_field_error(item) for item in extra if isinstance(item, dict)]
        return errors or [FieldError("", exc.detail)]
    if isinstance(exc.__cause__, SerializationException):
        return [FieldError("", f"the body is not valid JSON: {exc.__cause__}")]
    return [FieldError("", str(exc))]


def _litestar_field_error(item: dict[str, Any]) -> FieldError:
    """Litestar's ``{"key", "message", "source"}`` as a field error; ``data`` is the body's root."""
    key = str(item.get("key") or "")
    if key == "data":
        key = ""
    return from_msgspec_message(str(item.get("message") or "is invalid"), key)


_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def from_msgspec_message(text: str, base: str = "") -> FieldError:
    """A msgspec validation message (``Expected `int`, got `str` - at `$.retry.max_attempts```)
    as a field error with a dotted path; unknown and missing fields name the field itself."""
    found = _AT.match(text)
    message = found.group("message") if found else text
    path = found.group("path") if found and found.group("path") else ""
    # msgspec writes a value inside an object of arbitrary keys as ``[...]``: name the object.
    path = _join(base, path.replace("[...]", "").lstrip("."))
    if unknown := _UNKNOWN.match(message):
        return FieldError(_join(path, unknown.group("name")), "is not a known field")
    if missing := _MISSING.match(message):
        return FieldError(_join(path, missing.group("name")), "is required")
    return FieldError(path, message)


def _join(head: str, tail: str) -> str:
    if not head:
        return tail
    if not tail:
        return head
    return head + tail if tail.startswith("[") else f"{head}.{tail}"
