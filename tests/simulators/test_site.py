"""Whole-plant consistency: counters integrate what the plant reports, and runs repeat exactly."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from simulators.models.boiler import gas_flow_m3_h
from simulators.models.distribution import BY_METER, MAIN_FEEDERS
from simulators.site import DEVICE_IDS, LINE_1, SNAPSHOT_VERSION, SUBMETERS, SiteModel

# Saturday 05:00–11:00 in Shenyang: dawn, the line starting at 08:00, PV exporting early on.
SATURDAY_DAWN = datetime(2026, 6, 12, 21, 0, tzinfo=UTC)
WINDOW_S = 6 * 3600

COUNTERS = {
    # counter: (rate quantity on the same device, counter units per (rate unit × second))
    ("pv-inverter", "active_energy_export"): (("pv-inverter", "active_power"), 1 / 3600),
    ("compressor-1", "active_energy_import"): (("compressor-1", "active_power"), 1 / 3600),
    ("compressor-2", "active_energy_import"): (("compressor-2", "active_power"), 1 / 3600),
    ("boiler", "gas_volume"): (("boiler", "gas_flow"), 1 / 3600),
    ("boiler", "steam_mass"): (("boiler", "steam_flow"), 1 / 3600),
    ("heat-recovery", "heat_energy"): (("heat-recovery", "heat_power"), 1e-6),
    **{(m, "active_energy_import"): ((m, "active_power"), 1 / 3600) for m in SUBMETERS},
}


@dataclass
class Run:
    first: dict[tuple[str, str], float]
    last: dict[tuple[str, str], float]
    integrals: dict[tuple[str, str], float]
    series: dict[str, list[float]]
    balances: list[dict[str, float]]
    samples: list[dict[tuple[str, str], float]]


@pytest.fixture(scope="module")
def run() -> Run:
    """Step a 6-h window second by second, integrating what truth() reports."""
    model = SiteModel(seed=11, start=SATURDAY_DAWN)
    first = model.truth()
    integrals: dict[tuple[str, str], float] = defaultdict(float)
    series: dict[str, list[float]] = defaultdict(list)
    balances: list[dict[str, float]] = []
    samples: list[dict[tuple[str, str], float]] = []
    for k in range(1, WINDOW_S + 1):
        model.advance_to(SATURDAY_DAWN + timedelta(seconds=k))
        t = model.truth()
        for counter, (rate, factor) in COUNTERS.items():
            integrals[counter] += t[rate] * factor
        g = t[("grid-incomer", "active_power")]
        integrals[("grid", "import")] += max(g, 0.0) / 3600
        integrals[("grid", "export")] += max(-g, 0.0) / 3600
        integrals[("heat-recovery", "volume")] += (
            t[("heat-recovery", "heat_power")] / (4.186 * 10) * 3.6 / 3600)
        for name in ("compressor-1", "compressor-2"):
            state = t[(name, "state")]
            integrals[(name, "running")] += (state in (1.0, 2.0)) / 3600
            integrals[(name, "loaded")] += (state == 2.0) / 3600
        series["grid"].append(g)
        series["line_state"].append(t[("line-1", "state")])
        series["pv"].append(t[("pv-inverter", "active_power")])
        series["pressure"].append(t[("compressor-1", "air_pressure")])
        series["c2_state"].append(t[("compressor-2", "state")])
        series["rate"].append(model.line.rate_per_min)
        balances.append(model.balance())
        if k % 600 == 0:
            samples.append(t)
    return Run(first, model.truth(), dict(integrals), dict(series), balances, samples)


def test_truth_covers_every_device_in_canonical_quantities(run: Run) -> None:
    first = run.first
    devices = {d for d, _ in first}
    assert devices == set(DEVICE_IDS)
    from lingtan.kernel.quantities import QUANTITIES

    assert {q for _, q in first} <= set(QUANTITIES)
    assert all(isinstance(v, float) for v in first.values())


def test_counters_integrate_their_rates(run: Run) -> None:
    first, last, integrals = run.first, run.last, run.integrals
    for counter in COUNTERS:
        delta = last[counter] - first[counter]
        assert delta == pytest.approx(integrals[counter], rel=1e-9, abs=1e-9), counter
    for name in ("compressor-1", "compressor-2"):
        assert last[(name, "running_hours")] - first[(name, "running_hours")] == pytest.approx(
            integrals[(name, "running")], abs=1e-6)
        assert last[(name, "loaded_hours")] - first[(name, "loaded_hours")] == pytest.approx(
            integrals[(name, "loaded")], abs=1e-6)
    dv = last[("heat-recovery", "water_volume")] - first[("heat-recovery", "water_volume")]
    assert dv == pytest.approx(integrals[("heat-recovery", "volume")], rel=1e-9)


def test_production_counter_counts_the_rate(run: Run) -> None:
    first, last, series = run.first, run.last, run.series
    made = last[("line-1", "production_count")] - first[("line-1", "production_count")]
    assert made == pytest.approx(sum(series["rate"]) / 60, abs=1.0)
    # 3 h of running at ~40/min, less any stoppage.
    assert 5000 < made < 7700


def test_grid_import_minus_export_is_load_minus_pv(run: Run) -> None:
    first, last, series, balances, integrals = (run.first, run.last, run.series, run.balances,
                                                run.integrals)
    d_imp = last[("grid-incomer", "active_energy_import")] - first[("grid-incomer", "active_energy_import")]
    d_exp = last[("grid-incomer", "active_energy_export")] - first[("grid-incomer", "active_energy_export")]
    assert d_imp == pytest.approx(integrals[("grid", "import")], rel=1e-9)
    assert d_exp == pytest.approx(integrals[("grid", "export")], rel=1e-9)
    assert d_imp - d_exp == pytest.approx(
        sum(b["load_kw"] - b["pv_kw"] for b in balances) / 3600, rel=1e-9)
    assert d_exp > 0, "the window should include some export"
    assert min(series["grid"]) < 0 < max(series["grid"])
    for b in balances:
        assert b["load_kw"] == pytest.approx(b["feeders_kw"] + b["losses_kw"] + b["unmetered_kw"])
        assert b["grid_kw"] == pytest.approx(b["load_kw"] - b["pv_kw"])
        assert 0 < b["losses_kw"] + b["unmetered_kw"] < 0.08 * b["load_kw"]


def test_feeders_add_up_what_their_meters_report(run: Run) -> None:
    """The incomer's load is the main feeders plus losses; each feeder a little more than its
    sub-meters; line 1's stations add up to what its PLC reports."""
    for t, b in zip(run.samples, run.balances[599::600], strict=True):
        assert b["feeders_kw"] == pytest.approx(sum(t[(m, "active_power")] for m in MAIN_FEEDERS))
        for m in SUBMETERS:
            children = BY_METER[m].children
            if children:
                kids = sum(t[(k, "active_power")] for k in children)
                assert kids < t[(m, "active_power")] < 1.05 * kids + 1.0, m
        stations = sum(t[(m, "active_power")] for m in BY_METER["l1-main"].children)
        assert stations == pytest.approx(t[("line-1", "active_power")])
        assert t[("line-1", "active_power")] >= LINE_1.idle_kw


def test_recovered_heat_is_three_quarters_of_compressor_1(run: Run) -> None:
    first, last = run.first, run.last
    heat_gj = last[("heat-recovery", "heat_energy")] - first[("heat-recovery", "heat_energy")]
    elec_kwh = (last[("compressor-1", "active_energy_import")]
                - first[("compressor-1", "active_energy_import")])
    assert heat_gj / (elec_kwh * 0.0036) == pytest.approx(0.75, rel=0.02)


def test_boiler_gas_follows_steam_and_recovered_heat(run: Run) -> None:
    for t in run.samples:
        steam = t[("boiler", "steam_flow")]
        heat = t[("heat-recovery", "heat_power")]
        expected = (steam * 1000 * (2763 - 84) - heat * 3600) / (0.92 * 38931)
        assert t[("boiler", "gas_flow")] == pytest.approx(expected, rel=1e-12)
        assert t[("boiler", "gas_flow")] == gas_flow_m3_h(steam, heat)


def test_plant_behaves_like_a_plant(run: Run) -> None:
    series, samples = run.series, run.samples
    assert series["pv"][0] < 30  # 05:00, just after sunrise
    assert max(series["pv"]) > 100
    assert series["line_state"][0] == 0.0 and series["line_state"][-1] == 1.0  # starts at 08:00
    assert min(series["pressure"]) > 5.5 and max(series["pressure"]) < 7.7
    assert 2.0 in series["c2_state"], "the lag compressor helps while the line runs"
    for t in samples:
        assert 225 < t[("grid-incomer", "voltage")] < 236
        assert 49.98 <= t[("grid-incomer", "frequency")] <= 50.02
        assert 0.93 <= t[("grid-incomer", "power_factor")] <= 0.97
        v, pf = t[("grid-incomer", "voltage")], t[("grid-incomer", "power_factor")]
        i = abs(t[("grid-incomer", "active_power")]) * 1000 / 3 / (v * pf)
        assert t[("grid-incomer", "current")] == pytest.approx(i)


def test_counters_start_plausible_and_seeded() -> None:
    a = SiteModel(1, SATURDAY_DAWN).truth()
    b = SiteModel(2, SATURDAY_DAWN).truth()
    assert 1e6 <= a[("grid-incomer", "active_energy_import")] <= 1.5e6
    assert a[("grid-incomer", "active_energy_import")] != b[("grid-incomer", "active_energy_import")]
    for key in [("compressor-1", "running_hours"), ("boiler", "gas_volume"),
                ("heat-recovery", "heat_energy"), ("line-1", "production_count"),
                ("pv-inverter", "active_energy_export")]:
        assert a[key] > 0
    assert a[("compressor-1", "loaded_hours")] < a[("compressor-1", "running_hours")]


def test_same_seed_same_trajectory_whatever_the_call_pattern() -> None:
    start = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    a, b, c = SiteModel(5, start), SiteModel(5, start), SiteModel(6, start)
    end = start + timedelta(hours=2)
    a.advance_to(end)
    t = start
    while t < end:  # uneven, fractional targets
        t = min(t + timedelta(seconds=37.3), end)
        b.advance_to(t)
    c.advance_to(end)
    assert a.now == b.now == end
    assert a.to_dict() == b.to_dict()
    assert a.truth() == b.truth()
    assert c.truth() != a.truth()


def test_snapshot_resumes_bit_identically() -> None:
    start = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    a = SiteModel(5, start)
    a.advance_to(start + timedelta(minutes=45))
    b = SiteModel.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.now == a.now and b.start == start
    for m in (a, b):
        m.advance_to(start + timedelta(hours=2))
    assert a.to_dict() == b.to_dict()
    assert a.truth() == b.truth()


def test_a_snapshot_from_before_the_sub_meters_resumes_with_them() -> None:
    """A demo started before version 2 keeps its plant counters; the sub-meters start counting."""
    a = SiteModel(5, SATURDAY_DAWN)
    a.advance_to(SATURDAY_DAWN + timedelta(minutes=30))
    old = a.to_dict()
    for key in ("line_2", "line_3", "distribution"):
        del old[key]
    old["version"] = 1
    old["grid"].update(base_noise=0.01, base_kw=40.0, aux_kw=12.0)  # fields version 1 had
    b = SiteModel.from_dict(json.loads(json.dumps(old)))
    before, after = a.truth(), b.truth()
    for key in [("grid-incomer", "active_energy_import"), ("boiler", "gas_volume"),
                ("line-1", "production_count"), ("compressor-1", "active_energy_import")]:
        assert after[key] == before[key]
    assert all(after[(m, "active_power")] > 0 for m in SUBMETERS)
    b.advance_to(b.now + timedelta(minutes=5))
    assert b.to_dict()["version"] == SNAPSHOT_VERSION and b.retrofit is None


def test_snapshot_of_another_site_is_refused() -> None:
    data = SiteModel(5, SATURDAY_DAWN).to_dict()
    data["site"] = "elsewhere"
    with pytest.raises(ValueError, match="demo-plant"):
        SiteModel.from_dict(data)


def test_coarse_steps_stay_close_to_fine_steps() -> None:
    start = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)  # a Tuesday, local midnight
    fine, coarse = SiteModel(3, start), SiteModel(3, start)
    end = start + timedelta(days=1)
    steps_fine = fine.advance_to(end)
    steps_coarse = coarse.advance_to(end, max_step=60)
    assert (steps_fine, steps_coarse) == (86400, 1440)
    assert coarse.now == end
    f0, f, c = SiteModel(3, start).truth(), fine.truth(), coarse.truth()

    def delta(t: dict[tuple[str, str], float], *keys: tuple[str, str]) -> float:
        return sum(t[k] - f0[k] for k in keys)

    # Coarse steps draw the noise differently, so they are another realisation of the
    # same day: totals agree closely, weather-driven PV only roughly.
    for keys, rel in [
        ((("compressor-1", "active_energy_import"), ("compressor-2", "active_energy_import")), 0.05),
        ((("boiler", "gas_volume"),), 0.05),
        ((("line-1", "production_count"),), 0.05),
        ((("grid-incomer", "active_energy_import"),), 0.1),
        ((("pv-inverter", "active_energy_export"),), 0.2),
    ]:
        assert delta(c, *keys) == pytest.approx(delta(f, *keys), rel=rel), keys


def test_advance_rejects_the_past_and_naive_times() -> None:
    m = SiteModel(1, SATURDAY_DAWN)
    m.advance_to(SATURDAY_DAWN + timedelta(seconds=10))
    with pytest.raises(ValueError, match="back in time"):
        m.advance_to(SATURDAY_DAWN)
    with pytest.raises(ValueError, match="timezone-aware"):
        SiteModel(1, datetime(2026, 1, 1))
    before = m.now
    m.advance_to(before + timedelta(milliseconds=999))
    assert m.now == before  # sub-second remainders wait for the next call
