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

    name: Annotated[str, Field(min_length=1, max_length=40, examples=["peak"], description=(
        "e.g. sharp_peak (尖峰), peak, flat, valley, deep_valley (深谷); bands of one name and price "
        "are reported together"))]
    start: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["08:00"])]
    end: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["11:00"])]
    price_cny_per_kwh: Annotated[float, Field(ge=0, examples=[1.05])]

    def minutes(self) -> set[int]:
        """Minutes of the local day in [start, end), wrapping past midnight when end ≤ start."""
        a, b = (int(t[:2]) * 60 + int(t[3:]) for t in (self.start, self.end))
        return set(range(a, b)) if b > a else set(range(a, 1440)) | set(range(0, b))


class Tariff(_Strict):
    """Electricity price: time-of-use bands where they apply, the flat price everywhere else."""

    flat_cny_per_kwh: Annotated[float | None, Field(ge=0, examples=[0.68], description=(
        "the price outside every band (and of energy counted across a meter gap, whose time is unknown)"
    ))] = None
    bands: Annotated[list[TariffBand], Field(description="non-overlapping, in the site's local time")] = []

    @model_validator(mode="after")
    def _no_overlap(self) -> Tariff:
        taken = [band.minutes() for band in self.bands]
        for j, band in enumerate(self.bands):
            for i in range(j):
                if taken[i] & taken[j]:
                    other = self.bands[i]
                    raise ValueError(f"bands[{j}] ({band.name} {band.start}–{band.end}) overlaps bands[{i}] "
                                     f"({other.name} {other.start}–{other.end}): a minute has one price")
        return self


HeatUse = Literal["boiler_feedwater", "space_heating", "domestic_hot_water"]


class HeatRecovery(_Strict):
    """Compressor heat recovery as installed. No saving is claimed until the site says which
    compressors it is installed on and where the heat goes (``use``); ``displaces`` is what would
    otherwise have supplied that heat. Only heat that preheats boiler feedwater is taken off the
    boiler's output in its efficiency."""

    compressors: Annotated[list[str], Field(description=(
        "ids of the compressor meters the recovery is installed on"), examples=[["compressor-1"]])] = []
    use: Annotated[HeatUse | None, Field(description=(
        "where the recovered heat goes: boiler_feedwater, space_heating or domestic_hot_water "
        "(showers); unset: not declared, no saving claimed"))] = None
    displaces: Annotated[Literal["boiler_fuel", "purchased_heat"] | None, Field(description=(
        "what would otherwise supply that heat: the site's boiler fuel or purchased heat; "
        "boiler_feedwater implies boiler_fuel"))] = None
    # docs/domain.md: without a heat meter, recovered heat ≈ compressor electrical energy × share.
    estimated_share: Annotated[float, Field(gt=0, le=1)] = 0.75

    @model_validator(mode="after")
    def _declared_whole(self) -> HeatRecovery:
        if self.use is None:
            if self.compressors:
                raise ValueError("use: say where the recovered heat goes (boiler_feedwater, space_heating or "
                                 "domestic_hot_water)")
            return self  # not declared (older site files may still carry a displaces default)
        if not self.compressors:
            raise ValueError("compressors: name the compressor meter(s) the heat recovery is installed on")
        if self.use == "boiler_feedwater":
            if self.displaces == "purchased_heat":
                raise ValueError("displaces: heat that preheats boiler feedwater displaces boiler_fuel")
            self.displaces = "boiler_fuel"
        elif self.displaces is None:
            raise ValueError(f"displaces: what would otherwise supply the {self.use.replace('_', ' ')}: "
                             "boiler_fuel or purchased_heat")
        return self

    @property
    def declared(self) -> bool:
        return self.use is not None


class SiteParams(_Strict):
    """Energy-model parameters of a site. Defaults are the DOMAIN.md references, named there."""

    boiler_efficiency: Annotated[float, Field(gt=0, le=1, description=(
        "boiler thermal efficiency used to turn recovered heat into avoided fuel; default 0.92 "
        "(GB 24500-2020 grade 3 for gas non-condensing boilers)"))] = 0.92
    boiler_fuel: Fuel = "natural_gas"
    gas_ncv_gj_per_10k_m3: Annotated[float, Field(gt=0, description=(
        "natural gas net calorific value per 10⁴ m³ at gas_ncv_reference_c; the one heating value "
        "behind Scope 1, standard coal (NCV ÷ 29.3076 MJ/kgce), boiler efficiency and avoided gas. "
        "Default 389.31 GJ/10⁴Nm³ at 0 °C (MEE guideline default, = GB/T 2589's 38 931 kJ/m³)"))] = 389.31
    gas_ncv_reference_c: Annotated[Literal[0, 20], Field(description=(
        "temperature (°C, at 101.325 kPa) of the m³ the NCV is quoted per: 0 (Nm³, as the MEE "
        "guideline) or 20 (GB/T 19205 standard reference conditions)"))] = 0
    gas_volume_reference_c: Annotated[Literal[0, 20] | None, Field(description=(
        "temperature (°C, at 101.325 kPa) of the m³ the gas meters count: 0 or 20 (volume correctors "
        "usually report 20 °C). Unset: taken as the NCV's, and every KPI response says so"))] = None
    natural_gas_origin: Annotated[Literal["gas_field", "oil_field"], Field(description=(
        "kept so older site files load; no longer changes any figure: standard coal of gas follows "
        "gas_ncv_gj_per_10k_m3 (GB/T 2589 reference heating values: gas-field 35 544 kJ/m³ = 1.2143 "
        "kgce/m³, oil-field 38 931 kJ/m³ = 1.3300 kgce/m³)"))
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


class Gb19153Limits(_Strict):
    """The GB 19153-2019 row that governs this machine, as the site read it, and where from."""

    grade_1: Annotated[float, Field(gt=0, description="kW/(m³/min), at or below: grade 1")]
    grade_2: Annotated[float, Field(gt=0)]
    grade_3: Annotated[float, Field(gt=0, description="the minimum allowable value")]
    source: Annotated[str, Field(min_length=1, max_length=500, examples=[
        "GB 19153-2019 Table 1, 37 kW, 0.8 MPa (site's copy of the standard)"])]

    @model_validator(mode="after")
    def _ordered(self) -> Gb19153Limits:
        if not self.grade_1 < self.grade_2 < self.grade_3:
            raise ValueError("grade_1 < grade_2 < grade_3: a better grade allows less specific power")
        return self


class CompressorSpec(_Strict):
    """Nameplate data to grade a compressor against GB 19153-2019."""

    rated_kw: Annotated[float, Field(gt=0, examples=[37])]
    pressure_mpa: Annotated[float, Field(gt=0, le=5, examples=[0.7])]
    kind: Literal["oil_injected_screw"] = "oil_injected_screw"
    speed: Literal["fixed", "variable"] = "fixed"
    cooling: Literal["air", "water"] = "air"
    gb19153_limits: Annotated[Gb19153Limits | None, Field(description=(
        "the limits of the machine's GB 19153-2019 row, where the library lacks that row"))] = None


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

    Allocated evenly over the period's consumption once the period has closed, and in proportion
    to the time elapsed while it is still running (docs/domain.md).
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
