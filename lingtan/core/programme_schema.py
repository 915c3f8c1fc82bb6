"""The zero-carbon programme of a site: base year and entered history, targets, the offset
register and the inputs of the evaluations (docs/domain.md, "Zero-carbon programme").

One pydantic schema for the site file's ``programme:``, ``targets:``, ``offsets:`` and
``evaluations:`` sections and for ``PUT /sites/{id}/programme``. Everything that can be checked
without the database is checked here, each error at the field it is about: a year entered twice,
a target without its base year, an offset's serials claimed twice, a certificate entered as an
offset.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lingtan.core.located import LocatedError
from lingtan.core.site_schema import ActivityCarrier, ActivityEntry, GreenPurchase

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
FIRST_YEAR, LAST_YEAR = 1990, 2199  # outside them a year is a typo
Year = Annotated[int, Field(ge=FIRST_YEAR, le=LAST_YEAR)]
Evidence = Annotated[str, Field(min_length=1, max_length=300, examples=["2020 能源利用状况报告, table 3"])]
Source = Annotated[str, Field(min_length=1, max_length=500)]


class ProgrammeError(LocatedError):
    """A programme problem at ``loc`` (a path from the top of the site file, e.g. ``("offsets", 2)``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _at(loc: tuple[str | int, ...], message: str) -> ValueError:
    """An error raised inside a model's own check: pydantic places it at the model, so the
    message names the field within it."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return ValueError(f"{path}: {message}")


def _real(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"required: {what}")
    return value.strip()


# --- base year and history ----------------------------------------------------------------------


class HistoryFuel(_Strict):
    """Fuel or refrigerant of an entered year, computed as activity data over the whole year."""

    carrier: ActivityCarrier
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    unit: Annotated[str, Field(min_length=1, max_length=20, examples=["t", "Nm3", "L"])]
    density_kg_per_l: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    gas: Annotated[str | None, Field(min_length=1, max_length=40)] = None
    gwp: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    gwp_source: Annotated[str | None, Field(min_length=1, max_length=300)] = None

    def entry(self, year: int, evidence: str) -> ActivityEntry:
        return ActivityEntry.model_validate({
            **self.model_dump(exclude_none=True), "period_start": dt.date(year, 1, 1),
            "period_end": dt.date(year + 1, 1, 1), "evidence": evidence})

    @model_validator(mode="after")
    def _as_activity(self) -> HistoryFuel:
        # The same rules as an activity data entry (units, densities, refrigerant names), said
        # at the field they are about.
        try:
            self.entry(2000, "check")
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{field}: {str(err['msg']).removeprefix('Value error, ')}") from None
        return self


class HistoryYear(_Strict):
    """A year before metering began, from annual statistics (能源利用状况报告, invoices), with evidence.

    Computed with the factors valid in that year (a site factor override where the library has
    none, e.g. for 2020) by the same formulas as a metered window.
    """

    year: Year
    electricity_bought_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False, description="grid import")]
    electricity_exported_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    pv_generation_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    pv_certificates_sold: Annotated[float, Field(ge=0, allow_inf_nan=False, description=(
        "green certificates of the site's own PV sold that year (1 GEC = 1000 kWh): that PV is "
        "not green for the site"))] = 0.0
    green_certificates: Annotated[float, Field(ge=0, allow_inf_nan=False, description=(
        "green certificates bought and cancelled for the year (Scope 2 instrument)"))] = 0.0
    green_trade_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    heat_gj: Annotated[float, Field(ge=0, allow_inf_nan=False, description="purchased heat")] = 0.0
    steam_t: Annotated[float, Field(ge=0, allow_inf_nan=False, description="purchased steam")] = 0.0
    fuels: list[HistoryFuel] = []
    production: Annotated[float | None, Field(ge=0, allow_inf_nan=False, description=(
        "in the site's production unit"))] = None
    output_value_wan_cny: Annotated[float | None, Field(gt=0, allow_inf_nan=False, description=(
        "industrial output value, 10,000 CNY (万元)"))] = None
    evidence: Evidence
    note: Annotated[str, Field(max_length=500)] = ""

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, value: str) -> str:
        return _real(value, "the statistics report, invoices or ledger the year's figures come from")


class OutputValue(_Strict):
    """Industrial output value of a metered year or month, spread over its days by time."""

    year: Year | None = None
    month: Annotated[str | None, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-03"])] = None
    value_wan_cny: Annotated[float, Field(gt=0, allow_inf_nan=False, description="10,000 CNY (万元)")]
    evidence: Evidence

    @model_validator(mode="after")
    def _one_period(self) -> OutputValue:
        if (self.year is None) == (self.month is None):
            raise ValueError("give either year or month")
        return self

    @property
    def first_day(self) -> dt.date:
        if self.year is not None:
            return dt.date(self.year, 1, 1)
        y, m = map(int, str(self.month).split("-"))
        return dt.date(y, m, 1)

    @property
    def end_day(self) -> dt.date:
        d = self.first_day
        if self.year is not None:
            return dt.date(d.year + 1, 1, 1)
        return dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)


class SoldCertificates(_Strict):
    """Green certificates of the site's own PV sold for a period: that much PV is not green for
    the site, because the certificate carries the attribute (docs/domain.md, "Green power")."""

    period_start: dt.date
    period_end: Annotated[dt.date, Field(description="exclusive: the day after the period")]
    certificates: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    reference: Annotated[str, Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _ordered(self) -> SoldCertificates:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start (it is exclusive)")
        return self


NeutralityRule = Literal["iso14068_market", "iso14068_location"]
NEUTRALITY_RULES: dict[str, str] = {
    "iso14068_market": ("ISO 14068-1:2023 with the boundary Scope 1 + Scope 2 market-based (after green "
                        "instruments): neutral when retired credits and removals claimed for the period "
                        "cover the residual"),
    "iso14068_location": ("ISO 14068-1:2023 with the boundary Scope 1 + Scope 2 location-based (green "
                          "instruments not deducted): neutral when retired credits and removals claimed for "
                          "the period cover the residual"),
}


class Programme(_Strict):
    base_year: Annotated[Year | None, Field(description="the year targets are measured against")] = None
    floor_area_m2: Annotated[float | None, Field(gt=0, allow_inf_nan=False, description=(
        "the factory's floor area, for intensity per m²"))] = None
    neutrality_rule: Annotated[NeutralityRule, Field(description=(
        "; ".join(f"{k}: {v}" for k, v in NEUTRALITY_RULES.items())))] = "iso14068_market"
    history: Annotated[list[HistoryYear], Field(description="years before metering, entered")] = []
    output_value: Annotated[list[OutputValue], Field(description="output value of metered periods")] = []
    pv_certificates_sold: list[SoldCertificates] = []

    @model_validator(mode="after")
    def _years_once(self) -> Programme:
        seen: dict[int, int] = {}
        for i, h in enumerate(self.history):
            if h.year in seen:
                raise _at(("history", i, "year"), f"{h.year} is already entered as history[{seen[h.year]}]")
            seen[h.year] = i
        periods: dict[tuple[dt.date, dt.date], int] = {}
        for i, o in enumerate(self.output_value):
            for (a, b), j in periods.items():
                if o.first_day < b and a < o.end_day:
                    raise _at(("output_value", i), f"overlaps output_value[{j}]: each day's output "
                                                              "value is entered once")
            periods[(o.first_day, o.end_day)] = i
        return self


# --- targets --------------------------------------------------------------------------------------

TargetKind = Literal["emissions", "intensity", "green_power_share", "pv_self_consumption", "energy_per_unit"]
SHARES = ("green_power_share", "pv_self_consumption")


class Target(_Strict):
    """A target of the programme, e.g. "2027 emissions 30 % below 2020" or "green power over 50 %"."""

    id: Id
    name: Annotated[str, Field(max_length=200)] = ""
    kind: Annotated[TargetKind, Field(description=(
        "emissions: Scope 1 + 2 (tCO2e); intensity: Scope 1 + 2 per unit of product, per 万元 output "
        "value or per m²; green_power_share and pv_self_consumption: shares 0..1; energy_per_unit: "
        "kgce per unit of product"))]
    basis: Annotated[Literal["location", "market"], Field(description=(
        "emissions and intensity: the Scope 2 basis"))] = "market"
    per: Annotated[Literal["product", "output_value", "floor_area"] | None, Field(description=(
        "intensity: the denominator"))] = None
    reduction: Annotated[float | None, Field(gt=0, le=1, description=(
        "a reduction below the base year's value, as a fraction (0.3 for 30 %)"))] = None
    value: Annotated[float | None, Field(ge=0, allow_inf_nan=False, description=(
        "the target value itself; a share as a fraction (0.5 for 50 %)"))] = None
    base_year: Annotated[Year | None, Field(description="default: the programme's base year")] = None
    target_year: Year
    at_risk_margin: Annotated[float, Field(ge=0, le=1, description=(
        "how far the projection may fall short, as a fraction of the change the target asks for, "
        "and still be at risk rather than off track"))] = 0.2

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if (self.reduction is None) == (self.value is None):
            raise ValueError("give either reduction (below the base year) or value")
        if self.kind in SHARES:
            if self.reduction is not None:
                raise _at(("reduction",), "a share target gives its value (0.5 for 50 %), not a "
                                                     "reduction")
            if self.value is not None and self.value > 1:
                raise _at(("value",), f"a share is a fraction: {self.value / 100:g} for "
                                                 f"{self.value:g} %")
        if self.kind == "intensity" and self.per is None:
            raise _at(("per",), "required for an intensity: product, output_value or floor_area")
        if self.kind != "intensity" and self.per is not None:
            raise _at(("per",), "applies only to an intensity target")
        if self.base_year is not None and self.target_year <= self.base_year:
            raise _at(("target_year",), f"must be after the base year {self.base_year}")
        return self

    @property
    def lower_is_better(self) -> bool:
        return self.kind not in SHARES


# --- offsets ----------------------------------------------------------------------------------------

OffsetType = Literal["ccer", "ver", "forestry_sink", "removal"]
# What may never be entered as an offset: the attribute certificates of electricity are Scope 2
# instruments (docs/domain.md, "Offsets and the net balance").
_INSTRUMENTS = {"gec", "green_certificate", "green_certificates", "i-rec", "irec", "rec", "go",
                "green_power", "trade"}
_SERIAL = re.compile(r"^(.*?)(\d+)$")


def serial_range(first: str, last: str | None) -> tuple[str, int, int]:
    """(prefix, first number, last number) of a block of serial numbers ``first``–``last``."""
    a = _SERIAL.match(first.strip())
    if a is None:
        raise ValueError(f"serial {first!r} does not end in a number")
    if last is None:
        return a.group(1), int(a.group(2)), int(a.group(2))
    b = _SERIAL.match(last.strip())
    if b is None or b.group(1) != a.group(1):
        raise ValueError(f"serial_to {last!r} must share serial_from's prefix {a.group(1)!r} "
                         "and end in a number")
    lo, hi = int(a.group(2)), int(b.group(2))
    if hi < lo:
        raise ValueError(f"serial_to {last!r} comes before serial_from {first!r}")
    return a.group(1), lo, hi


class Offset(_Strict):
    """A retired carbon credit or removal, claimed for one period (a calendar year)."""

    id: Id
    type: Annotated[OffsetType, Field(description=(
        "ccer: China Certified Emission Reduction; ver: a voluntary standard's credit (VCS, Gold "
        "Standard); forestry_sink: forestry carbon sink credits; removal: certified removals"))]
    project: Annotated[str, Field(min_length=1, max_length=300)]
    registry: Annotated[str, Field(max_length=100, examples=["CCER registry", "Verra"])] = ""
    vintage: Annotated[Year, Field(description="the year the reduction or removal happened")]
    quantity_t: Annotated[float, Field(gt=0, allow_inf_nan=False, description="tCO2e (one credit = 1 t)")]
    serial_from: Annotated[str, Field(min_length=1, max_length=120)]
    serial_to: Annotated[str | None, Field(min_length=1, max_length=120)] = None
    retired_on: dt.date
    reference: Annotated[str, Field(min_length=1, max_length=200, description="the retirement certificate")]
    period: Annotated[Year, Field(description="the calendar year the retirement is claimed for")]

    @field_validator("type", mode="before")
    @classmethod
    def _not_an_instrument(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in _INSTRUMENTS:
            raise ValueError(f"{value!r} is a Scope 2 instrument, never an offset: enter green "
                             "certificates and green-power trades under green_power, where they lower "
                             "market-based Scope 2")
        return value

    @model_validator(mode="after")
    def _serials(self) -> Offset:
        try:
            _, lo, hi = serial_range(self.serial_from, self.serial_to)
        except ValueError as exc:
            raise _at(("serial_to" if self.serial_to else "serial_from",), str(exc)) from None
        count = hi - lo + 1
        if self.serial_to is not None and abs(count - self.quantity_t) > 1e-9:
            raise _at(("quantity_t",), f"serials {self.serial_from}–{self.serial_to} are {count} credits "
                                       f"of 1 tCO2e, but quantity_t is {self.quantity_t:g}")
        if self.retired_on.year < self.vintage:
            raise _at(("retired_on",), f"{self.retired_on} is before the vintage {self.vintage}: a "
                                                  "credit is retired after the reduction happened")
        return self

    @property
    def serials(self) -> tuple[str, int, int]:
        return serial_range(self.serial_from, self.serial_to)


def check_offsets(offsets: list[Offset], green_power: list[GreenPurchase] | None = None) -> None:
    """A credit is retired for one period only, and an instrument is never an offset; raises
    ``ProgrammeError`` at the offending offset (loc from the ``offsets`` list)."""
    seen_ids: dict[str, int] = {}
    blocks: list[tuple[str, int, int, int]] = []
    refs = {p.reference.strip().lower(): j for j, p in enumerate(green_power or []) if p.reference.strip()}
    for i, o in enumerate(offsets):
        if o.id in seen_ids:
            raise ProgrammeError((i, "id"), f"{o.id!r} is already offsets[{seen_ids[o.id]}]")
        seen_ids[o.id] = i
        prefix, lo, hi = o.serials
        for p, a, b, j in blocks:
            if p == prefix and lo <= b and a <= hi:
                first = offsets[j]
                raise ProgrammeError((i, "serial_from"), (
                    f"serials {o.serial_from}–{o.serial_to or o.serial_from} overlap offsets[{j}] "
                    f"({first.id}, claimed for {first.period}): a retired credit counts for one period only"))
        blocks.append((prefix, lo, hi, i))
        j = refs.get(o.reference.strip().lower())
        if j is not None:
            raise ProgrammeError((i, "reference"), (
                f"{o.reference!r} is the reference of green_power[{j}]: a certificate counted as a Scope 2 "
                "instrument cannot also reduce the net as an offset"))


# --- evaluations ------------------------------------------------------------------------------------

Indicator = Literal[
    "tce_per_unit", "electricity_per_unit", "carbon_per_unit", "carbon_per_output_value",
    "tce_per_output_value", "carbon_per_m2", "carbon_per_tce", "green_power_share", "pv_self_consumption",
]
INDICATORS: tuple[str, ...] = Indicator.__args__  # type: ignore[attr-defined]
CheckStatus = Literal["met", "partly", "not_met", "not_applicable"]


class ChecklistItem(_Strict):
    item: Annotated[str, Field(min_length=1, max_length=300)]
    pathway: Annotated[str, Field(max_length=100, examples=["carbon accounting", "green energy supply"])] = ""
    status: CheckStatus
    evidence: Annotated[str, Field(max_length=300)] = ""
    from_stars: Annotated[int | None, Field(ge=3, le=6, description=(
        "zero-carbon factory: the star level that requires the item"))] = None

    @model_validator(mode="after")
    def _evidenced(self) -> ChecklistItem:
        if self.status in ("met", "partly") and not self.evidence.strip():
            raise _at(("evidence",), f"required when the status is {self.status}: the document "
                                                "that shows it")
        return self


class StarLevel(_Strict):
    """The thresholds of one zero-carbon factory level, as data with where they come from."""

    stars: Annotated[int, Field(ge=3, le=6)]
    renewable_share_min: Annotated[float | None, Field(ge=0, le=1)] = None
    offset_share_min: Annotated[float | None, Field(ge=0, le=1, description=(
        "credits and removals ÷ the residual Scope 1 + 2"))] = None
    carbon_per_tce_max: Annotated[float | None, Field(ge=0, description="tCO2e per tce")] = None
    source: Source
    verified: Annotated[bool, Field(description="false: not published in full; the source says where the "
                                                "value was taken from")] = False


class ZeroCarbonEvaluation(_Strict):
    type: Annotated[Literal["I"], Field(description=(
        "Type I (Scope 1 + 2); Type II adds transport and purchased products, which Lingtan does "
        "not hold"))] = "I"
    levels: Annotated[list[StarLevel] | None, Field(description=(
        "default: the shipped levels (docs/domain.md), 6★ as published, 3★–5★ marked unverified"))] = None
    checklist: list[ChecklistItem] = []

    @model_validator(mode="after")
    def _levels_once(self) -> ZeroCarbonEvaluation:
        stars = [lv.stars for lv in self.levels or []]
        for i, s in enumerate(stars):
            if s in stars[:i]:
                raise _at(("levels", i, "stars"), f"{s}★ is listed twice")
        return self


class GreenFactoryIndicator(_Strict):
    indicator: Indicator
    baseline: Annotated[float, Field(allow_inf_nan=False, description="基准值: scores 0")]
    leading: Annotated[float, Field(allow_inf_nan=False, description="引领值: scores full marks")]
    weight: Annotated[float, Field(gt=0, le=1)]
    source: Source

    @model_validator(mode="after")
    def _apart(self) -> GreenFactoryIndicator:
        if self.baseline == self.leading:
            raise _at(("leading",), "must differ from the baseline value (the score runs between them)")
        return self


class GreenFactoryEvaluation(_Strict):
    indicators: list[GreenFactoryIndicator] = []
    checklist: list[ChecklistItem] = []

    @model_validator(mode="after")
    def _once(self) -> GreenFactoryEvaluation:
        names = [i.indicator for i in self.indicators]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise _at(("indicators", i, "indicator"), f"{n} is listed twice")
        return self


class CloudIndicator(_Strict):
    indicator: Indicator
    weight: Annotated[float, Field(gt=0, le=1)]
    intervals: Annotated[list[tuple[float | None, float | None]], Field(description=(
        "one [low, high] per grade, in the grades' order, in the indicator's unit; null for an open end"))]


class CloudEvaluation(_Strict):
    grades: Annotated[list[Annotated[str, Field(min_length=1, max_length=20)]], Field(
        min_length=2, description="best first, e.g. S, A, B, C, D")]
    he: Annotated[float, Field(ge=0, description="hyper-entropy of the grade clouds")] = 0.02
    period: Annotated[Literal["month", "year"], Field(description=(
        "month: the last whole months before now; year: the calendar years up to the one evaluated "
        "(entered or metered), e.g. for a plant whose metering is younger than a year"))] = "month"
    periods: Annotated[int, Field(ge=2, le=36, description="how many periods the indicator clouds are "
                                                           "built from")] = 12
    indicators: Annotated[list[CloudIndicator], Field(min_length=1)]
    source: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _shape(self) -> CloudEvaluation:
        for i, ind in enumerate(self.indicators):
            if len(ind.intervals) != len(self.grades):
                raise _at(("indicators", i, "intervals"), (
                    f"{ind.indicator}: one interval per grade ({len(self.grades)}), "
                    f"got {len(ind.intervals)}"))
            for k, (lo, hi) in enumerate(ind.intervals):
                if lo is not None and hi is not None and hi <= lo:
                    raise _at(("indicators", i, "intervals", k), f"{ind.indicator}, grade "
                                                                              f"{self.grades[k]}: high must "
                                                                              "be above low")
        total = sum(ind.weight for ind in self.indicators)
        if abs(total - 1.0) > 1e-9:
            raise _at(("indicators",), f"the weights add up to {total:g}, not 1")
        return self


class Evaluations(_Strict):
    zero_carbon: ZeroCarbonEvaluation = ZeroCarbonEvaluation()
    green_factory: GreenFactoryEvaluation = GreenFactoryEvaluation()
    cloud: CloudEvaluation | None = None


class ZeroCarbonProgramme(_Strict):
    """The four site-file sections, stored together as one document per site."""

    programme: Programme = Programme()
    targets: list[Target] = []
    offsets: list[Offset] = []
    evaluations: Evaluations = Evaluations()


def check_programme(z: ZeroCarbonProgramme, green_power: list[GreenPurchase] | None = None) -> None:
    """What needs more than one section: target ids once, a base year for every target, the
    offset register. Raises ``ProgrammeError`` with a loc from the top of the site file."""
    ids: dict[str, int] = {}
    for i, t in enumerate(z.targets):
        if t.id in ids:
            raise ProgrammeError(("targets", i, "id"), f"{t.id!r} is already targets[{ids[t.id]}]")
        ids[t.id] = i
        base = t.base_year or z.programme.base_year
        if base is None:
            raise ProgrammeError(("targets", i, "base_year"), "required: the programme names no base_year")
        if t.target_year <= base:
            raise ProgrammeError(("targets", i, "target_year"), f"must be after the base year {base}")
        if t.per == "floor_area" and z.programme.floor_area_m2 is None:
            raise ProgrammeError(("targets", i, "per"), "per floor_area needs programme.floor_area_m2")
    try:
        check_offsets(z.offsets, green_power)
    except ProgrammeError as exc:
        raise ProgrammeError(("offsets", *exc.loc), exc.message) from None
