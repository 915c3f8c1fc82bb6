"""Compressor specific power against GB 19153-2019, and load ratio (DOMAIN.md).

Specific power is electrical kW per m³/min of free air delivered. The standard grades a
machine at full load, so the graded figure uses only minutes in which the compressor was
loaded the whole minute; the overall figure (all running time, unload losses included) is
what the air system really costs and is reported next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lingtan.core.site_schema import CompressorSpec

GB19153_SOURCE = ("GB 19153-2019 Minimum allowable values of energy efficiency and energy efficiency "
                  "grades for displacement air compressors, oil-injected screw, fixed speed, air-cooled "
                  "(values as transcribed in DOMAIN.md, to be verified against the standard)")

# (rated kW, discharge pressure MPa) -> specific power limits kW/(m³/min) for grades 1, 2, 3
GB19153: dict[tuple[float, float], tuple[float, float, float]] = {
    (37.0, 0.7): (6.2, 6.7, 7.4),
    (75.0, 0.7): (5.9, 6.4, 7.0),
    (75.0, 0.8): (6.3, 6.8, 7.5),
}


@dataclass(frozen=True)
class Grade:
    grade: int | None  # 1 best; None = worse than grade 3 (below the minimum allowable value)
    limits: tuple[float, float, float]
    source: str = GB19153_SOURCE


def grade_limits(spec: CompressorSpec) -> tuple[float, float, float] | None:
    """The table row for the machine, or None when the library has no row for it."""
    if spec.kind != "oil_injected_screw" or spec.speed != "fixed" or spec.cooling != "air":
        return None
    return GB19153.get((round(spec.rated_kw, 1), round(spec.pressure_mpa, 2)))


def grade(specific_power: float, limits: tuple[float, float, float]) -> Grade:
    for i, limit in enumerate(limits, start=1):
        if specific_power <= limit:
            return Grade(i, limits)
    return Grade(None, limits)


def load_ratio(loaded_h: float, running_h: float) -> float | None:
    """Loaded time ÷ running time (DOMAIN.md)."""
    return loaded_h / running_h if running_h > 0 else None
