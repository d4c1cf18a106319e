"""API tokens in the ``api_tokens`` table (their hashes; never the secrets)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, exists, select, update

from adapters.sqlalchemy.repository import Repository
from adapters.sqlalchemy.tables import api_tokens
from domain.errors import AlreadyExists, NotFound
from domain.ids import TenantId
from domain.pagination import Page, PageRequest
from domain.tokens import ApiToken, Role, TokenId

_SECRET = "with this secret"  # how errors name a token found by hash, without the hash


def _token_values(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "tenant_id": token.tenant_id,
        "role": token.role.value,
        "name": token.name,
        "hash": token.hash,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def _to_token(row: Row[Any]) -> ApiToken:
    return ApiToken(
        id=TokenId(row.id),
        tenant_id=TenantId(row.tenant_id),
        role=Role(row.role),
        name=row.name,
        hash=row.hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlAlchemyTokenRepository(Repository):
    async def add(self, token: ApiToken) -> None:
        stored = await self._execute(
            self._insert_new(api_tokens, _token_values(token)), unique=lambda: AlreadyExists("token", token.id)
        )
        if stored.first() is not None:
            return
        if (await self._execute(select(exists().where(api_tokens.c.id == token.id)))).scalar():
            raise AlreadyExists("token", token.id)
        raise AlreadyExists("token", _SECRET)

    async def get(self, token_id: TokenId, *, tenant_id: TenantId | None) -> ApiToken:
        statement = select(api_tokens).where(api_tokens.c.id == token_id)
        if tenant_id is not None:
            statement = statement.where(api_tokens.c.tenant_id == tenant_id)
        row = (await self._execute(statement)).first()
        if row is None:
            raise NotFound("token", token_id)
        return _to_token(row)

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        row = (await self._execute(select(api_tokens).where(api_tokens.c.hash == token_hash))).first()
        if row is None:
            raise NotFound("token", _SECRET)
        return _to_token(row)

    async def update(self, token: ApiToken) -> None:
        values = _token_values(token)
        del values["id"]
        statement = (
            update(api_tokens)
            .where(api_tokens.c.id == token.id, api_tokens.c.tenant_id == token.tenant_id)
            .values(values)
            .returning(api_tokens.c.id)
        )
        stored = await self._execute(statement, unique=lambda: AlreadyExists("token", _SECRET))
        if stored.first() is None:
            raise NotFound("token", token.id)

    async def list(self, tenant_id: TenantId | None, page: PageRequest) -> Page[ApiToken]:
        statement = select(api_tokens)
        if tenant_id is not None:
            statement = statement.where(api_tokens.c.tenant_id == tenant_id)
        return await self._page(statement, at=api_tokens.c.created_at, id=api_tokens.c.id, page=page, to_entity=_to_token)
