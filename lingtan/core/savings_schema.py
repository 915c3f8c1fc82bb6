"""Energy baselines (EnB) with their EnPIs, and retrofit projects measured against them (IPMVP M&V):
the site file's ``energy_baselines:`` and ``projects:`` sections (docs/domain.md, "Baselines and
savings"). Checked here: windows in order, variables named once with their source, the boundary
an IPMVP option allows, non-routine adjustments with their reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lingtan.core.located import LocatedError

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Carrier = Literal["electricity", "gas", "steam", "heat"]
Resolution = Literal["day", "week", "month"]


class SavingsError(LocatedError):
    """A savings problem at ``loc`` (a path from the top of the site file)."""


def _at(loc: tuple[str | int, ...], message: str) -> ValueError:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return ValueError(f"{path}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Window(_Strict):
    """Whole site-local days, both ends inclusive; an open end runs to now."""

    start: dt.date
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end is not None and self.end < self.start:
            raise _at(("end",), "must not be before start (both inclusive)")
        return self


class Boundary(_Strict):
    """What is measured: the whole site, a structure node, or meters (e.g. the retrofitted
    machine's own meter), for one carrier."""

    site: bool = False
    node: Id | None = None
    meters: list[Id] | None = None
    carrier: Carrier = "electricity"

    @model_validator(mode="after")
    def _one(self) -> Boundary:
        given = [k for k, v in (("site", self.site), ("node", self.node), ("meters", self.meters)) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of site: true, node or meters")
        if self.site and self.carrier not in ("electricity", "gas"):
            raise _at(("carrier",), "the whole site is measured for electricity (consumption) or gas")
        return self


class DayValue(_Strict):
    date: dt.date
    value: Annotated[float, Field(allow_inf_nan=False)]


class Variable(_Strict):
    """A relevant variable (ISO 50006): production from the site's production counter, heating or
    cooling degree days from a temperature meter or entered daily means, or a named value entered
    per day (e.g. shifts worked)."""

    name: Id
    source: Literal["production", "hdd", "cdd", "entered"]
    meter: Annotated[Id | None, Field(description="hdd/cdd: the outdoor temperature meter")] = None
    base_c: Annotated[float | None, Field(description="hdd/cdd: default 18 °C / 26 °C (JGJ 134)")] = None
    daily_means_c: Annotated[list[DayValue], Field(description=(
        "hdd/cdd without a meter: the daily mean outdoor temperature, °C"))] = []
    values: Annotated[list[DayValue], Field(description="entered: the value of each day")] = []

    @model_validator(mode="after")
    def _sourced(self) -> Variable:
        degree = self.source in ("hdd", "cdd")
        if degree and (self.meter is None) == (not self.daily_means_c):
            raise ValueError(f"{self.source}: give either meter or daily_means_c")
        if not degree and (self.meter is not None or self.base_c is not None or self.daily_means_c):
            raise ValueError("meter, base_c and daily_means_c apply only to hdd and cdd")
        if self.source == "entered" and not self.values:
            raise _at(("values",), "required for an entered variable: the value of each day")
        if self.source != "entered" and self.values:
            raise _at(("values",), "applies only to source: entered")
        return self


def _variables_once(variables: list[Variable]) -> None:
    names = [v.name for v in variables]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise _at(("variables", i, "name"), f"{n!r} is listed twice")


class EnergyBaseline(_Strict):
    """An energy baseline and its EnPI: energy regressed on the variables over the baseline period."""

    id: Id
    name: Annotated[str, Field(max_length=200)] = ""
    boundary: Boundary
    resolution: Resolution = "day"
    baseline: Window
    variables: Annotated[list[Variable], Field(min_length=1)]

    @model_validator(mode="after")
    def _checked(self) -> EnergyBaseline:
        if self.baseline.end is None:
            raise _at(("baseline", "end"), "required: a baseline period has an end")
        _variables_once(self.variables)
        return self


class Adjustment(_Strict):
    """A non-routine adjustment (IPMVP): a change outside the model, e.g. a line added, in the
    boundary carrier's unit; positive when it raised consumption."""

    start: dt.date
    end: dt.date
    energy: Annotated[float, Field(allow_inf_nan=False)]
    note: Annotated[str, Field(min_length=1, max_length=500)]


class Claimed(_Strict):
    """The savings the project was claimed to make, per year, with where the claim comes from."""

    energy_per_year: Annotated[float, Field(gt=0, allow_inf_nan=False, description="in the carrier's unit")]
    tce_per_year: Annotated[float | None, Field(gt=0)] = None
    tco2e_per_year: Annotated[float | None, Field(gt=0)] = None
    source: Annotated[str, Field(min_length=1, max_length=500)]


class Project(_Strict):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    option: Annotated[Literal["B", "C"], Field(description=(
        "IPMVP B: the retrofitted equipment's own meter (meters or a node); C: the whole facility"))]
    boundary: Boundary
    resolution: Resolution = "day"
    baseline: Window
    installation: Annotated[Window, Field(description="excluded from both periods")]
    reporting: Window
    variables: Annotated[list[Variable], Field(min_length=1)]
    static_factors: Annotated[list[Annotated[str, Field(min_length=1, max_length=300)]], Field(description=(
        "conditions held constant and what they were, e.g. \"operating pressure 0.7 MPa\""))] = []
    adjustments: list[Adjustment] = []
    confidence: Annotated[Literal[0.68, 0.8, 0.9, 0.95], Field(description=(
        "confidence level of the stated uncertainty"))] = 0.9
    claimed: Claimed | None = None

    @model_validator(mode="after")
    def _checked(self) -> Project:
        if self.option == "C" and not self.boundary.site:
            raise _at(("boundary",), "option C measures the whole facility: site: true")
        if self.option == "B" and self.boundary.site:
            raise _at(("boundary",), "option B measures the retrofitted equipment: its meters or node")
        if self.baseline.end is None:
            raise _at(("baseline", "end"), "required: a baseline period has an end")
        if self.installation.end is None:
            raise _at(("installation", "end"), "required: the installation period has an end")
        if not self.baseline.end < self.installation.start:
            raise _at(("installation", "start"), "must be after the baseline period ends")
        if not self.installation.end < self.reporting.start:
            raise _at(("reporting", "start"), "must be after the installation period ends")
        for i, a in enumerate(self.adjustments):
            if a.end < a.start or a.start < self.reporting.start or (
                    self.reporting.end is not None and a.end > self.reporting.end):
                raise _at(("adjustments", i), "must lie within the reporting period, start before end")
        _variables_once(self.variables)
        return self


class Savings(_Strict):
    energy_baselines: list[EnergyBaseline] = []
    projects: list[Project] = []

    @model_validator(mode="after")
    def _ids_once(self) -> Savings:
        for section, items in (("energy_baselines", self.energy_baselines), ("projects", self.projects)):
            ids = [x.id for x in items]
            for i, x in enumerate(ids):
                if x in ids[:i]:
                    raise _at((section, i, "id"), f"{x!r} is already {section}[{ids.index(x)}]")
        return self
