"""One error hierarchy for the whole product.

Adapters translate their drivers' errors into these, the API maps them to HTTP
statuses in one table looked up along the class hierarchy, and workers fail a
run without retry on a :class:`DomainError` but retry an
:class:`InfrastructureError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from attrs import frozen


class OstinatoError(Exception):
    """Raised for anything Ostinato itself refuses or cannot do; the root."""


class DomainError(OstinatoError):
    """Raised when a request breaks a rule of the domain; retrying will not help."""


@frozen
class FieldError:
    """One invalid field: a dotted ``path`` (``schedule.cron``) and what is wrong."""

    path: str
    message: str

    def prefixed(self, prefix: str) -> FieldError:
        return FieldError(path=f"{prefix}.{self.path}" if self.path else prefix, message=self.message)


class ValidationFailed(DomainError, ValueError):
    """Raised when input breaks an invariant; ``errors`` names each field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in self.errors))

    @classmethod
    def field(cls, path: str, message: str) -> ValidationFailed:
        return cls([FieldError(path, message)])

    def prefixed(self, prefix: str) -> ValidationFailed:
        return ValidationFailed([e.prefixed(prefix) for e in self.errors])


@contextmanager
def field_scope(prefix: str) -> Iterator[None]:
    """Prefix the paths of any :class:`ValidationFailed` raised inside with ``prefix``."""
    try:
        yield
    except ValidationFailed as exc:
        raise exc.prefixed(prefix) from None


class NotFound(DomainError, LookupError):
    """Raised when an entity does not exist (or belongs to another tenant)."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key} not found")


class Conflict(DomainError):
    """Raised when a change collides with stored state."""


class AlreadyExists(Conflict):
    """Raised when a unique key (a job's slug, an endpoint's name, a run's slot) is taken."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key} already exists")


class InvalidTransition(Conflict):
    """Raised when an entity is asked to move to a state its current state does not allow."""


class InfrastructureError(OstinatoError):
    """Raised when a database, broker or network call fails; retrying may help."""


class StorageUnavailable(InfrastructureError):
    """Raised when the database cannot be reached or the statement failed for a transient reason."""
