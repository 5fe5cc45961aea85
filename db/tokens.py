"""Reads and writes for the API tokens of `provenance serve`. Session keyword-only, records out.

Only a token's SHA-256 reaches this module; the token itself never does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db import models as orm
from provenance.errors import InputError

# last_used_at is written at most this often per token, so a busy client does not turn every read
# of the API into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    token_id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def add_token(name: str, token_sha256: str, *, at: datetime, session: Session) -> TokenInfo:
    if session.scalar(select(orm.ApiToken.id).where(orm.ApiToken.name == name)) is not None:
        raise InputError(f"a token named {name!r} exists already; choose another name, or revoke it first "
                         "(provenance token revoke NAME) and use a new name")
    row = orm.ApiToken(name=name, token_sha256=token_sha256, created_at=at)
    session.add(row)
    session.flush()
    return _info(row)


def list_tokens(*, session: Session) -> list[TokenInfo]:
    return [_info(r) for r in session.scalars(select(orm.ApiToken).order_by(orm.ApiToken.id))]


def revoke_token(name: str, *, at: datetime, session: Session) -> TokenInfo:
    row = session.scalar(select(orm.ApiToken).where(orm.ApiToken.name == name))
    if row is None:
        raise InputError(f"no token named {name!r}; see the names with: provenance token list")
    if row.revoked_at is None:
        row.revoked_at = at
    return _info(row)


def active_token(token_sha256: str, *, at: datetime, session: Session) -> TokenInfo | None:
    """The unrevoked token with this SHA-256 (its last use noted), or None."""
    row = session.scalar(select(orm.ApiToken).where(orm.ApiToken.token_sha256 == token_sha256,
                                                    orm.ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    if row.last_used_at is None or at - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = at
    return _info(row)


def _info(row: orm.ApiToken) -> TokenInfo:
    return TokenInfo(token_id=row.id, name=row.name, created_at=row.created_at, revoked_at=row.revoked_at,
                     last_used_at=row.last_used_at)
