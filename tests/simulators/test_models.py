"""Each equipment model on its own: the physics and control rules it promises."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from simulators.models import distribution
from simulators.models.boiler import BoilerState, gas_flow_m3_h, step_boiler
from simulators.models.calendar import local_day_and_second
from simulators.models.compressor import (
    LOADED,
    OFF,
    UNLOADED,
    AirSystemState,
    CompressorSpec,
    CompressorState,
    loaded_power_kw,
    step_air_system,
)
from simulators.models.distribution import (
    CIRCUITS,
    DRIVERS,
    MAIN_FEEDERS,
    SUBMETERS,
    canteen_cooking,
    cooling_season,
    energies_kwh,
    load_kw,
    new_distribution_state,
    office_hours,
    power_kw,
    step_distribution,
)
from simulators.models.grid import GridState, step_grid
from simulators.models.heat_recovery import HeatRecoveryState, step_heat_recovery
from simulators.models.production import LineState, scheduled, step_line
from simulators.models.pv import ST_MPPT, ST_SLEEPING, PvSpec, PvState, clear_sky_ghi, step_pv
from simulators.site import COMPRESSORS, LINE_3, PV_SPEC


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC) - timedelta(hours=8)


# --- calendar ---------------------------------------------------------------------------

def test_local_calendar_is_shanghai() -> None:
    # 2026-06-14 is a Sunday; 23:30 UTC on the 13th is 07:30 on the 14th in Shenyang.
    assert local_day_and_second(_epoch(datetime(2026, 6, 13, 23, 30, tzinfo=UTC))) == (6, 7.5 * 3600)
    assert local_day_and_second(_epoch(_local(2026, 6, 15, 0, 0)))[0] == 0  # Monday


# --- PV -----------------------------------------------------------------------------------

def test_clear_sky_follows_the_sun_over_shenyang() -> None:
    summer = [clear_sky_ghi(PV_SPEC, _epoch(_local(2026, 6, 21, 0) + timedelta(minutes=m)))
              for m in range(0, 24 * 60, 5)]
    winter_noon = max(clear_sky_ghi(PV_SPEC, _epoch(_local(2026, 12, 21, 0) + timedelta(minutes=m)))
                      for m in range(0, 24 * 60, 5))
    assert summer[0] == 0.0 and summer[-1] == 0.0  # midnight
    peak = max(summer)
    assert 930 < peak < 1030  # zenith ≈ 18° at the solstice
    assert 330 < winter_noon < 470  # zenith ≈ 65°
    # Solar noon at 123.4°E is about 14 min before 12:00 Beijing time.
    peak_minute = summer.index(peak) * 5
    assert 11 * 60 + 30 <= peak_minute <= 12 * 60
    # Daylight from about 04:15 to 19:20 local in late June.
    lit = [i * 5 for i, g in enumerate(summer) if g > 0]
    assert 3 * 60 + 50 <= lit[0] <= 4 * 60 + 40
    assert 19 * 60 <= lit[-1] <= 19 * 60 + 50


def _clear_pv(spec: PvSpec) -> PvState:
    return PvState(rng=random.Random(1), cloud_cover=0.0, cloud_mean=0.0, dip_left_s=0.0,
                   dip_depth=0.0, energy_wh=0.0)


def test_pv_power_derate_cap_night_and_energy() -> None:
    noon = _epoch(_local(2026, 6, 21, 11, 45))
    st = _clear_pv(PV_SPEC)
    step_pv(PV_SPEC, st, noon, 1)
    expected = 400 * st.irradiance_wm2 / 1000 * 0.85
    assert st.power_kw == pytest.approx(expected)
    assert 300 < st.power_kw < 360 and st.status == ST_MPPT
    assert st.energy_wh == pytest.approx(st.power_kw * 1000 / 3600)

    big = PvSpec(latitude_deg=41.8, longitude_deg=123.4, kwp=1000.0)
    st = _clear_pv(big)
    step_pv(big, st, noon, 1)
    assert st.power_kw == 360.0  # inverter limit

    st = _clear_pv(PV_SPEC)
    step_pv(PV_SPEC, st, _epoch(_local(2026, 6, 21, 1)), 60)
    assert (st.power_kw, st.energy_wh, st.status) == (0.0, 0.0, ST_SLEEPING)


def test_passing_clouds_vary_over_minutes_and_are_seeded() -> None:
    t0 = _epoch(_local(2026, 6, 21, 10))

    def trace(seed: int) -> list[float]:
        st = PvState(rng=random.Random(seed), cloud_cover=0.3, cloud_mean=0.3, dip_left_s=0.0,
                     dip_depth=0.0, energy_wh=0.0)
        out = []
        for s in range(3 * 3600):
            step_pv(PV_SPEC, st, t0 + s, 1)
            out.append(st.power_kw)
        return out

    a = trace(1)
    assert a == trace(1)
    assert a != trace(2)
    assert min(a) < 0.7 * max(a), "a passing cloud dims the array"
    # Minute-to-minute changes are mostly small: clouds drift, they do not flicker.
    jumps = [abs(a[i + 1] - a[i]) for i in range(len(a) - 1)]
    assert sorted(jumps)[len(jumps) // 2] < 2.0


# --- compressors --------------------------------------------------------------------------

def _comp(state: int) -> CompressorState:
    return CompressorState(state=state, unloaded_s=0.0, temperature_c=80.0, running_h=0.0,
                           loaded_h=0.0, energy_kwh=0.0)


def _air(pressure: float, seed: int = 1) -> AirSystemState:
    return AirSystemState(rng=random.Random(seed), pressure_bar=pressure, demand_noise=0.0)


LEAD_ONLY = (COMPRESSORS[0],)


def test_load_unload_band_and_power_levels() -> None:
    spec = COMPRESSORS[0]
    c, air = _comp(LOADED), _air(7.0)
    pressures, states = [], []
    for _ in range(3600):  # idle plant: leaks only
        step_air_system(LEAD_ONLY, (c,), air, False, 1)
        pressures.append(air.pressure_bar)
        states.append(c.state)
        if c.state == LOADED:
            assert c.power_kw == pytest.approx(loaded_power_kw(spec, air.pressure_bar), rel=0.01)
            assert c.power_kw == pytest.approx(75.0, rel=0.05)
            assert c.air_flow_m3min == 13.0
        elif c.state == UNLOADED:
            assert c.power_kw == pytest.approx(0.27 * 75.0)
            assert c.air_flow_m3min == 0.0
    assert min(pressures) > 6.4 and max(pressures) < 7.6
    assert LOADED in states and UNLOADED in states
    assert c.loaded_h < c.running_h == pytest.approx(1.0)


def test_motor_stops_after_ten_minutes_unloaded_and_restarts_below_band() -> None:
    spec = CompressorSpec("c", rated_kw=75.0, fad_m3min=13.0, unload_bar=7.5, load_bar=6.5,
                          restart_bar=6.3)
    c, air = _comp(UNLOADED), _air(7.6)
    # Hold the pressure up (no consumers reach the receiver): the motor idles, then stops.
    seen = []
    for _ in range(700):
        air.pressure_bar = 7.0
        step_air_system((spec,), (c,), air, False, 1)
        seen.append(c.state)
    assert seen[598] == UNLOADED and c.state == OFF
    assert c.power_kw == 0.0
    # Off, it tolerates the normal reload point and restarts only below restart_bar.
    air.pressure_bar = 6.4
    step_air_system((spec,), (c,), air, False, 0)
    assert c.state == OFF
    air.pressure_bar = 6.29
    step_air_system((spec,), (c,), air, False, 1)
    assert c.state == LOADED and c.power_kw > 70


def test_lag_compressor_helps_only_when_the_lead_cannot_keep_up() -> None:
    lead, lag, air = _comp(LOADED), _comp(OFF), _air(7.0)
    for _ in range(3600):  # night: leaks only
        step_air_system(COMPRESSORS, (lead, lag), air, False, 1)
    assert lag.state == OFF and lag.running_h == 0.0
    for _ in range(3600):  # line running: ~14 m³/min, more than the lead's 13
        step_air_system(COMPRESSORS, (lead, lag), air, True, 1)
    assert lag.loaded_h > 0.0
    assert lead.loaded_h > 0.9  # the lead stays loaded nearly all the time
    assert 5.9 < air.pressure_bar < 7.6


def test_discharge_temperature_is_plausible() -> None:
    c, air = _comp(OFF), _air(7.0)
    c.temperature_c = 20.0
    air.pressure_bar = 6.0
    for _ in range(900):
        air.pressure_bar = min(air.pressure_bar, 7.0)
        step_air_system(LEAD_ONLY, (c,), air, True, 1)
    assert 75 < c.temperature_c < 95


# --- boiler and heat recovery -------------------------------------------------------------

def test_gas_flow_formula() -> None:
    full = 2000 * (2763 - 84) / (0.92 * 38931)
    assert gas_flow_m3_h(2.0, 0.0) == pytest.approx(full)
    assert gas_flow_m3_h(2.0, 56.0) == pytest.approx(full - 56 * 3600 / (0.92 * 38931))
    assert gas_flow_m3_h(0.1, 10_000.0) == 0.0  # never negative


def test_steam_demand_is_smooth_and_follows_the_line() -> None:
    st = BoilerState(rng=random.Random(1), steam_smooth_t_h=0.6, steam_noise=0.0,
                     gas_volume_m3=0.0, steam_mass_t=0.0)
    flows = []
    for _ in range(3 * 3600):
        step_boiler(st, True, 50.0, 1)
        flows.append(st.steam_flow_t_h)
    assert flows[60] < 0.8  # no step change when the line starts
    assert 1.8 < flows[-1] < 2.2
    assert st.steam_mass_t == pytest.approx(sum(flows) / 3600)


def test_heat_meter_flow_and_temperatures() -> None:
    st = HeatRecoveryState(rng=random.Random(1), noise=0.0, return_c=38.0, supply_c=38.0,
                           heat_energy_gj=0.0, water_volume_m3=0.0)
    for _ in range(600):
        step_heat_recovery(st, 75.0, 1)
        assert 0.98 * 0.75 * 75 <= st.heat_kw <= 1.02 * 0.75 * 75
        assert st.flow_m3_h == pytest.approx(st.heat_kw / (4.186 * 10) * 3.6)
        assert st.supply_c - st.return_c == pytest.approx(10.0)
    step_heat_recovery(st, 0.0, 60)
    assert st.heat_kw == 0.0 and st.flow_m3_h == 0.0
    assert st.return_c < st.supply_c < st.return_c + 10.0  # cooling without circulation


# --- production line ----------------------------------------------------------------------

@pytest.mark.parametrize(("weekday", "hour", "expected"), [
    (0, 7.99, False), (0, 8.0, True), (2, 16.0, True), (4, 23.99, True), (5, 12.0, True),
    (6, 12.0, False), (1, 0.5, False),
])
def test_two_shifts_monday_to_saturday(weekday: int, hour: float, expected: bool) -> None:
    assert scheduled(weekday, hour * 3600) is expected


def test_a_one_shift_line_stops_at_four_and_idles_at_its_own_power() -> None:
    st = LineState(rng=random.Random(3), count=0.0, rate_noise=0.0, stop_left_s=0.0)
    step_line(st, 1, 15.9 * 3600, 1, LINE_3)
    assert st.running or st.stop_left_s > 0
    step_line(st, 1, 16 * 3600, 1, LINE_3)
    assert not st.running and st.power_kw == LINE_3.idle_kw == 12.0


def test_line_rate_power_and_count() -> None:
    st = LineState(rng=random.Random(3), count=100.0, rate_noise=0.0, stop_left_s=0.0)
    rates, powers = [], []
    for _ in range(8 * 3600):
        step_line(st, 1, 12 * 3600, 1)
        if st.running:
            rates.append(st.rate_per_min)
            powers.append(st.power_kw)
        else:
            assert st.power_kw == 15.0 and st.rate_per_min == 0.0
    assert sum(rates) / len(rates) == pytest.approx(40, rel=0.03)
    assert sum(powers) / len(powers) == pytest.approx(150, rel=0.03)
    assert st.count - 100.0 == pytest.approx(sum(rates) / 60)
    step_line(st, 6, 12 * 3600, 1)  # Sunday
    assert not st.running


# --- grid ---------------------------------------------------------------------------------

def test_grid_signs_and_counters() -> None:
    st = GridState(rng=random.Random(1), import_kwh=10.0, export_kwh=5.0, v_noise=[0.0] * 3,
                   hz_noise=0.0, pf_noise=0.0)
    step_grid(st, 216.0, 0.0, 3600)
    assert st.power_kw == 216.0 and st.load_kw == 216.0 and st.export_kwh == 5.0
    assert st.import_kwh == pytest.approx(10.0 + st.power_kw)
    step_grid(st, 60.0, 300.0, 3600)
    assert st.power_kw < 0
    assert st.export_kwh == pytest.approx(5.0 - st.power_kw)
    for i in range(3):
        assert st.current_a[i] == pytest.approx(-st.power_kw * 1000 / 3 / (st.voltage_v[i] * st.power_factor))


# --- distribution ---------------------------------------------------------------------------

def test_every_feeder_draws_a_little_more_than_its_sub_meters_whatever_the_drivers() -> None:
    """Coefficient by coefficient a feeder's row is ≥ the sum of its children's, and drivers are
    never negative: so parent ≥ Σ children at every instant, hence over any period."""
    rows = {c.meter: distribution._full(c.meter) for c in CIRCUITS}
    feeders = [c for c in CIRCUITS if c.children]
    assert {f.meter for f in feeders} >= set(MAIN_FEEDERS)
    for f in feeders:
        kids = [sum(rows[k][j] for k in f.children) for j in range(len(DRIVERS))]
        assert all(p >= k for p, k in zip(rows[f.meter], kids, strict=True)), f.meter
        assert 0 < f.loss_share <= 0.015 and rows[f.meter][0] > kids[0], f.meter  # losses and idle loads
    # every circuit hangs under exactly one main feeder
    hung = [k for c in CIRCUITS for k in c.children]
    assert len(hung) == len(set(hung)) and set(hung) | set(MAIN_FEEDERS) == {c.meter for c in CIRCUITS}
    assert len(SUBMETERS) >= 30 and set(SUBMETERS).isdisjoint({"compressor-1", "compressor-2"})


def test_calendars_of_the_building_loads() -> None:
    assert office_hours(0, 3 * 3600) == 0.0 and office_hours(2, 12 * 3600) == 1.0
    assert 0.0 < office_hours(4, 6.75 * 3600) < 1.0
    assert office_hours(5, 12 * 3600) == 0.0  # the offices close at weekends, the workshops do not
    assert canteen_cooking(5, 11 * 3600) and not canteen_cooking(6, 11 * 3600)
    assert not canteen_cooking(1, 14 * 3600)

    def day(y: int, m: int, d: int) -> int:
        return int(datetime(y, m, d, tzinfo=UTC).timestamp() // 86400)

    assert cooling_season(day(2026, 7, 24)) == pytest.approx(1.0, abs=0.01)
    assert cooling_season(day(2026, 1, 15)) == 0.0 and cooling_season(day(2026, 11, 1)) == 0.0


def test_sub_meter_counters_integrate_their_power_and_the_incomer_adds_losses() -> None:
    st = new_distribution_state(random.Random(1), random.Random(2))
    start = energies_kwh(st)
    assert all(2e4 <= e <= 4e5 for e in start)
    integrated = [0.0] * len(SUBMETERS)
    epoch = datetime(2026, 7, 21, 2, tzinfo=UTC).timestamp()  # Tuesday 10:00 local
    for k in range(600):
        step_distribution(st, epoch_s=epoch + k * 6, weekday=1, second_of_day=36000.0 + k * 6,
                          lines_above_idle_kw=(130.0, 60.0, 90.0), compressors_kw=(77.0, 10.0),
                          air_m3min=14.0, firing=0.5, irradiance_wm2=600.0, dt=6)
        for i, m in enumerate(SUBMETERS):
            integrated[i] += power_kw(st, m) * 6 / 3600
    for i, e in enumerate(energies_kwh(st)):
        assert e - start[i] == pytest.approx(integrated[i], rel=1e-9), SUBMETERS[i]
    feeders = sum(power_kw(st, m) for m in MAIN_FEEDERS)
    assert st.feeders_kw == pytest.approx(feeders)
    assert st.losses_kw == pytest.approx(distribution.MAIN_LOSS_PER_KW * feeders ** 2)
    assert st.unmetered_kw == pytest.approx(0.8)  # daylight: the gatehouse only
    assert 0.01 < (load_kw(st) - feeders) / load_kw(st) < 0.04
    assert 500 < feeders < 800  # both workshops busy, summer air conditioning
