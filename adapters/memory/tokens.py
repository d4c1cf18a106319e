"""API tokens in memory."""

from __future__ import annotations

from adapters.memory.store import MemoryStore, paginate
from domain.errors import AlreadyExists, NotFound
from domain.ids import TenantId
from domain.pagination import Page, PageRequest
from domain.tokens import ApiToken, TokenId


class MemoryTokenRepository:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(self, token: ApiToken) -> None:
        if token.id in self._store.tokens:
            raise AlreadyExists("token", token.id)
        if any(other.hash == token.hash for other in self._store.tokens.values()):
            raise AlreadyExists("token", "with this secret")
        self._store.tokens[token.id] = token

    async def get(self, token_id: TokenId, *, tenant_id: TenantId | None) -> ApiToken:
        token = self._store.tokens.get(token_id)
        if token is None or (tenant_id is not None and token.tenant_id != tenant_id):
            raise NotFound("token", token_id)
        return token

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        for token in self._store.tokens.values():
            if token.hash == token_hash:
                return token
        raise NotFound("token", "with this secret")

    async def update(self, token: ApiToken) -> None:
        await self.get(token.id, tenant_id=token.tenant_id)
        self._store.tokens[token.id] = token

    async def list(self, tenant_id: TenantId | None, page: PageRequest) -> Page[ApiToken]:
        mine = (t for t in self._store.tokens.values() if tenant_id is None or t.tenant_id == tenant_id)
        return paginate(mine, page, lambda t: (t.created_at, t.id))
