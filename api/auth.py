"""Bearer API keys on every route: 401 without a valid key, 403 below the route's role.

The keys themselves (format, hashing, storage) live in the core (lingtan/core/keys.py); this is only
the HTTP side of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_conn
from lingtan.core.keys import RANK, ApiKey, RoleName, verify_key

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer lt_…`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(role: RoleName) -> Callable[..., ApiKey]:
    """Dependency: a valid key whose role is at least ``role``; 401 without one, 403 below it."""

    def dependency(
        conn: Annotated[sa.Connection, Depends(get_conn)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "an API key is required: Authorization: Bearer <key>",
                                headers=_CHALLENGE)
        key = verify_key(conn, credentials.credentials)
        if key is None:
            raise HTTPException(401, "the API key is not valid or has been revoked", headers=_CHALLENGE)
        if RANK[key.role] < RANK[role]:
            raise HTTPException(403, f"this needs the {role} role; the key has {key.role}")
        return key

    return dependency


Viewer = Annotated[ApiKey, Depends(require("viewer"))]
Engineer = Annotated[ApiKey, Depends(require("engineer"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
