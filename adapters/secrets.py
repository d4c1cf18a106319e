"""Secret references: ``secret://env/NAME`` in a target's URL or header values, resolved at run time.

A target stores only the reference; an executor resolves it just before the
request, and nothing it keeps (outcome, logs, error text) may hold the resolved
value. A :class:`Resolution` therefore remembers what it substituted and can
:meth:`~Resolution.redact` any text back to the reference form::

    resolution = SecretResolver().resolution()
    url = resolution.resolve(target.url)          # raises SecretError, naming the variable
    ...
    error = resolution.redact(str(exc))           # "…?key=secret://env/API_KEY…"

Only the ``env`` scheme exists today; another (``secret://file/…``) is one more
:class:`SecretSource`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from domain.errors import DomainError
from domain.targets import SECRET_PREFIX

REFERENCE_RE = re.compile(r"secret://(?P<scheme>[a-z][a-z0-9_-]*)/(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


class SecretError(DomainError):
    """Raised when a secret reference is malformed, uses an unknown scheme, or names a secret that is not set.

    The message names the reference, never a value; another attempt will not fix it.
    """


class SecretSource(Protocol):
    """Looks up the secrets of one ``scheme`` (``env`` for ``secret://env/NAME``)."""

    scheme: str

    def lookup(self, name: str) -> str:
        """The value of secret ``name``; raises :class:`SecretError` naming it when it is not set."""
        ...


class EnvSecrets:
    """``secret://env/NAME``: the process environment variable ``NAME``, read at lookup time."""

    scheme = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def lookup(self, name: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        try:
            return environ[name]
        except KeyError:
            raise SecretError(
                f"environment variable {name} is not set (referenced as secret://env/{name})"
            ) from None


class SecretResolver:
    """Resolves ``secret://SCHEME/NAME`` references through one :class:`SecretSource` per scheme."""

    def __init__(self, sources: Iterable[SecretSource] | None = None) -> None:
        chosen = list(sources) if sources is not None else [EnvSecrets()]
        self._sources = {source.scheme: source for source in chosen}

    def resolution(self) -> Resolution:
        """A fresh resolution for one execution; it remembers what it substituted, for redaction."""
        return Resolution(self._sources)


class Resolution:
    """The secrets substituted during one execution, so that text can be redacted back to references."""

    def __init__(self, sources: Mapping[str, SecretSource]) -> None:
        self._sources = sources
        self._forms: dict[str, str] = {}  # a resolved value (or an encoded form of it) -> its reference

    def resolve(self, text: str) -> str:
        """``text`` with every reference replaced by its value; raises :class:`SecretError`."""
        if SECRET_PREFIX not in text:
            return text
        resolved = REFERENCE_RE.sub(self._substitute, text)
        if SECRET_PREFIX in resolved:
            leftover = resolved[resolved.index(SECRET_PREFIX):][:40]
            leftover = self.redact(leftover)
            raise SecretError(
                f"malformed secret reference near {leftover!r}: expected secret://env/NAME, "
                "NAME made of letters, digits and underscores"
            )
        return resolved

    def _substitute(self, match: re.Match[str]) -> str:
        reference = match.group(0)
        scheme, name = match.group("scheme"), match.group("name")
        source = self._sources.get(scheme)
        if source is None:
            known = ", ".join(sorted(self._sources)) or "none"
            raise SecretError(f"unknown secret scheme {scheme!r} in {reference} (known: {known})")
        value = source.lookup(name)
        self._remember(value, reference)
        return value

    def _remember(self, value: str, reference: str) -> None:
        if not value:
            return
        for form in (value, quote(value, safe=""), quote(value, safe="/:@"), quote(value)):
            self._forms.setdefault(form, reference)

    @property
    def used(self) -> bool:
        """True when at least one non-empty secret was substituted."""
        return bool(self._forms)

    def redact(self, text: str) -> str:
        """``text`` with every substituted value (raw or percent-encoded) put back in reference form."""
        if not self._forms or not text:
            return text
        for form in sorted(self._forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, self._forms[form])
        return text

    def redact_json(self, value: Any) -> Any:
        """``value`` (parsed JSON) with :meth:`redact` applied to every string, keys included."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_json(item) for item in value]
        if isinstance(value, dict):
            return {self.redact(key): self.redact_json(item) for key, item in value.items()}
        return value
