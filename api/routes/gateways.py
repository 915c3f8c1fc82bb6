from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends

from api.deps import get_conn
from api.services import gateways

router = APIRouter(tags=["gateways"])
Conn = Annotated[sa.Connection, Depends(get_conn)]


@router.get("/gateways")
def list_gateways(conn: Conn) -> list[gateways.Gateway]:
    """Every gateway's last heartbeat: health snapshot, `last_heartbeat` and `online`."""
    return gateways.list_gateways(conn)


@router.get("/gateways/{gateway_id}")
def get_gateway(gateway_id: str, conn: Conn) -> gateways.Gateway:
    return gateways.get_gateway(conn, gateway_id)
