"""API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from api.http.schemas.common import Id, NextCursor, literal_of, utc
from domain.tokens import ApiToken, Role

RoleName = Annotated[
    literal_of(Role),
    Meta(description="viewer (read), operator (read and operate: run, pause, hints, cancel) or admin (everything)."),
]
TokenName = Annotated[str, Meta(max_length=200, description="What the token is for, for people reading the list.")]


class TokenCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new token for the caller's tenant."""

    role: RoleName
    name: TokenName | UnsetType = UNSET


class TokenOut(Struct, kw_only=True):
    """A token, without its secret."""

    id: Id
    role: RoleName
    name: TokenName
    active: Annotated[bool, Meta(description="False once revoked.")]
    created_at: Annotated[datetime, Meta(description="When it was issued (UTC).")]
    last_used_at: Annotated[datetime | None, Meta(description="When it was last used, to the minute (UTC).")]
    revoked_at: Annotated[datetime | None, Meta(description="When it was revoked (UTC).")]

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            role=token.role.value,
            name=token.name,
            active=token.active,
            created_at=utc(token.created_at),
            last_used_at=utc(token.last_used_at),
            revoked_at=utc(token.revoked_at),
        )


class IssuedTokenOut(Struct, kw_only=True):
    """A new token and its secret. The secret is shown only now: store it safely."""

    token: Annotated[TokenOut, Meta(description="The token.")]
    secret: Annotated[str, Meta(description="The bearer secret: send it as `Authorization: Bearer <secret>`.")]


class TokenList(Struct, kw_only=True):
    """A page of tokens, newest first, revoked ones included."""

    items: Annotated[list[TokenOut], Meta(description="The tokens on this page.")]
    next_cursor: NextCursor
