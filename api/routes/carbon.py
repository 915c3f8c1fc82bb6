from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from api.pagination import Page, Paging
from api.problems import Unprocessable
from lingtan.core import carbon, factors
from lingtan.kernel.quantities import ureg

router = APIRouter(tags=["carbon"])
# Beyond any factor set, and inside what a calendar date can hold (year 0 cannot be one).
YEAR_MIN, YEAR_MAX = 1900, 2100


class ConvertRequest(BaseModel):
    carrier: carbon.Carrier
    # A quadrillion of any unit is beyond any plant; the bound keeps every result a finite number.
    amount: Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]
    unit: str = Field(max_length=50, description="pint unit, e.g. kWh, MWh, m3, Nm3, t, kg, GJ, MJ")
    factor_set: str | None = Field(None, description=f"default {factors.DEFAULT_SET}")
    region: str | None = Field(None, description="grid region (electricity)")
    year: int | None = Field(None, ge=YEAR_MIN, le=YEAR_MAX,
                             description="data year; default: the newest in the set")
    basis: carbon.Basis = "location"
    steam_convention: carbon.SteamConvention = "enthalpy"

    @field_validator("unit")
    @classmethod
    def _parses(cls, unit: str) -> str:
        # pint's expression parser fails on malformed text ("(", "/", "kWh/0", NUL) with assorted
        # exception types rather than one; any failure to parse means the unit is unknown.
        try:
            ureg.parse_units(unit)
        except Exception:
            raise ValueError(f"unknown unit {unit!r}") from None
        return unit

    model_config = {"json_schema_extra": {"examples": [
        {"carrier": "electricity", "amount": 1000, "unit": "kWh", "region": "north_east", "year": 2023},
        {"carrier": "natural_gas", "amount": 10000, "unit": "Nm3"},
        {"carrier": "steam", "amount": 1, "unit": "t", "steam_convention": "table"},
    ]}}


@router.post("/carbon/convert")
def convert(req: ConvertRequest) -> carbon.Conversion:
    """An amount of an energy carrier → tCO2e and tce, with every factor used and its source.

    A calculation only (nothing is stored), so a viewer key may call it.
    """
    try:
        return carbon.convert(**req.model_dump())
    except carbon.ConversionError as exc:
        raise Unprocessable(f"body.{exc.field}", str(exc)) from None


@router.get("/factors")
def list_factors(
    page: Paging,
    set: Annotated[str | None, Query(description="factor set", examples=[factors.DEFAULT_SET])] = None,
    kind: Annotated[str | None, Query(description=", ".join(factors.KINDS), examples=["grid"])] = None,
    region: Annotated[str | None, Query(description="grid region", examples=["north_east"])] = None,
    year: Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX, examples=[2023],
                                      description="keep factors valid for this year")] = None,
) -> Page[factors.Factor]:
    try:
        return Page.of(factors.list_factors(set, kind, region, year), page)
    except factors.FactorError as exc:
        field = "set" if exc.field == "factor_set" else exc.field
        raise Unprocessable(f"query.{field}", str(exc)) from None
