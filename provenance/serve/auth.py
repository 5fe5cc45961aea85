"""Who may use the desk: API tokens (only their SHA-256 stored) and the page's cookie and CSRF check.

A token is `pvt_` + 256 random bits (URL-safe base64): printed once by `provenance token create`,
sent as `Authorization: Bearer TOKEN`, or typed once into the login form, which keeps it in an
HttpOnly, SameSite=Strict cookie (so a revoked token locks the page out at once, as it does the API).
Every state-changing request authenticated by the cookie must also carry the CSRF value of the page
(`csrf` form field or `X-CSRF-Token` header): an HMAC of the token's hash under a key made when the
server starts, so another site can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..db.tokens import TokenInfo

TOKEN_PREFIX = "pvt_"
_TOKEN_BYTES = 32  # 256 bits: a stored SHA-256 of it cannot be searched back to the token
_TOKEN_SHAPE = re.compile(r"^pvt_[A-Za-z0-9_-]{43}$")
_NAME_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,63}$")
COOKIE = "provenance_token"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not _NAME_SHAPE.match(name):
        raise InputError(f"token name {name!r} refused: use 1 to 64 letters, digits, spaces or . _ @ + -, "
                         "starting with a letter or digit (e.g. a person's or a script's name)")
    return name


def create_token(engine: "Engine", name: str) -> tuple[str, "TokenInfo"]:
    """A new token for `name`: the token (to print once) and what is stored about it."""
    from ..db import session_scope, tokens

    token = new_token()
    with session_scope(engine) as session:
        info = tokens.add_token(check_name(name), token_sha256(token), at=datetime.now(UTC), session=session)
    return token, info


def list_tokens(engine: "Engine") -> list["TokenInfo"]:
    from ..db import session_scope, tokens

    with session_scope(engine) as session:
        return tokens.list_tokens(session=session)


def revoke_token(engine: "Engine", name: str) -> "TokenInfo":
    from ..db import session_scope, tokens

    with session_scope(engine) as session:
        return tokens.revoke_token(name, at=datetime.now(UTC), session=session)


def authenticate(engine: "Engine", token: str | None) -> "TokenInfo | None":
    """The token's record if it is a live token, else None. Malformed text never reaches the database."""
    if not token or not _TOKEN_SHAPE.match(token):
        return None
    from ..db import session_scope, tokens

    with session_scope(engine) as session:
        return tokens.active_token(token_sha256(token), at=datetime.now(UTC), session=session)


def csrf_value(key: bytes, token: str) -> str:
    return hmac.new(key, token_sha256(token).encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_value(key, token), sent or "")
