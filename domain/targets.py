"""What an endpoint runs: an HTTP request or a registered Python handler."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen

from domain.errors import ValidationFailed
from domain.validation import string_map

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
HANDLER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)*$")
SECRET_PREFIX = "secret://"


def _check_method(instance: Any, attribute: Any, value: str) -> None:
    if value not in HTTP_METHODS:
        raise ValidationFailed.field("method", f"must be one of {', '.join(sorted(HTTP_METHODS))}")


def _check_url(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str):
        raise ValidationFailed.field("url", "must be a string")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValidationFailed.field("url", f"is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationFailed.field("url", f"must use http or https, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise ValidationFailed.field("url", "must name a host")


def _check_json(instance: Any, attribute: Any, value: Any) -> None:
    def walk(item: Any, path: str) -> None:
        if item is None or isinstance(item, (str, bool, int, float)):
            return
        if isinstance(item, list):
            for index, element in enumerate(item):
                walk(element, f"{path}[{index}]")
            return
        if isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise ValidationFailed.field(path, "object keys must be strings")
                walk(element, f"{path}.{key}")
            return
        raise ValidationFailed.field(path, f"must be JSON, not {type(item).__name__}")

    walk(value, attribute.name)


def _upper(value: str) -> str:
    return value.upper() if isinstance(value, str) else value


@frozen(kw_only=True)
class HttpTarget:
    """Call ``method url`` with ``headers`` and a JSON ``body``.

    Header values and the URL may hold ``secret://env/NAME`` references, which
    the executor resolves at run time; the resolved values are never stored.
    """

    kind: str = field(default="http", init=False)
    method: str = field(default="POST", converter=_upper, validator=_check_method)
    url: str = field(validator=_check_url)
    headers: dict[str, str] = field(factory=dict, validator=string_map)
    body: Any = field(default=None, validator=_check_json)


def _check_handler(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not HANDLER_RE.match(value):
        raise ValidationFailed.field("handler", "must be a dotted name such as 'billing.sync_invoices'")


def _check_params(instance: Any, attribute: Any, value: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise ValidationFailed.field("params", "must be an object")
    _check_json(instance, attribute, value)


@frozen(kw_only=True)
class PythonTarget:
    """Call the Python handler registered under ``handler`` with ``params``."""

    kind: str = field(default="python", init=False)
    handler: str = field(validator=_check_handler)
    params: dict[str, Any] = field(factory=dict, validator=_check_params)


Target = HttpTarget | PythonTarget
