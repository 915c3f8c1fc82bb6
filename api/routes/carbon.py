from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api import factors
from api.services import carbon

router = APIRouter(tags=["carbon"])


class ConvertRequest(BaseModel):
    carrier: carbon.Carrier
    amount: Annotated[float, Field(ge=0)]
    unit: str = Field(description="pint unit, e.g. kWh, MWh, m3, Nm3, t, kg, GJ, MJ")
    factor_set: str | None = Field(None, description=f"default {factors.DEFAULT_SET}")
    region: str | None = Field(None, description="grid region (electricity)")
    year: int | None = Field(None, description="data year; default: the newest in the set")
    basis: carbon.Basis = "location"
    steam_convention: carbon.SteamConvention = "enthalpy"


def _unprocessable(field: str, message: str, where: Literal["body", "query"]) -> HTTPException:
    # Same shape as FastAPI's own validation errors, so clients read one format.
    return HTTPException(422, [{"loc": [where, field], "msg": message, "type": "value_error"}])


@router.post("/carbon/convert")
def convert(req: ConvertRequest) -> carbon.Conversion:
    try:
        return carbon.convert(**req.model_dump())
    except carbon.ConversionError as exc:
        raise _unprocessable(exc.field, str(exc), "body") from None


@router.get("/factors")
def list_factors(
    set: Annotated[str | None, Query(description="factor set, e.g. mee-2023")] = None,
    kind: Annotated[str | None, Query(description=", ".join(factors.KINDS))] = None,
    region: str | None = None,
    year: Annotated[int | None, Query(description="keep factors valid for this year")] = None,
) -> list[factors.Factor]:
    try:
        return factors.list_factors(set, kind, region, year)
    except factors.FactorError as exc:
        field = "set" if exc.field == "factor_set" else exc.field
        raise _unprocessable(field, str(exc), "query") from None
