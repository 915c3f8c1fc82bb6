"""API key management (admin): list, create (the key is shown once), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from api.auth import Admin
from api.deps import get_conn
from api.pagination import Page, Paging
from api.problems import responses
from lingtan.core import keys
from lingtan.core.keys import KeyInfo

router = APIRouter(tags=["keys"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the key's id", examples=[1])]


class KeyCreate(BaseModel):
    role: keys.RoleName = Field(description="viewer reads; engineer changes devices, sites and rules;"
                                            " admin also manages keys")
    # Printable text only: a name is shown in listings and terminals.
    name: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$",
                      description="what the key is for, e.g. the system or person using it")

    model_config = {"json_schema_extra": {"examples": [{"role": "viewer", "name": "energy report export"}]}}


class CreatedKey(BaseModel):
    id: int
    prefix: str
    role: str
    name: str
    created_at: datetime
    key: str = Field(description="the key itself: shown only in this answer, store it now",
                     examples=["lt_3f9a0c1d_Zq…"])


@router.get("/keys")
def list_keys(conn: Conn, page: Paging) -> Page[KeyInfo]:
    """Every key without its secret, oldest first; revoked keys show `revoked_at`."""
    items, total = keys.list_keys(conn, page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/keys", status_code=201)
def create_key(body: KeyCreate, conn: Conn) -> CreatedKey:
    """A new key. The answer is the only time the key is shown: only its hash is stored."""
    key, plain = keys.create_key(conn, body.role, body.name)
    conn.commit()
    info = keys.get_key(conn, key.id)
    assert info is not None  # just committed
    return CreatedKey(id=info.id, prefix=info.prefix, role=info.role, name=info.name,
                      created_at=info.created_at, key=plain)


@router.delete("/keys/{key_id}", responses=responses(409))
def revoke_key(key_id: KeyId, conn: Conn, caller: Admin) -> KeyInfo:
    """Revoke a key at once. Revoking a revoked key changes nothing."""
    if key_id == caller.id:
        # An admin must not lock themselves out by accident; `lingtan keys revoke` still can.
        raise HTTPException(409, "this is the key making the request; revoke it with another admin key")
    info = keys.revoke_key(conn, key_id)
    conn.commit()
    if info is None:
        raise HTTPException(404, f"API key {key_id} not found")
    return info
