"""The site energy model: what the KPI engine needs to know beyond the readings (DESIGN.md roles).

One pydantic schema, used by the API (request bodies), the YAML site file import and the KPI
engine. Units are part of every field name, so a stored model reads unambiguously.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["grid_import", "grid_export", "pv_generation", "load", "compressor", "boiler_fuel",
               "boiler_output", "heat_recovery", "purchased_heat", "production"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
Fuel = Literal["natural_gas", "diesel", "gasoline", "lpg"]
Region = Literal["national", "north_east", "north", "east", "central", "north_west", "south",
                 "south_west"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TariffBand(_Strict):
    """A time-of-use band in the site's local time; ``end`` ≤ ``start`` wraps past midnight."""

    name: Annotated[str, Field(examples=["peak"])]
    start: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["08:00"])]
    end: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["11:00"])]
    price_cny_per_kwh: Annotated[float, Field(ge=0, examples=[1.05])]


class Tariff(_Strict):
    """Electricity price: one flat price, optionally refined by time-of-use bands."""

    flat_cny_per_kwh: Annotated[float | None, Field(ge=0, examples=[0.68])] = None
    bands: list[TariffBand] = []


class HeatRecovery(_Strict):
    # DOMAIN.md: without a heat meter, recovered heat ≈ compressor electrical energy × share.
    estimated_share: Annotated[float, Field(gt=0, le=1)] = 0.75
    displaces: Literal["boiler_fuel", "purchased_heat"] = "boiler_fuel"


class SiteParams(_Strict):
    """Energy-model parameters of a site. Defaults are the DOMAIN.md references, named there."""

    boiler_efficiency: Annotated[float, Field(gt=0, le=1, description=(
        "boiler thermal efficiency used to turn recovered heat into avoided fuel; default 0.92 "
        "(GB 24500-2020 grade 3 for gas non-condensing boilers)"))] = 0.92
    boiler_fuel: Fuel = "natural_gas"
    gas_ncv_gj_per_10k_m3: Annotated[float, Field(gt=0, description=(
        "natural gas net calorific value; default 389.31 GJ/10⁴Nm³ (MEE guideline)"))] = 389.31
    natural_gas_origin: Annotated[Literal["gas_field", "oil_field"], Field(description=(
        "GB/T 2589-2020 standard-coal factor: gas-field 1.2143 or oil-field 1.3300 kgce/m³"))
    ] = "gas_field"
    gas_price_cny_per_m3: Annotated[float | None, Field(ge=0, examples=[3.6])] = None
    tariff: Tariff = Tariff()
    electricity_equal_value_kgce_per_kwh: Annotated[float | None, Field(gt=0, description=(
        "equal value (等价值) for tce; none by default (GB/T 2589: set from last year's plant "
        "coal rate, e.g. 0.28078 in Shanghai DB31/T 783)"))] = None
    steam_convention: Annotated[Literal["enthalpy", "table"], Field(description=(
        "steam tce: enthalpy 2.6796 GJ/t then heat factors, or GB/T 2589 table 0.1286 kgce/kg"))
    ] = "enthalpy"
    heat_recovery: HeatRecovery = HeatRecovery()
    production_unit: Annotated[str, Field(min_length=1, max_length=40, examples=["t", "pcs"])] = "unit"


class CompressorSpec(_Strict):
    """Nameplate data to grade a compressor against GB 19153-2019."""

    rated_kw: Annotated[float, Field(gt=0, examples=[37])]
    pressure_mpa: Annotated[float, Field(gt=0, le=5, examples=[0.7])]
    kind: Literal["oil_injected_screw"] = "oil_injected_screw"
    speed: Literal["fixed", "variable"] = "fixed"
    cooling: Literal["air", "water"] = "air"


class BoilerOutput(_Strict):
    steam_pressure_mpa_abs: Annotated[float, Field(gt=0, le=5, examples=[0.7])] = 0.7
    feedwater_c: Annotated[float, Field(ge=0, le=150)] = 20.0


class MeterParams(_Strict):
    """Per-meter facts the KPI engine needs; each applies to the roles named in its description."""

    fuel: Annotated[Fuel | None, Field(description="boiler_fuel: the fuel it meters")] = None
    heat_carrier: Annotated[Literal["heat", "steam"] | None, Field(
        description="purchased_heat: metered as heat (GJ) or steam (t)")] = None
    compressor: CompressorSpec | None = None
    boiler_output: BoilerOutput | None = None
    rated_power_kw: Annotated[float | None, Field(gt=0, description=(
        "counter steps above rated power × elapsed time × 1.5 are treated as spikes"))] = None
    counter_wrap: Annotated[float | None, Field(gt=0, description=(
        "value at which the counter rolls over to 0 (e.g. 42949672.95 for uint32 × 0.01 kWh)"))
    ] = None


class GreenPurchase(_Strict):
    """Green certificates (GEC, 1 certificate = 1000 kWh) or a green-power trade, for a period.

    Allocated evenly over the period's grid-supplied consumption, the consumption the site's own
    PV did not cover (docs/domain.md; ``api.services.green``).
    """

    kind: Literal["gec", "trade"]
    period_start: date
    period_end: Annotated[date, Field(description="exclusive: the day after the period")]
    certificates: Annotated[float | None, Field(ge=0, description="gec: number of certificates")] = None
    kwh: Annotated[float | None, Field(ge=0, description="trade: contracted green kWh")] = None
    reference: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _consistent(self) -> GreenPurchase:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start (it is exclusive)")
        if self.kind == "gec" and (self.certificates is None or self.kwh is not None):
            raise ValueError("a gec purchase gives certificates (1 GEC = 1000 kWh), not kwh")
        if self.kind == "trade" and (self.kwh is None or self.certificates is not None):
            raise ValueError("a trade gives kwh, not certificates")
        return self

    @property
    def green_kwh(self) -> float:
        return (self.certificates or 0.0) * GEC_KWH if self.kind == "gec" else self.kwh or 0.0


GEC_KWH = 1000.0  # DOMAIN.md: one green electricity certificate = 1000 kWh
