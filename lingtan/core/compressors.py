"""Compressor specific power against GB 19153-2019, and load ratio (docs/domain.md).

Specific power is electrical kW per m³/min of free air delivered. The standard grades a
machine at full load, so the graded figure uses only minutes in which the compressor was
loaded the whole minute; the overall figure (all running time, unload losses included) is
what the air system really costs and is reported next to it.

Which row of the standard's table governs a machine (docs/domain.md "Compressor grading"):

- power: the table row whose rated input power is nearest the machine's (on a ratio scale, so
  40 kW sits with 37 kW and not with 45 kW; a tie goes to the smaller row, the more lenient one);
- pressure: the column of the rated discharge pressure band the machine falls in, i.e. the
  lowest tabled pressure not below its rated pressure (a 0.75 MPa machine is graded in the
  0.8 MPa column, a 0.65 MPa one in the 0.7 MPa column); above the highest column, no grade;
- the governing row's limits are used as they stand. Nothing is interpolated between rows: the
  standard gives a value per row, and a value between two rows would be one it does not state.

Variable-speed machines are not graded: GB 19153-2019 grades them by a weighted specific power
over test points at 25/50/70/100 % of rated flow measured to GB/T 3853, which metering a machine
at whatever load it ran cannot reproduce.

The limits are data with a source. The library holds the rows transcribed in docs/domain.md; a
site can enter the row for its own machine (``CompressorSpec.gb19153_limits``) with the source it
took it from, and that row governs that machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lingtan.core.site_schema import CompressorSpec

GB19153 = "GB 19153-2019 Minimum allowable values of energy efficiency and energy efficiency grades for " \
          "displacement air compressors"
GB19153_SOURCE = (f"{GB19153}, oil-injected rotary, fixed speed, air-cooled (values as transcribed in "
                  "docs/domain.md, to be verified against the standard)")

# Rated input powers (kW) of the table rows for oil-injected rotary compressors, the standard
# motor ratings of its 1.5–630 kW scope. They place a machine in its row; they carry no limit.
ROW_POWERS_KW: tuple[float, ...] = (
    1.5, 2.2, 3, 4, 5.5, 7.5, 11, 15, 18.5, 22, 30, 37, 45, 55, 75, 90, 110, 132, 160, 200, 250, 315,
    355, 400, 450, 500, 560, 630)
PRESSURE_COLUMNS_MPA: tuple[float, ...] = (0.7, 0.8, 1.0, 1.25)


@dataclass(frozen=True)
class Row:
    rated_kw: float
    pressure_mpa: float
    limits: tuple[float, float, float]  # specific power kW/(m³/min) for grades 1, 2, 3
    source: str


# (kind, speed, cooling) -> rows of the library
TABLE: dict[tuple[str, str, str], tuple[Row, ...]] = {
    ("oil_injected_screw", "fixed", "air"): (
        Row(37.0, 0.7, (6.2, 6.7, 7.4), GB19153_SOURCE),
        Row(75.0, 0.7, (5.9, 6.4, 7.0), GB19153_SOURCE),
        Row(75.0, 0.8, (6.3, 6.8, 7.5), GB19153_SOURCE),
    ),
}


@dataclass(frozen=True)
class Lookup:
    """The governing row for a machine, or why there is none."""

    row: Row | None
    band_kw: float | None
    band_mpa: float | None
    reason: str = ""

    @property
    def band(self) -> str:
        return f"{self.band_kw:g} kW, {self.band_mpa:g} MPa" if self.band_kw and self.band_mpa else ""


@dataclass(frozen=True)
class Grade:
    grade: int | None  # 1 best; None = worse than grade 3 (below the minimum allowable value)
    limits: tuple[float, float, float]
    source: str = GB19153_SOURCE


def power_band(rated_kw: float) -> float:
    return min(ROW_POWERS_KW, key=lambda p: (abs(math.log(rated_kw / p)), p))


def pressure_band(pressure_mpa: float) -> float | None:
    return next((c for c in PRESSURE_COLUMNS_MPA if pressure_mpa <= c + 1e-9), None)


def lookup(spec: CompressorSpec) -> Lookup:
    machine = f"{spec.rated_kw:g} kW at {spec.pressure_mpa:g} MPa ({spec.speed} speed, {spec.cooling}-cooled)"
    if spec.speed == "variable":
        return Lookup(None, None, None, (
            f"{machine}: not graded; GB 19153-2019 grades variable-speed machines by a weighted specific "
            "power over test points at 25/50/70/100 % of rated flow (GB/T 3853), which metering the "
            "machine at the load it happened to run cannot reproduce"))
    kw, mpa = power_band(spec.rated_kw), pressure_band(spec.pressure_mpa)
    if mpa is None:
        return Lookup(None, kw, None, (
            f"{machine}: not graded; above the highest pressure column of the table "
            f"({PRESSURE_COLUMNS_MPA[-1]:g} MPa)"))
    if spec.gb19153_limits is not None:
        own = spec.gb19153_limits
        return Lookup(Row(kw, mpa, (own.grade_1, own.grade_2, own.grade_3), own.source), kw, mpa)
    rows = TABLE.get((spec.kind, spec.speed, spec.cooling), ())
    row = next((r for r in rows if r.rated_kw == kw and r.pressure_mpa == mpa), None)
    if row is None:
        return Lookup(None, kw, mpa, (
            f"{machine}: graded in the {kw:g} kW row, {mpa:g} MPa column, but the library has no "
            f"GB 19153-2019 row for it (only the rows transcribed in docs/domain.md ship); enter the row's "
            "limits and their source in params.compressor.gb19153_limits"))
    return Lookup(row, kw, mpa)


def grade_limits(spec: CompressorSpec) -> tuple[float, float, float] | None:
    """The governing row's limits for the machine, or None when it is not graded."""
    found = lookup(spec).row
    return found.limits if found is not None else None


def grade(specific_power: float, limits: tuple[float, float, float], source: str = GB19153_SOURCE) -> Grade:
    for i, limit in enumerate(limits, start=1):
        if specific_power <= limit:
            return Grade(i, limits, source)
    return Grade(None, limits, source)


def load_ratio(loaded_h: float, running_h: float) -> float | None:
    """Loaded time ÷ running time (docs/domain.md)."""
    return loaded_h / running_h if running_h > 0 else None
