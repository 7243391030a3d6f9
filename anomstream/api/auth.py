"""Optional bearer tokens: a file of tokens, one a line; without one the API is open, which
`anomstream serve` allows on a loopback address only (or with `--insecure`)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from anomstream.api.problems import Problem

bearer = HTTPBearer(auto_error=False, description="a token of the server's tokens file")


class TokensError(ValueError):
    """The tokens file cannot be used; one line for the user."""


def read_tokens(path: Path) -> frozenset[str]:
    """The file's tokens: one a line, blank lines and `#` comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokensError(f"tokens file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokensError(f"tokens file {path} cannot be read ({exc})") from None
    tokens = frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not tokens:
        raise TokensError(f"tokens file {path} holds no token")
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise TokensError(f"tokens file {path}: tokens must have at least 16 characters")
    return tokens


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="anomstream"'},
    )


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Every `/v1` route: the request's bearer token must be one of the server's tokens."""
    tokens: frozenset[str] = request.app.state.tokens
    if not tokens:
        return
    if credentials is None:
        raise unauthorized("this server needs a bearer token (Authorization: Bearer <token>)")
    given = credentials.credentials.encode()
    if not any(hmac.compare_digest(given, token.encode()) for token in tokens):
        raise unauthorized("the bearer token is not one of this server's tokens")
