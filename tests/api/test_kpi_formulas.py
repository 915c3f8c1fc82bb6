"""KPI building blocks against hand-worked examples (docs/domain.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lingtan.core import boilers, compressors
from lingtan.core.site_schema import CompressorSpec
from lingtan.kernel import periods


def test_gb19153_grades_for_the_tabled_machines():
    spec = CompressorSpec(rated_kw=75, pressure_mpa=0.7)
    limits = compressors.grade_limits(spec)
    assert limits == (5.9, 6.4, 7.0)
    assert compressors.grade(5.9, limits).grade == 1   # on the limit is inside the grade
    assert compressors.grade(6.0, limits).grade == 2
    assert compressors.grade(7.0, limits).grade == 3
    assert compressors.grade(7.01, limits).grade is None  # below the minimum allowable value
    assert compressors.grade_limits(CompressorSpec(rated_kw=37, pressure_mpa=0.7)) == (6.2, 6.7, 7.4)
    assert compressors.grade_limits(CompressorSpec(rated_kw=75, pressure_mpa=0.8)) == (6.3, 6.8, 7.5)


def test_no_grade_is_invented_for_a_machine_the_table_lacks():
    assert compressors.grade_limits(CompressorSpec(rated_kw=55, pressure_mpa=0.7)) is None
    assert compressors.grade_limits(CompressorSpec(rated_kw=75, pressure_mpa=0.7, speed="variable")) is None


def test_load_ratio_is_loaded_over_running_time():
    assert compressors.load_ratio(6.0, 8.0) == pytest.approx(0.75)
    assert compressors.load_ratio(0.0, 0.0) is None


def test_steam_enthalpy_table_and_interpolation():
    assert boilers.steam_enthalpy(0.7) == 2763.0
    assert boilers.steam_enthalpy(1.0) == 2777.0
    # halfway between 0.7 (2763) and 1.0 (2777) MPa
    assert boilers.steam_enthalpy(0.85) == pytest.approx(2770.0)
    assert boilers.steam_enthalpy(2.0) is None  # no extrapolation
    assert boilers.water_enthalpy(20.0) == pytest.approx(84.0, abs=0.5)


def test_boiler_efficiency_direct_method_worked_example():
    # 10 t of 0.7 MPa steam from 20 °C water: 10 × (2763 − 84) MJ = 26.79 GJ of useful heat.
    # Gas 750 m³ × 38.931 MJ/m³ = 29.198 GJ in → efficiency 0.9175.
    eff = boilers.efficiency(10.0, 2763.0, 84.0, 750 * 389.31 / 1e4)
    assert eff == pytest.approx(26.79 / 29.198, rel=1e-4)
    assert boilers.gb24500_grade(eff) is None  # below grade 3 (92 %)
    assert boilers.gb24500_grade(0.95) == 2
    # Feedwater preheated by 2 GJ of recovered heat: the burner only supplied 24.79 GJ of it.
    assert boilers.efficiency(10.0, 2763.0, 84.0, 29.198, preheat_gj=2.0) == pytest.approx(24.79 / 29.198)
    assert boilers.efficiency(1.0, 2763.0, 84.0, 0.0) is None


def test_calendar_periods_are_local():
    a, b = periods.calendar("month", date(2026, 11, 21), "Asia/Shanghai")
    assert a == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert b == datetime(2026, 11, 30, 16, tzinfo=UTC)
    a, b = periods.calendar("year", date(2026, 2, 1), "Asia/Shanghai")
    assert (a, b) == (datetime(2025, 12, 31, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
    a, b = periods.calendar("day", date(2026, 3, 29), "Europe/Berlin")  # 23-hour day (DST)
    assert (b - a).total_seconds() == 23 * 3600
    with pytest.raises(periods.PeriodError) as err:
        periods.calendar("week", date(2026, 1, 1), "Asia/Shanghai")
    assert err.value.field == "period"


def test_windows_split_at_local_new_year_for_their_factors():
    start = datetime(2025, 12, 20, tzinfo=UTC)
    end = datetime(2026, 1, 10, tzinfo=UTC)
    pieces = periods.split_by_year(start, end, "Asia/Shanghai")
    new_year = datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert pieces == [(2025, start, new_year), (2026, new_year, end)]
    assert periods.split_by_year(start, new_year, "Asia/Shanghai") == [(2025, start, new_year)]
