"""Token use cases: issue (the secret is shown once), authenticate, list, revoke.

Two kinds of token let a caller in:

- stored tokens, issued by ``ostinato tokens create`` or ``POST /v1/tokens``
  and kept as SHA-256 hashes;
- configured tokens from ``OSTINATO_API_TOKENS`` (``tenant:role:secret``,
  comma-separated), held only in the process; useful to bootstrap a
  deployment from its secret store. Their id is ``config-`` and the first
  12 hex digits of the hash, which is what the audit trail records.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import frozen

from domain.errors import NotFound, ValidationFailed
from domain.ids import DEFAULT_TENANT, TenantId
from domain.pagination import Page, PageRequest
from domain.ports import Clock, UnitOfWorkFactory
from domain.tokens import (
    ApiToken,
    Forbidden,
    Permission,
    Role,
    TokenId,
    Unauthenticated,
    hash_secret,
    parse_role,
)
from domain.validation import SLUG_RE
from services.audit import Actor

MIN_CONFIGURED_SECRET = 24
TOUCH_EVERY = timedelta(minutes=1)
REMEMBER_FOR = timedelta(seconds=5)
"""How long a process trusts a token it has checked before reading it again (revocation delay
for other processes; the process that revokes forgets at once)."""
REMEMBER_AT_MOST = 10_000


@frozen(kw_only=True)
class Principal:
    """Who is asking: the token's id, its tenant and its role."""

    token_id: str
    tenant_id: TenantId
    role: Role
    name: str = ""

    @property
    def actor(self) -> Actor:
        """The principal as the audit trail records it."""
        return Actor(tenant_id=self.tenant_id, token_id=self.token_id)

    def require(self, permission: Permission) -> None:
        """Raise :class:`~domain.tokens.Forbidden` unless the role grants ``permission``."""
        if not self.role.allows(permission):
            raise Forbidden(f"role {self.role} may not {permission.value} (needs {_roles_with(permission)})")


def _roles_with(permission: Permission) -> str:
    return " or ".join(role.value for role in Role if role.allows(permission))


@frozen(kw_only=True)
class ConfiguredToken:
    """A token from ``OSTINATO_API_TOKENS``: its tenant, role and hash (never the secret)."""

    tenant_id: TenantId
    role: Role
    hash: str

    @property
    def id(self) -> str:
        return f"config-{self.hash[:12]}"


def parse_configured_tokens(text: str) -> list[ConfiguredToken]:
    """``tenant:role:secret[,tenant:role:secret…]`` as :class:`ConfiguredToken`; raises ``ValueError``
    naming the entry by position (never echoing a secret)."""
    tokens: list[ConfiguredToken] = []
    for position, raw in enumerate((part.strip() for part in text.split(",")), start=1):
        if not raw:
            continue
        parts = raw.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"entry {position} must look like tenant:role:secret")
        tenant, role, secret = (part.strip() for part in parts)
        if not SLUG_RE.match(tenant):
            raise ValueError(f"entry {position}: tenant must be a slug such as 'default'")
        try:
            parsed_role = parse_role(role)
        except ValidationFailed:
            raise ValueError(f"entry {position}: role must be admin, operator or viewer") from None
        if len(secret) < MIN_CONFIGURED_SECRET:
            raise ValueError(f"entry {position}: secret must be at least {MIN_CONFIGURED_SECRET} characters")
        tokens.append(ConfiguredToken(tenant_id=TenantId(tenant), role=parsed_role, hash=hash_secret(secret)))
    return tokens


@frozen(kw_only=True)
class IssuedToken:
    """A freshly issued token and its secret: the only time the secret exists outside the caller."""

    token: ApiToken
    secret: str


class TokensService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        configured: Sequence[ConfiguredToken] = (),
        touch_every: timedelta = TOUCH_EVERY,
        remember_for: timedelta = REMEMBER_FOR,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._configured = tuple(configured)
        self._touch_every = touch_every
        self._remember_for = remember_for
        # digest -> (principal, until): spares each request a database read; revoking through
        # this service forgets at once, other processes within ``remember_for``
        self._recent: dict[str, tuple[Principal, datetime]] = {}

    async def create(self, tenant_id: TenantId, *, role: Role | str, name: str = "") -> IssuedToken:
        """Issue a token for ``tenant_id``; the result carries the secret, which is not stored."""
        token, secret = ApiToken.issue(tenant_id=tenant_id, role=role, name=name, now=self._clock.now())
        async with self._uow() as uow:
            await uow.tokens.add(token)
            await uow.commit()
        return IssuedToken(token=token, secret=secret)

    async def authenticate(self, secret: str | None) -> Principal:
        """The principal behind a bearer ``secret``; raises ``Unauthenticated`` for a missing,
        unknown or revoked one. Records when a stored token was last used (at most once per
        ``touch_every``, so reads stay reads)."""
        if not secret:
            raise Unauthenticated("send an API token: Authorization: Bearer <token>")
        digest = hash_secret(secret)
        configured = self._configured_match(digest)
        if configured is not None:
            return Principal(token_id=configured.id, tenant_id=configured.tenant_id, role=configured.role, name="configured")
        now = self._clock.now()
        remembered = self._recent.get(digest)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        async with self._uow() as uow:
            try:
                token = await uow.tokens.get_by_hash(digest)
            except NotFound:
                raise Unauthenticated("the API token is not valid") from None
            if not hmac.compare_digest(token.hash, digest) or not token.active:
                raise Unauthenticated("the API token is not valid")
            if token.last_used_at is None or now - token.last_used_at >= self._touch_every:
                await uow.tokens.update(token.used(at=now))
                await uow.commit()
        principal = Principal(token_id=token.id, tenant_id=token.tenant_id, role=token.role, name=token.name)
        if self._remember_for > timedelta(0):
            if len(self._recent) >= REMEMBER_AT_MOST:
                self._recent.clear()
            self._recent[digest] = (principal, now + self._remember_for)
        return principal

    def _configured_match(self, digest: str) -> ConfiguredToken | None:
        found = None
        for candidate in self._configured:  # no early exit: every entry is compared
            if hmac.compare_digest(candidate.hash, digest):
                found = candidate
        return found

    async def get(self, tenant_id: TenantId, token_id: TokenId) -> ApiToken:
        async with self._uow() as uow:
            return await uow.tokens.get(token_id, tenant_id=tenant_id)

    async def list(self, tenant_id: TenantId | None, page: PageRequest | None = None) -> Page[ApiToken]:
        """A page of the tenant's tokens (``None``: every tenant's), newest first, revoked ones included."""
        async with self._uow() as uow:
            return await uow.tokens.list(tenant_id, page or PageRequest())

    async def revoke(self, tenant_id: TenantId, token_id: TokenId) -> ApiToken:
        """Refuse the token from now on; revoking a revoked token changes nothing."""
        async with self._uow() as uow:
            token = await uow.tokens.get(token_id, tenant_id=tenant_id)
            revoked = token.revoke(at=self._clock.now())
            self._recent = {d: entry for d, entry in self._recent.items() if entry[0].token_id != token.id}
            if revoked is not token:
                await uow.tokens.update(revoked)
                await uow.commit()
        return revoked

    async def any_stored(self) -> bool:
        """True when at least one token (of any tenant, revoked or not) is stored."""
        page = await self.list(None, PageRequest(limit=1))
        return bool(page.items)

    @property
    def has_configured(self) -> bool:
        return bool(self._configured)


async def ensure_first_admin_token(
    tokens: TokensService, *, tenant_id: TenantId = DEFAULT_TENANT, name: str = "first admin"
) -> str | None:
    """On a fresh installation (no stored token and none configured), issue an admin token for
    ``tenant_id`` and return its secret for the caller to print once; otherwise ``None``."""
    if tokens.has_configured or await tokens.any_stored():
        return None
    issued = await tokens.create(tenant_id, role=Role.ADMIN, name=name)
    return issued.secret
