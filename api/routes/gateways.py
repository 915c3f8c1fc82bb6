from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path

from api.deps import get_conn
from api.pagination import Page, Paging
from lingtan.core import gateways

router = APIRouter(tags=["gateways"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
# PostgreSQL text cannot hold NUL: an id with one can match nothing, so refuse it up front.
GatewayId = Annotated[str, Path(description="the gateway's id from its config", pattern=r"^[^\x00]+$",
                                examples=["demo-gw-1"])]


@router.get("/gateways")
def list_gateways(conn: Conn, page: Paging) -> Page[gateways.Gateway]:
    """Every gateway's last heartbeat: health snapshot, `last_heartbeat` and `online`."""
    return Page.of(gateways.list_gateways(conn), page)


@router.get("/gateways/{gateway_id}")
def get_gateway(gateway_id: GatewayId, conn: Conn) -> gateways.Gateway:
    return gateways.get_gateway(conn, gateway_id)
