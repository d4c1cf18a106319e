"""API tokens: bearer secrets bound to one tenant and one role, stored only as hashes.

A token's secret is shown once, when it is issued; the store keeps the
SHA-256 of it. The secret carries 256 random bits, so a plain (unsalted,
fast) hash is enough: nobody can guess a preimage, and a leaked table of
hashes lets no one in.

Roles grant permissions:

==========  =================================================================
``viewer``  read everything of its tenant
``operator`` read, and operate: run now, pause, resume, set and clear hints,
            reset failures, cancel runs; read the audit trail
``admin``   everything, including defining and changing jobs and endpoints,
            archiving, and managing tokens
==========  =================================================================
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any, NewType

from attrs import evolve, field, frozen

from domain.errors import DomainError, ValidationFailed
from domain.ids import TenantId, new_id
from domain.validation import aware, non_empty_text, text

TokenId = NewType("TokenId", str)

SECRET_PREFIX = "ost_"
SECRET_BYTES = 32
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class Unauthenticated(DomainError):
    """Raised when a request carries no token, or one that is unknown or revoked."""


class Forbidden(DomainError):
    """Raised when the caller's role does not allow what the request asks for."""


class Permission(enum.StrEnum):
    """What a request needs; each route declares exactly one."""

    READ = "read"
    OPERATE = "operate"
    AUDIT = "audit"
    ADMIN = "admin"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    def allows(self, permission: Permission) -> bool:
        return permission in _GRANTS[self]


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE, Permission.AUDIT}),
    Role.ADMIN: frozenset(Permission),
}


def parse_role(value: Any) -> Role:
    """``value`` as a :class:`Role`; raises ``ValidationFailed`` on ``role`` otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed.field("role", f"must be one of {', '.join(r.value for r in Role)}") from None


def new_secret() -> str:
    """A fresh bearer secret: a prefix that makes it recognisable, then 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The SHA-256 of ``secret`` as 64 lowercase hex digits: what the store keeps."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, token_hash: str) -> bool:
    """True when ``secret`` hashes to ``token_hash``; compares in constant time."""
    return hmac.compare_digest(hash_secret(secret), token_hash)


def _check_hash(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not _HASH_RE.match(value):
        raise ValidationFailed.field(attribute.name, "must be a SHA-256 digest in lowercase hex")


@frozen(kw_only=True)
class ApiToken:
    """A stored token: who it belongs to and what it may do; never the secret itself."""

    id: TokenId
    tenant_id: TenantId = field(validator=non_empty_text(64))
    role: Role = field(converter=parse_role)
    name: str = field(default="", validator=text(200))
    hash: str = field(validator=_check_hash, repr=False)
    created_at: datetime = field(validator=aware)
    last_used_at: datetime | None = field(default=None, validator=aware)
    revoked_at: datetime | None = field(default=None, validator=aware)

    @classmethod
    def issue(cls, *, tenant_id: TenantId, role: Role | str, name: str = "", now: datetime) -> tuple[ApiToken, str]:
        """A new token and its secret; the secret is not kept anywhere else, so hand it over once."""
        secret = new_secret()
        token = cls(
            id=TokenId(new_id()), tenant_id=tenant_id, role=role, name=name, hash=hash_secret(secret), created_at=now
        )
        return token, secret

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, permission: Permission) -> bool:
        return self.active and self.role.allows(permission)

    def used(self, *, at: datetime) -> ApiToken:
        return evolve(self, last_used_at=at)

    def revoke(self, *, at: datetime) -> ApiToken:
        """The token refused from now on; revoking twice keeps the first time."""
        if self.revoked_at is not None:
            return self
        return evolve(self, revoked_at=at)
