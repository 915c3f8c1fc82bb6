"""Compressor 1's retrofit to variable speed (docs/domain.md "Compressed air", the VFD model): the
drive on its own, the plant before and after the retrofit day, and the demo's history around it."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.buffer import DiskBuffer
from lingtan.cli.demo import BASELINE_DAYS, DemoError, backfill_history, gateway_config
from lingtan.kernel.settings import Settings
from simulators import statefile
from simulators.models.compressor import (
    LOADED,
    OFF,
    UNLOADED,
    AirSystemState,
    CompressorSpec,
    CompressorState,
    VfdSpec,
    step_air_system,
    vfd_power_kw,
)
from simulators.site import (
    COMPRESSOR_1,
    COMPRESSORS,
    COMPRESSORS_RETROFITTED,
    LINE,
    RETROFIT_SERIES,
    SiteModel,
    local_day,
    local_midnight,
)

SUNDAY = date(2026, 6, 14)
MONDAY = date(2026, 6, 15)
VFD = VfdSpec(setpoint_bar=7.3)


def _comp(state: int) -> CompressorState:
    return CompressorState(state=state, unloaded_s=0.0, temperature_c=80.0, running_h=0.0, loaded_h=0.0,
                           energy_kwh=0.0)


# --- the drive on its own -------------------------------------------------------------------


def test_the_drive_holds_its_setpoint_and_its_power_follows_its_speed() -> None:
    """A 20 m³/min machine on the line's ~14 m³/min runs at ~70 % speed. Power at speed s and
    pressure p: 75 × (1 + 0.06 (p − 7)) × (0.10 + 0.90 s) ÷ 0.97; at 14 m³/min and 7.3 bar that is
    75 × 1.018 × 0.73 ÷ 0.97 = 57.46 kW, against 0.7 × 75 + 0.3 × 0.27 × 75 = 58.58 kW for the same
    air by load/unload (at the band's mean pressure, 7.0 bar)."""
    spec = CompressorSpec("c", rated_kw=75.0, fad_m3min=20.0, unload_bar=7.5, load_bar=6.5,
                          restart_bar=6.3, vfd=VFD)
    assert vfd_power_kw(spec, VFD, 7.3, 14.0) == pytest.approx(57.46, abs=0.01)
    c, air = _comp(OFF), AirSystemState(rng=random.Random(1), pressure_bar=7.0, demand_noise=0.0)
    for k in range(3600):
        step_air_system((spec,), (c,), air, True, 1)
        if k < 60:
            continue
        assert c.state == LOADED
        assert air.pressure_bar == pytest.approx(7.3, abs=1e-9)
        assert c.air_flow_m3min == pytest.approx(air.demand_m3min, rel=1e-9)
        speed = c.air_flow_m3min / 20.0
        assert c.power_kw == pytest.approx(75.0 * (1 + 0.06 * 0.3) * (0.10 + 0.90 * speed) / 0.97, rel=1e-9)
    assert c.loaded_h == c.running_h  # running is delivering: a drive never idles unloaded


def test_below_its_minimum_speed_the_drive_cycles_between_minimum_speed_and_stopped() -> None:
    """Leaks only (~2.2 m³/min) is below 20 % of 13 m³/min = 2.6 m³/min: the machine runs at
    minimum speed up to 7.5 bar, stops, and restarts below 7.3 bar. Its energy per m³ is that of
    minimum speed, 75 × (1 + 0.06 (p − 7)) × 0.28 ÷ 0.97 ÷ (2.6 × 60) kWh/m³: 0.1413 at 7.3 bar,
    0.1429 at 7.5 bar, 0.1421 at the mean 7.4 bar."""
    spec = COMPRESSORS_RETROFITTED[0]
    c, air = _comp(UNLOADED), AirSystemState(rng=random.Random(2), pressure_bar=7.0, demand_noise=0.0)
    states, pressures = set(), []
    energy0, delivered = c.energy_kwh, 0.0
    for _ in range(6 * 3600):
        step_air_system((spec,), (c,), air, False, 1)
        states.add(c.state)
        pressures.append(air.pressure_bar)
        delivered += c.air_flow_m3min / 60.0
        assert c.air_flow_m3min == 0.0 or 2.6 <= c.air_flow_m3min <= 13.0
    assert states == {LOADED, OFF}
    assert min(pressures[600:]) > 7.28 and max(pressures) < 7.52
    per_m3 = (c.energy_kwh - energy0) / delivered
    assert 75 * 1.018 * 0.28 / 0.97 / 156 < per_m3 < 75 * 1.030 * 0.28 / 0.97 / 156
    assert per_m3 == pytest.approx(0.1421, abs=0.0004)


# --- the plant before and after -------------------------------------------------------------


@dataclass
class Day:
    c1_kwh: float
    c1_m3: float  # free air compressor 1 delivered
    air_m3: float  # free air both compressors delivered
    production: float


def _day(seed: int, day: date, retrofit: datetime | None, step: int = 60) -> Day:
    start = local_midnight(day)
    m = SiteModel(seed, start, retrofit=retrofit)
    c1, c2 = m.compressors
    e0, p0, c1_m3, air_m3 = c1.energy_kwh, m.line.count, 0.0, 0.0
    while m.now < start + timedelta(days=1):
        m.advance_to(m.now + timedelta(seconds=step), max_step=step)
        c1_m3 += c1.air_flow_m3min * step / 60.0
        air_m3 += (c1.air_flow_m3min + c2.air_flow_m3min) * step / 60.0
    return Day(c1.energy_kwh - e0, c1_m3, air_m3, m.line.count - p0)


def test_on_a_sunday_compressor_1_uses_a_third_less_energy_per_m3_for_the_same_air() -> None:
    """Sunday: the line stands, the plant draws leaks only, d̄ ≈ 2.2 m³/min, all from compressor 1.

    Fixed speed, load/unload, 13 m³/min, loaded ≈ 75 kW (the 6.5–7.5 bar band's mean is 7.0 bar),
    unloaded 0.27 × 75 = 20.25 kW, loaded a share d̄/13 of the time:
        P_fixed = d̄/13 × 75 + (1 − d̄/13) × 20.25 = 12.69 + 16.82 = 29.52 kW at d̄ = 2.2
                → 708.4 kWh/day, 29.52 ÷ (2.2 × 60) = 0.2236 kWh/m³.
    Variable speed: 2.2 is below the minimum 0.2 × 13 = 2.6 m³/min, so the drive runs at minimum
    speed (pressure 7.3–7.5 bar, mean 7.4) a share d̄/2.6 of the time and is stopped otherwise:
        P(min) = 75 × (1 + 0.06 × 0.4) × (0.10 + 0.90 × 0.2) ÷ 0.97 = 22.17 kW
        P_vfd = d̄/2.6 × 22.17 = 18.76 kW → 450.2 kWh/day, 22.17 ÷ (2.6 × 60) = 0.1421 kWh/m³.
    Saving: 258.2 kWh/day, 36.5 %. The expectations below use the day's measured d̄.
    """
    fixed, vfd = _day(5, SUNDAY, None), _day(5, SUNDAY, local_midnight(SUNDAY))
    assert fixed.production == vfd.production == 0.0
    assert vfd.air_m3 == pytest.approx(fixed.air_m3, rel=0.005)  # the same demand met
    assert fixed.c1_m3 == pytest.approx(fixed.air_m3) and vfd.c1_m3 == pytest.approx(vfd.air_m3)

    d = fixed.c1_m3 / 1440.0
    assert d == pytest.approx(2.2, rel=0.02)
    p_fixed = d / 13 * 75 + (1 - d / 13) * 0.27 * 75
    p_min = 75 * (1 + 0.06 * 0.4) * (0.10 + 0.90 * 0.2) / 0.97
    assert p_min == pytest.approx(22.17, abs=0.01)
    assert fixed.c1_kwh / fixed.c1_m3 == pytest.approx(p_fixed / (60 * d), rel=0.01)
    assert vfd.c1_kwh / vfd.c1_m3 == pytest.approx(p_min / (2.6 * 60), rel=0.01)
    assert fixed.c1_kwh == pytest.approx(24 * p_fixed, rel=0.01)
    saving = fixed.c1_kwh - vfd.c1_kwh
    assert saving == pytest.approx(24 * (p_fixed - d / 2.6 * p_min), rel=0.03)
    assert saving / fixed.c1_kwh == pytest.approx(0.365, abs=0.01)


def test_on_a_working_day_the_same_production_costs_compressor_1_less() -> None:
    """Monday: the line runs ~16 h (two shifts less stoppages), demanding ~14 m³/min, more than
    compressor 1's 13: it runs flat out either way, the lag machine trims, and the pressure swings
    in the lag's 6.2–7.2 bar band (mean 6.7). The drive then costs its own losses,
        75 × (1 − 0.06 × 0.3) × (1/0.97 − 1) = 73.65 × 0.0309 = 2.28 kW,
    and saves off shift what the Sunday test works out, 29.52 − 18.76 = 10.76 kW. With the line's
    running hours H = production ÷ 2400 (40 pieces a minute):
        saving ≈ 10.76 × (24 − H) − 2.28 × H ≈ 53 kWh/day at H = 15.6 h,
    to within the stoppages' transients this leaves out.
    """
    fixed, vfd = _day(5, MONDAY, None), _day(5, MONDAY, local_midnight(MONDAY))
    assert vfd.production == fixed.production > 30_000  # the same production, to the piece
    assert vfd.air_m3 == pytest.approx(fixed.air_m3, rel=0.005)
    hours = fixed.production / 2400
    expected = 10.76 * (24 - hours) - 2.28 * hours
    saving = fixed.c1_kwh - vfd.c1_kwh
    assert saving == pytest.approx(expected, abs=8.0)
    assert 0.03 < saving / fixed.c1_kwh < 0.05
    assert vfd.c1_kwh / vfd.production < fixed.c1_kwh / fixed.production


def test_the_retrofit_switches_at_its_instant_and_nothing_before_it_changes() -> None:
    start = local_midnight(SUNDAY)
    retrofit = start + timedelta(hours=5, seconds=7)
    plain, retro = SiteModel(3, start), SiteModel(3, start, retrofit=retrofit)
    assert retro.compressor_specs == COMPRESSORS and retro.retrofit == retrofit
    plain.advance_to(retrofit, max_step=300)
    steps = retro.advance_to(retrofit + timedelta(seconds=593), max_step=300)
    # 18007 s to the retrofit in steps of 300 (60 whole, one of 7), then 593 s (300 + 293)
    assert steps == 60 + 1 + 2
    assert retro.compressor_specs == COMPRESSORS_RETROFITTED
    again = SiteModel(3, start, retrofit=retrofit)
    again.advance_to(retrofit, max_step=300)
    a, b = plain.to_dict(), again.to_dict()
    assert b.pop("retrofit_us") is not None and a.pop("retrofit_us") is None
    assert a == b  # up to the retrofit, the plant is the plant without it

    resumed = SiteModel.from_dict(json.loads(json.dumps(retro.to_dict())))
    assert resumed.retrofit == retrofit
    for m in (retro, resumed):
        m.advance_to(retrofit + timedelta(hours=2))
    assert resumed.to_dict() == retro.to_dict()

    with pytest.raises(ValueError, match="retrofit must be timezone-aware"):
        SiteModel(3, start, retrofit=datetime(2026, 6, 14))


# --- the demo's history ---------------------------------------------------------------------


def _backfill(tmp_path: Path, now: datetime, **settings: object) -> tuple[list[tuple], SiteModel]:
    s = Settings(data_dir=tmp_path, sim_seed=7, **settings)
    config = gateway_config(s, tmp_path)
    state = tmp_path / "sim-state.json"
    written = backfill_history(s, config, state, now=now)
    buffer = DiskBuffer(tmp_path / "buffer.db")
    try:
        _, rows = buffer.peek_rows(written + 1)
    finally:
        buffer.close()
    assert len(rows) == written
    return rows, statefile.load(state)


def test_the_first_start_backfills_eight_weeks_before_the_retrofit_and_four_after(tmp_path: Path) -> None:
    now = datetime(2026, 12, 6, 6, 30, 12, 500_000, tzinfo=UTC)  # 14:30 local, Sunday 6 December
    rows, model = _backfill(tmp_path, now)
    day = date(2026, 11, 8)  # 28 days before the local day of the first start
    assert local_day(now) - day == timedelta(days=28)
    assert model.retrofit == local_midnight(day) and model.now == now.replace(microsecond=0)

    recent = now.replace(microsecond=0) - timedelta(hours=24)
    by_series: dict[tuple[str, str], list[datetime]] = {}
    for t, meter, quantity, _, _ in rows:
        by_series.setdefault((meter, quantity), []).append(t)
    for key in RETROFIT_SERIES:
        times = by_series[key]
        assert times[0] == local_midnight(day - timedelta(days=BASELINE_DAYS))
        assert times == sorted(set(times))
        older = [t for t in times if t < recent]
        assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(older))
        assert recent - older[-1] <= timedelta(minutes=15)
        assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times[len(older):]))
    # everything else: the last 24 h only, as before
    assert all(min(times) == recent for key, times in by_series.items() if key not in RETROFIT_SERIES)
    assert (COMPRESSOR_1, "active_power") in by_series and (LINE, "production_count") in by_series

    # the counters run on without a jump from the 15-min part into the 1-min part
    energy = sorted((t, v) for t, m, q, v, _ in rows if (m, q) == (COMPRESSOR_1, "active_energy_import"))
    steps = [(b[1] - a[1]) / ((b[0] - a[0]).total_seconds() / 3600) for a, b in itertools.pairwise(energy)]
    assert min(steps) >= 0.0 and max(steps) < 1.5 * 75  # no pair a rated-power check would refuse


def test_a_configured_retrofit_day_is_used_and_a_far_one_refused(tmp_path: Path) -> None:
    now = datetime(2026, 12, 6, 6, 30, tzinfo=UTC)
    _, model = _backfill(tmp_path / "a", now, sim_retrofit_date=date(2026, 12, 1))
    assert model.retrofit == local_midnight(date(2026, 12, 1))
    with pytest.raises(DemoError, match="LINGTAN_SIM_RETROFIT_DATE 2025-11-01"):
        _backfill(tmp_path / "b", now, sim_retrofit_date=date(2025, 11, 1))
    assert not (tmp_path / "b" / "sim-state.json").exists()


def test_the_retrofit_day_is_a_local_midnight() -> None:
    assert local_midnight(date(2026, 11, 8)) == datetime(2026, 11, 7, 16, 0, tzinfo=UTC)
    assert local_day(datetime(2026, 11, 7, 16, 0, tzinfo=UTC)) == date(2026, 11, 8)
    assert local_day(datetime(2026, 11, 7, 15, 59, 59, tzinfo=UTC)) == date(2026, 11, 7)
