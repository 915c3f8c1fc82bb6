"""Response models: what the API promises in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str


class Point(BaseModel):
    time: datetime
    value: float
    min: float | None = None
    max: float | None = None
    count: int | None = Field(default=None, description="readings in the bucket (rollups only)")
    quality: int | None = Field(default=None, description="quality flags (raw rows only)")


class Series(BaseModel):
    meter_id: str
    quantity: str
    unit: str
    resolution: str
    points: list[Point]
