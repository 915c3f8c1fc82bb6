"""Response models: what the API promises in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    grid_region: str


class MeterOut(BaseModel):
    id: str
    site_id: str
    name: str
    role: str | None
    protocol: str | None


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


class FactorOut(BaseModel):
    value: float
    unit: str
    year: int
    region: str
    source: str


class PowerNowOut(BaseModel):
    grid_kw: float | None = Field(description="signed: positive import, negative export")
    pv_kw: float | None
    load_kw: float | None
    as_of: datetime | None


class EnergyOut(BaseModel):
    start: datetime
    end: datetime
    grid_import_kwh: float
    grid_export_kwh: float
    pv_kwh: float
    consumption_kwh: float
    pv_self_consumed_kwh: float
    green_power_ratio: float | None
    co2_t: float = Field(description="Scope 2, location-based")
    carbon_intensity_kg_per_kwh: float | None
    coverage: float = Field(description="share of the window with grid-meter data, 0..1")
    factor: FactorOut


class OverviewOut(BaseModel):
    site_id: str
    power: PowerNowOut
    today: EnergyOut
    offline: list[str]


class PowerSeriesOut(BaseModel):
    time: list[datetime]
    grid_kw: list[float | None]
    pv_kw: list[float | None]
    load_kw: list[float | None]
