"""The site energy model: what the KPI engine needs to know beyond the readings (docs/architecture.md roles).

One pydantic schema, used by the API (request bodies), the YAML site file import and the KPI
engine. Units are part of every field name, so a stored model reads unambiguously.
"""

from __future__ import annotations

import datetime as dt
import math
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from lingtan.kernel.quantities import COUNTERS

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


class DatedTariff(Tariff):
    """A tariff in force for a span of days (site-local, both ends inclusive): a new price notice,
    or a season with its own bands (a summer sharp peak)."""

    valid_from: date
    valid_to: Annotated[date | None, Field(description="inclusive; unset: until further notice")] = None

    @model_validator(mode="after")
    def _ordered(self) -> DatedTariff:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from (both inclusive)")
        return self

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


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
    """Energy-model parameters of a site. Defaults are the docs/domain.md references, named there."""

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
    tariff: Annotated[Tariff, Field(description="the tariff on every day no dated tariff covers")] = Tariff()
    tariffs: Annotated[list[DatedTariff], Field(description=(
        "tariffs with validity dates (site-local days, inclusive), e.g. a new price notice or a "
        "season's bands; they must not overlap"))] = []
    electricity_equal_value_kgce_per_kwh: Annotated[float | None, Field(gt=0, description=(
        "equal value (等价值) for tce; none by default (GB/T 2589: set from last year's plant "
        "coal rate, e.g. 0.28078 in Shanghai DB31/T 783)"))] = None
    steam_convention: Annotated[Literal["enthalpy", "table"], Field(description=(
        "steam tce: enthalpy 2.6796 GJ/t then heat factors, or GB/T 2589 table 0.1286 kgce/kg"))
    ] = "enthalpy"
    heat_recovery: HeatRecovery = HeatRecovery()
    production_unit: Annotated[str, Field(min_length=1, max_length=40, examples=["t", "pcs"])] = "unit"

    @field_validator("tariffs")
    @classmethod
    def _one_tariff_a_day(cls, value: list[DatedTariff]) -> list[DatedTariff]:
        for j, t in enumerate(value):
            for i, other in enumerate(value[:j]):
                end_t, end_o = t.valid_to or date.max, other.valid_to or date.max
                if t.valid_from <= end_o and other.valid_from <= end_t:
                    raise ValueError(f"tariffs[{j}] (from {t.valid_from}) overlaps tariffs[{i}] (from "
                                     f"{other.valid_from} to {other.valid_to or 'no end'}): a day has one "
                                     "tariff")
        return sorted(value, key=lambda t: t.valid_from)


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
    exchanges: Annotated[list[CounterExchange], Field(description=(
        "meter replacements: the old and new counter values at each swap"))] = []

    @field_validator("exchanges")
    @classmethod
    def _one_swap_at_a_time(cls, value: list[CounterExchange]) -> list[CounterExchange]:
        seen = set()
        for x in value:
            key = (x.quantity, x.time)
            if key in seen:
                raise ValueError(f"two exchanges of {x.quantity} at {x.time.isoformat()}")
            seen.add(key)
        return sorted(value, key=lambda x: (x.quantity, x.time))


class CounterExchange(_Strict):
    """A meter replaced (or its register cleared) on purpose: the old counter's last value and the
    new one's first, at the instant of the swap. With it the energy across the swap is known, so
    the pair of readings around it counts in full and keeps its time covered (docs/domain.md,
    "Meter replacement"); without it the step down is a reset whose timing is unknown."""

    time: Annotated[dt.datetime, Field(description="the instant of the swap, with its UTC offset")]
    quantity: Annotated[str, Field(examples=["active_energy_import"], description="the counter replaced")]
    old_final: Annotated[float, Field(ge=0, allow_inf_nan=False, description="the old counter's last value")]
    new_initial: Annotated[float, Field(ge=0, allow_inf_nan=False, description=(
        "the new counter's value when it was put in, usually 0"))] = 0.0

    @field_validator("time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its UTC offset, e.g. 2026-11-14T11:20:00+08:00")
        return value

    @field_validator("quantity")
    @classmethod
    def _counter(cls, value: str) -> str:
        if value not in COUNTERS:
            raise ValueError(f"{value!r} is not a counter (counters: {', '.join(sorted(COUNTERS))})")
        return value


class GreenPurchase(_Strict):
    """Green certificates (GEC, 1 certificate = 1000 kWh) or a green-power trade, for a period.

    Allocated evenly over the period's grid-supplied consumption (the consumption the site's own
    PV did not cover) once the period has closed, and in proportion to the time elapsed while it
    is still running (docs/domain.md; ``lingtan.core.green``).
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


GEC_KWH = 1000.0  # docs/domain.md: one green electricity certificate = 1000 kWh


# --- manually entered activity data ----------------------------------------------------------

ActivityCarrier = Literal["natural_gas", "diesel", "gasoline", "lpg", "fuel_oil", "raw_coal", "refrigerant"]
ACTIVITY_CARRIERS: tuple[str, ...] = ActivityCarrier.__args__  # type: ignore[attr-defined]
LIQUID_FUELS = ("diesel", "gasoline", "lpg", "fuel_oil")
# What each carrier may be measured in: a liquid fuel by mass, or by volume with its density.
_MEASURES: dict[str, tuple[str, ...]] = {
    "natural_gas": ("volume",), "raw_coal": ("mass",), "refrigerant": ("mass",),
    **{fuel: ("mass", "volume") for fuel in LIQUID_FUELS},
}
_DIMENSIONS = {"[mass]": "mass", "[length] ** 3": "volume"}
_UNIT_EXAMPLES = {"mass": "t, kg", "volume": "L, m3, Nm3"}
MAX_DENSITY_KG_PER_L = 1.5  # heavier than any fuel oil: a larger number is kg/m³ given as kg/L


def measure_of(unit: str, amount: float = 1.0) -> str | None:
    """"mass", "volume", or None for a unit of anything else; raises ValueError if unknown or if
    ``amount`` of it is too large to compute with."""
    from lingtan.kernel.quantities import quantity

    try:
        q = quantity(amount, unit)
        dims, size = str(q.dimensionality), float(q.to_base_units().magnitude)
    except Exception:  # pint fails in many ways on free text; every one means "unknown unit"
        raise ValueError(f"unknown unit {unit!r} (e.g. t, kg, L, m3, Nm3)") from None
    if not math.isfinite(size):
        raise ValueError(f"{amount:g} {unit} is too large to be an amount of fuel")
    return _DIMENSIONS.get(dims)


EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2199, 12, 31)  # beyond them a date is a typo


class ActivityEntry(_Strict):
    """Fuel or refrigerant that no meter measures, entered from an invoice or ledger (docs/domain.md).

    One day (``date``) or a period of days in the site's zone; the KPI engine counts an entry
    in a window in proportion to how much of its time the window covers.
    """

    period_start: Annotated[dt.date | None, Field(description="first day of a period (site-local)")] = None
    period_end: Annotated[dt.date | None, Field(
        description="exclusive: the day after the period, as for green_power", validate_default=True)] = None
    date: Annotated[dt.date | None, Field(
        description="the day, for an entry of one day (instead of a period)", validate_default=True)] = None
    carrier: ActivityCarrier
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False, examples=[1000])]
    unit: Annotated[str, Field(min_length=1, max_length=20, examples=["L"], description=(
        "mass (t, kg) or, for natural gas and liquid fuels, volume (L, m3, Nm3); "
        "natural gas volumes are standard m³"))]
    density_kg_per_l: Annotated[float | None, Field(gt=0, allow_inf_nan=False, validate_default=True,
                                                    description=(
        "liquid fuel given by volume: its density in kg per litre, from the delivery note or fuel "
        "certificate (no default: it varies with grade and temperature)"), examples=[0.84])] = None
    gas: Annotated[str | None, Field(min_length=1, max_length=40, validate_default=True,
                                     description="refrigerant: its name, e.g. R-134a, R-410A",
                                     examples=["R-410A"])] = None
    gwp: Annotated[float | None, Field(gt=0, allow_inf_nan=False, validate_default=True, description=(
        "refrigerant: GWP-100 in tCO2e per t; omitted, the library's IPCC AR5 value is taken"))] = None
    gwp_source: Annotated[str | None, Field(min_length=1, max_length=300, validate_default=True,
                                            description="where gwp comes from; required with a gwp of "
                                                        "your own")] = None
    evidence: Annotated[str, Field(min_length=1, max_length=200, examples=["INV-2026-0412"],
                                   description="invoice, delivery note or ledger number")]
    note: Annotated[str, Field(max_length=500)] = ""

    @field_validator("period_start", "period_end", "date")
    @classmethod
    def _plausible(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not EARLIEST <= value <= LATEST:
            raise ValueError(f"{value} is not a plausible date for fuel use ({EARLIEST} to {LATEST})")
        return value

    @field_validator("period_end")
    @classmethod
    def _period(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        if "period_start" not in info.data:
            return value  # period_start itself is wrong; that error is enough
        start = info.data["period_start"]
        if start is not None and value is None:
            raise ValueError("required with period_start (exclusive: the day after the period)")
        if start is None and value is not None:
            raise ValueError("needs period_start as well")
        if start is not None and value is not None and value <= start:
            raise ValueError("must be after period_start (it is exclusive: the day after the period)")
        return value

    @field_validator("date")
    @classmethod
    def _day_or_period(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        if "period_start" not in info.data or "period_end" not in info.data:
            return value
        period = info.data["period_start"] is not None
        if value is not None and period:
            raise ValueError("give either date or period_start and period_end, not both")
        if value is None and not period:
            raise ValueError("required: the day of the entry, or period_start and period_end instead")
        return value

    @field_validator("unit")
    @classmethod
    def _unit_fits(cls, value: str, info: ValidationInfo) -> str:
        carrier = info.data.get("carrier")
        measure = measure_of(value, info.data.get("amount", 1.0))
        if carrier is not None and measure not in _MEASURES[carrier]:
            allowed = _MEASURES[carrier]
            raise ValueError(f"{value!r} does not measure {carrier} (a {' or '.join(allowed)}: "
                             f"{', '.join(_UNIT_EXAMPLES[m] for m in allowed)})")
        return value

    @field_validator("density_kg_per_l")
    @classmethod
    def _density(cls, value: float | None, info: ValidationInfo) -> float | None:
        carrier, unit = info.data.get("carrier"), info.data.get("unit")
        if carrier is None or unit is None:
            return value
        by_volume = carrier in LIQUID_FUELS and measure_of(unit) == "volume"
        if by_volume and value is None:
            raise ValueError(f"required: {carrier} given by volume ({unit}) needs its density in kg/L "
                             "to become tonnes (from the delivery note or fuel certificate)")
        if not by_volume and value is not None:
            raise ValueError("applies only to a liquid fuel given by volume")
        if value is not None and value > MAX_DENSITY_KG_PER_L:
            raise ValueError(f"{value:g} kg/L is heavier than any fuel: give kilograms per litre "
                             f"(840 kg/m³ = 0.84 kg/L)")
        return value

    @field_validator("gas")
    @classmethod
    def _gas(cls, value: str | None, info: ValidationInfo) -> str | None:
        from lingtan.core.factors import MONTREAL_REFRIGERANTS, refrigerant_name

        carrier = info.data.get("carrier")
        if carrier is None:
            return value
        if carrier != "refrigerant":
            if value is not None:
                raise ValueError("applies only to carrier refrigerant")
            return value
        if value is None or not value.strip():
            raise ValueError("required for a refrigerant: its name, e.g. R-134a or R-410A")
        name = refrigerant_name(value)
        if name in MONTREAL_REFRIGERANTS:
            raise ValueError(f"{name} is a CFC/HCFC under the Montreal Protocol: GB/T 32150-2015 and the "
                             "GHG Protocol do not count it in Scope 1, so it is not entered here")
        return name

    @field_validator("gwp")
    @classmethod
    def _gwp(cls, value: float | None, info: ValidationInfo) -> float | None:
        from lingtan.core.factors import GWP_SOURCE, REFRIGERANT_GWP, refrigerant_gwp

        carrier, gas = info.data.get("carrier"), info.data.get("gas")
        if carrier is not None and carrier != "refrigerant" and value is not None:
            raise ValueError("applies only to carrier refrigerant")
        if carrier == "refrigerant" and gas is not None and value is None and refrigerant_gwp(gas) is None:
            known = ", ".join(name for name, _, _ in REFRIGERANT_GWP.values())
            raise ValueError(f"required: {gas} is not in the library ({GWP_SOURCE}: {known}); "
                             "give its GWP-100 and gwp_source")
        return value

    @field_validator("gwp_source")
    @classmethod
    def _gwp_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        from lingtan.core.factors import refrigerant_gwp

        carrier, gas = info.data.get("carrier"), info.data.get("gas")
        if carrier is None or "gwp" not in info.data:
            return value
        gwp = info.data["gwp"]
        if carrier != "refrigerant":
            if value is not None:
                raise ValueError("applies only to carrier refrigerant")
            return value
        if value is not None and not value.strip():
            raise ValueError("must name where the GWP comes from")
        if value is not None and gwp is None:
            raise ValueError("names the source of a gwp, but no gwp is given")
        library = refrigerant_gwp(gas) if gas is not None else None
        if value is None and gwp is not None and (library is None or library[0] != gwp):
            raise ValueError(f"required with a gwp of your own ({gwp:g}): name the table it comes from, "
                             "e.g. IPCC AR6 WG I chapter 7")
        return value

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("required: the invoice, delivery note or ledger number behind the entry")
        return value.strip()

    @model_validator(mode="after")
    def _settled(self) -> ActivityEntry:
        # Stored as it will be computed, so a later change to the library does not silently
        # restate past entries, and a one-day period reads as the day it is.
        from lingtan.core.factors import refrigerant_gwp

        if self.carrier == "refrigerant" and self.gas is not None and self.gwp_source is None:
            library = refrigerant_gwp(self.gas)
            if library is not None:
                self.gwp, self.gwp_source = library
        if self.period_start is not None and self.period_end == self.period_start + dt.timedelta(days=1):
            self.date, self.period_start, self.period_end = self.period_start, None, None
        return self

    @property
    def first_day(self) -> dt.date:
        return self.date or self.period_start  # type: ignore[return-value]

    @property
    def end_day(self) -> dt.date:
        """The day after the entry's last day (exclusive)."""
        return self.date + dt.timedelta(days=1) if self.date else self.period_end  # type: ignore[return-value]
