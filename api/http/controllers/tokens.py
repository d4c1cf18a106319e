"""``/v1/tokens``: the API tokens of the caller's tenant (admin only)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.http.auth import needs
from api.http.openapi import errors
from api.http.params import TokenIdPath
from api.http.schemas.tokens import IssuedTokenOut, TokenCreate, TokenList, TokenOut
from domain.pagination import PageRequest
from domain.tokens import Permission, TokenId
from services.audit import AuditService
from services.tokens import Principal, TokensService


class TokensController(Controller):
    path = "/tokens"
    tags = ["tokens"]

    @post("/", opt=needs(Permission.ADMIN), responses=errors(409), operation_id="createToken", summary="Issue a token")
    async def create_token(
        self,
        data: JSONBody[TokenCreate],
        tokens: NamedDependency[TokensService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> IssuedTokenOut:
        """Issue a token for the caller's tenant. The answer holds its secret; it is never shown again."""
        name = data.name if isinstance(data.name, str) else ""
        async with audit.action(principal.actor, "token.create", "token", summary={"role": data.role, "name": name}):
            issued = await tokens.create(principal.tenant_id, role=data.role, name=name)
        return IssuedTokenOut(token=TokenOut.of(issued.token), secret=issued.secret)

    @get("/", opt=needs(Permission.ADMIN), responses=errors(), operation_id="listTokens", summary="List tokens")
    async def list_tokens(
        self,
        tokens: NamedDependency[TokensService],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
    ) -> TokenList:
        """The tenant's tokens, newest first, revoked ones included; never their secrets."""
        result = await tokens.list(principal.tenant_id, page)
        return TokenList(items=[TokenOut.of(token) for token in result.items], next_cursor=result.next_cursor)

    @get("/{token_id:str}", opt=needs(Permission.ADMIN), responses=errors(404), operation_id="getToken", summary="Get a token")
    async def get_token(
        self, token_id: TokenIdPath, tokens: NamedDependency[TokensService], principal: NamedDependency[Principal]
    ) -> TokenOut:
        """One token of the tenant."""
        return TokenOut.of(await tokens.get(principal.tenant_id, TokenId(token_id)))

    @post(
        "/{token_id:str}/revoke", status_code=200, opt=needs(Permission.ADMIN), responses=errors(404),
        operation_id="revokeToken", summary="Revoke a token",
    )
    async def revoke_token(
        self,
        token_id: TokenIdPath,
        tokens: NamedDependency[TokensService],
        audit: NamedDependency[AuditService],
        principal: NamedDependency[Principal],
    ) -> TokenOut:
        """Refuse the token from now on (revoking your own token is allowed)."""
        async with audit.action(principal.actor, "token.revoke", "token", token_id):
            token = await tokens.revoke(principal.tenant_id, TokenId(token_id))
        return TokenOut.of(token)
