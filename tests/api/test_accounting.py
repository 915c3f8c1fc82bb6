"""Accounting rules of the KPI engine, each against a hand-worked figure (docs/domain.md).

Readings go in through the gateway's PostgreSQL sink and the rollup refresher; every window
and every "now" is pinned, so no result depends on the hour the tests run at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lingtan.kernel.clock import frozen
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

TZ = "Asia/Shanghai"
REL = 1e-9


def local(text: str) -> datetime:
    """A Shenyang wall-clock time as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).astimezone(UTC)


@dataclass
class Ramp:
    """One counter read every minute for ``minutes`` from ``start``, rising evenly by ``amount``.

    Ramps of the same counter continue from where the previous one ended; between them the
    counter stands still, so nothing is counted across the pause.
    """

    meter: str
    quantity: str
    start: datetime
    minutes: int
    amount: float


def seed(url: str, site_file: dict[str, Any], ramps: list[Ramp]) -> None:
    from lingtan.core.site_model import import_site_file

    with get_engine(url).begin() as conn:
        import_site_file(conn, site_file)
    totals: dict[tuple[str, str], float] = {}
    rows: list[Reading] = []
    for r in sorted(ramps, key=lambda r: r.start):
        base = totals.get((r.meter, r.quantity), 1000.0)  # field counters never start at zero
        for i in range(r.minutes + 1):
            rows.append(Reading(r.start + timedelta(minutes=i), r.meter, r.quantity,
                                base + r.amount * i / r.minutes))
        totals[(r.meter, r.quantity)] = base + r.amount
    store_readings(url, rows)


def site(site_id: str, meters: list[dict[str, Any]], energy: dict[str, Any] | None = None,
         green_power: list[dict[str, Any]] | None = None, region: str = "north_east") -> dict[str, Any]:
    return {"site": {"id": site_id, "name": site_id, "timezone": TZ, "grid_region": region},
            "energy": energy or {}, "meters": meters, "green_power": green_power or []}


def kpis(url: str, site_id: str, start: datetime, end: datetime, now: datetime | None = None):
    from lingtan.core.kpi import window_kpis

    with get_engine(url).connect() as conn:
        return window_kpis(conn, site_id, start, end, now or end + timedelta(days=400))


GRID = {"id": "grid", "role": "grid_import"}
PV = {"id": "pv", "role": "pv_generation"}


# --- 7: a role the site does not have is not a gap ---------------------------------------------


def test_a_grid_meter_without_an_export_register_is_not_a_gap(db: str) -> None:
    day = local("2026-03-02T00:00:00")
    # A whole day read every minute (from an hour before, so its first minute has a pair): 100 kWh/h
    # = 2400 kWh from a grid meter that has no export register, and no grid_export meter at all.
    # Nothing is missing from this day.
    seed(db, site("no-export", [GRID]),
         [Ramp("grid", "active_energy_import", day - timedelta(hours=1), 25 * 60, 2500.0)])
    k = kpis(db, "no-export", day, day + timedelta(days=1))
    e = k.electricity
    assert e.consumption_kwh.value == pytest.approx(2400.0, rel=REL)
    # before: the export side had one meter without data → coverage 0 for everything built on it
    assert e.grid_export_kwh.coverage == 1.0
    assert e.consumption_kwh.coverage == pytest.approx(1.0)
    assert e.green_power_ratio.coverage == pytest.approx(1.0)
    assert k.carbon.intensity_location_kg_per_kwh.coverage == pytest.approx(1.0)
    assert k.energy.tce_total.coverage == pytest.approx(1.0)


# --- 8 and 10: Scope 1+2, and Scope 2 on gross and net bases ----------------------------------

GAS = {"id": "gas", "role": "boiler_fuel", "params": {"fuel": "natural_gas"}}


def _import_export_site(db: str) -> None:
    march, april = local("2026-03-10T10:00:00"), local("2026-04-10T10:00:00")
    seed(db, site("nets", [GRID, PV, GAS], green_power=[
        {"kind": "trade", "period_start": "2026-03-01", "period_end": "2026-04-01", "kwh": 200.0}]), [
        Ramp("grid", "active_energy_import", march, 60, 1000.0),
        Ramp("grid", "active_energy_export", march, 60, 300.0),
        Ramp("pv", "active_energy_export", march, 60, 500.0),
        Ramp("gas", "gas_volume", march, 60, 100.0),
        # April: the site exports more than it imports
        Ramp("grid", "active_energy_import", april, 60, 100.0),
        Ramp("grid", "active_energy_export", april, 60, 400.0),
        Ramp("pv", "active_energy_export", april, 60, 600.0),
        Ramp("gas", "gas_volume", april, 60, 0.0),
    ])


def test_scope_2_gross_and_net_and_scope_1_plus_2(db: str) -> None:
    _import_export_site(db)
    c = kpis(db, "nets", local("2026-03-01T00:00:00"), local("2026-04-01T00:00:00")).carbon
    # Scope 1: 100 m³ × 21.62 tCO2/10⁴Nm³ = 0.2162 t
    assert c.scope1_t.value == pytest.approx(0.2162, rel=REL)
    # gross: 1000 kWh × 0.5122 = 0.5122 t; market (1000 − 200 traded) × 0.6096 = 0.48768 t
    assert c.scope2_location_t.value == pytest.approx(0.5122, rel=REL)
    assert c.scope2_market_t.value == pytest.approx(0.48768, rel=REL)
    # net purchased 1000 − 300 = 700 kWh: × 0.5122 = 0.35854 t; market (700 − 200) × 0.6096 = 0.3048 t
    assert c.scope2_location_net_t.value == pytest.approx(0.35854, rel=REL)
    assert c.scope2_market_net_t.value == pytest.approx(0.3048, rel=REL)
    # Scope 1+2: 0.2162 + 0.5122 = 0.7284; 0.2162 + 0.48768 = 0.70388; net 0.57474 and 0.521
    assert c.scope12_location_t.value == pytest.approx(0.7284, rel=REL)
    assert c.scope12_market_t.value == pytest.approx(0.70388, rel=REL)
    assert c.scope12_location_net_t.value == pytest.approx(0.57474, rel=REL)
    assert c.scope12_market_net_t.value == pytest.approx(0.521, rel=REL)
    assert c.scope12_location_t.coverage == min(c.scope1_t.coverage, c.scope2_location_t.coverage)
    assert "GB/T 32150" in c.scope2_bases["scope2_location_net_t"]
    assert c.scope2_bases["scope2_location_t"].startswith("gross")

    april = kpis(db, "nets", local("2026-04-01T00:00:00"), local("2026-05-01T00:00:00")).carbon
    # net purchased 100 − 400 = −300 kWh: exported electricity is subtracted (GB/T 32150), so
    # −300 × 0.5122 = −0.15366 t and −300 × 0.6096 = −0.18288 t; gross stays 100 kWh × factor
    assert april.scope2_location_net_t.value == pytest.approx(-0.15366, rel=REL)
    assert april.scope2_market_net_t.value == pytest.approx(-0.18288, rel=REL)
    assert april.scope2_location_t.value == pytest.approx(0.05122, rel=REL)


def test_the_inventory_names_the_basis_of_every_scope_2_figure(db: str, api_client) -> None:
    _import_export_site(db)
    r = api_client.get("/api/v1/sites/nets/reports/ghg-inventory", params={"date": "2026-03-15"})
    assert r.status_code == 200, r.text
    t = r.json()["totals"]
    assert t["scope12_location_t"]["value"] == pytest.approx(0.7284, rel=REL)
    assert t["scope12_market_t"]["value"] == pytest.approx(0.70388, rel=REL)
    assert t["scope2_location_net_t"]["value"] == pytest.approx(0.35854, rel=REL)
    assert t["scope12_market_net_t"]["value"] == pytest.approx(0.521, rel=REL)
    assert set(t["bases"]) >= {"scope2_location_t", "scope2_market_t", "scope2_location_net_t",
                               "scope2_market_net_t"}
    k = api_client.get("/api/v1/sites/nets/kpis", params={"start": "2026-03-01T00:00:00+08:00",
                                                          "end": "2026-04-01T00:00:00+08:00"}).json()
    assert k["carbon"]["scope12_location_t"]["value"] == pytest.approx(0.7284, rel=REL)
    assert k["carbon"]["scope2_bases"]["scope2_market_net_t"].startswith("net purchased")
    csv_body = api_client.get("/api/v1/sites/nets/reports/ghg-inventory",
                              params={"date": "2026-03-15", "format": "csv"}).content.decode("utf-8-sig")
    for label in ("Scope 2, location-based, gross import", "Scope 2, market-based, net purchased",
                  "Scope 1+2, location-based, gross import"):
        assert label in csv_body


# --- 1: equal value (等价值) counts PV once ------------------------------------------------------


def test_equal_value_counts_net_purchased_electricity_and_pv_once(db: str) -> None:
    march, april = local("2026-03-10T10:00:00"), local("2026-04-10T10:00:00")
    seed(db, site("equal", [GRID, PV], energy={"electricity_equal_value_kgce_per_kwh": 0.28078}), [
        Ramp("grid", "active_energy_import", march, 60, 1000.0),
        Ramp("grid", "active_energy_export", march, 60, 100.0),
        Ramp("pv", "active_energy_export", march, 60, 300.0),
        Ramp("grid", "active_energy_import", april, 60, 100.0),
        Ramp("grid", "active_energy_export", april, 60, 400.0),
        Ramp("pv", "active_energy_export", april, 60, 600.0),
    ])
    e = kpis(db, "equal", local("2026-03-01T00:00:00"), local("2026-04-01T00:00:00")).energy
    # consumption 1000 − 100 + 300 = 1200 kWh; equivalent value: 1200 × 0.1229 = 147.48 kgce
    assert e.tce_total.value == pytest.approx(0.14748, rel=REL)
    # equal value: net purchased 1000 − 100 = 900 kWh × 0.28078 = 252.702 kgce, and the other
    # 300 kWh consumed (own PV) once, at the equivalent value: 300 × 0.1229 = 36.87 kgce.
    # Before: 1200 × 0.28078 + 200 × 0.1229 (PV self-consumed left in) = 361.516 kgce.
    assert e.tce_equal_value.value == pytest.approx(0.289572, rel=REL)
    apr = kpis(db, "equal", local("2026-04-01T00:00:00"), local("2026-05-01T00:00:00")).energy
    # a net exporter buys nothing net: its 100 − 400 + 600 = 300 kWh are all own PV, 36.87 kgce
    assert apr.tce_equal_value.value == pytest.approx(0.03687, rel=REL)


# --- 3: one natural-gas heating value and its reference conditions -----------------------------

BOILER = {"id": "boiler", "role": "boiler_fuel", "params": {
    "fuel": "natural_gas", "boiler_output": {"steam_pressure_mpa_abs": 0.7, "feedwater_c": 20}}}


def _boiler_site(site_id: str, energy: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Ramp]]:
    """A grid meter and a gas boiler (ids prefixed with the site's, so sites can share a database):
    100 kWh, 1000 m³ of gas and 12.5 t of 0.7 MPa steam from 20 °C feedwater in an hour."""
    t = local("2026-03-10T10:00:00")
    grid, boiler = f"{site_id}-grid", f"{site_id}-boiler"
    meters = [{**GRID, "id": grid}, {**BOILER, "id": boiler}]
    return site(site_id, meters, energy=energy), [
        Ramp(grid, "active_energy_import", t, 60, 100.0), Ramp(boiler, "gas_volume", t, 60, 1000.0),
        Ramp(boiler, "steam_mass", t, 60, 12.5)]


def test_one_gas_heating_value_and_its_reference_conditions_drive_co2_tce_and_efficiency(db: str) -> None:
    march = (local("2026-03-01T00:00:00"), local("2026-04-01T00:00:00"))
    # The MEE NCV 389.31 GJ/10⁴Nm³ is per m³ at 0 °C; this site's meters count m³ at 20 °C.
    seed(db, *_boiler_site("gas20", {
        "gas_ncv_gj_per_10k_m3": 389.31, "gas_ncv_reference_c": 0, "gas_volume_reference_c": 20}))
    k = kpis(db, "gas20", *march)
    # 1000 m³ at 20 °C = 1000 × 273.15/293.15 = 931.7755 Nm³
    gas = next(ln for ln in k.carbon.by_carrier if ln.carrier == "natural_gas")
    assert gas.amount == pytest.approx(931.7755415316, rel=REL)
    # CO2: 931.7755 Nm³ × 21.62 tCO2/10⁴Nm³ = 2.014499 t (before: 1000 × 21.62/10⁴ = 2.162)
    assert k.carbon.scope1_t.value == pytest.approx(2.0144987208, rel=REL)
    # tce from the same NCV: 931.7755 × 38.931 MJ ÷ 29.3076 MJ/kgce = 1237.73 kgce (before: 1000 m³ ×
    # 1.2143 kgce/m³, the GB/T 2589 gas-field value, i.e. 35.59 MJ/m³ — a second heating value)
    assert gas.tce == pytest.approx(1.2377319742, rel=REL)
    # efficiency: 12.5 t × (2763 − 4.186 × 20) kJ/kg = 33.491 GJ out ÷ (931.7755 × 38.931 MJ = 36.275 GJ)
    (b,) = k.boilers
    assert b.efficiency == pytest.approx(33.491 / 36.2749536074, rel=REL)
    assert any("273.15/293.15" in n and "20 °C" in n for n in k.notes)
    tce = next(f for f in k.factors if f.kind == "tce" and f.subject == "natural_gas")
    assert tce.value == pytest.approx(38.931 / 29.3076, rel=REL) and "29.3076" in tce.source

    # A site's own NCV, quoted per m³ at 20 °C like its meters: the emission factor per GJ stays the
    # MEE one (21.62 / 389.31 tCO2/GJ), so 1000 m³ × 36.0 MJ/m³ = 36 GJ × 21.62/389.31 = 1.999229 t,
    # and 36 GJ ÷ 29.3076 MJ/kgce = 1.228350 tce
    seed(db, *_boiler_site("own-ncv", {
        "gas_ncv_gj_per_10k_m3": 360.0, "gas_ncv_reference_c": 20, "gas_volume_reference_c": 20}))
    own = kpis(db, "own-ncv", *march)
    assert own.carbon.scope1_t.value == pytest.approx(1.9992294059, rel=REL)
    assert own.energy.tce_total.value - 100 * 0.1229 / 1000 == pytest.approx(1.2283503255, rel=REL)
    (b,) = own.boilers
    assert b.efficiency == pytest.approx(33.491 / 36.0, rel=REL)


def test_undeclared_gas_meter_conditions_are_said_not_assumed_silently(db: str) -> None:
    seed(db, *_boiler_site("gas-default"))
    k = kpis(db, "gas-default", local("2026-03-01T00:00:00"), local("2026-04-01T00:00:00"))
    # undeclared: metered m³ are taken as the NCV's Nm³ (0 °C), and the notes say so
    assert k.carbon.scope1_t.value == pytest.approx(2.162, rel=REL)
    assert any("gas_volume_reference_c" in n for n in k.notes)


# --- 4 and 2: heat recovery is declared before any saving is claimed ---------------------------


def _compressor_site(site_id: str, heat_recovery: dict[str, Any] | None) -> tuple[dict[str, Any], list[Ramp]]:
    """Two compressors, 800 and 500 kWh in an hour, and no heat meter."""
    t = local("2026-03-10T10:00:00")
    c1, c2, grid = f"{site_id}-c1", f"{site_id}-c2", f"{site_id}-grid"
    energy = {"gas_price_cny_per_m3": 3.6} | ({"heat_recovery": heat_recovery} if heat_recovery else {})
    meters = [{**GRID, "id": grid}, {"id": c1, "role": "compressor"}, {"id": c2, "role": "compressor"}]
    return site(site_id, meters, energy=energy), [
        Ramp(grid, "active_energy_import", t, 60, 2000.0), Ramp(c1, "active_energy_import", t, 60, 800.0),
        Ramp(c2, "active_energy_import", t, 60, 500.0)]


MARCH = (local("2026-03-01T00:00:00"), local("2026-04-01T00:00:00"))


def test_no_heat_recovery_declared_no_saving_claimed(db: str) -> None:
    seed(db, *_compressor_site("undeclared", None))
    w = kpis(db, "undeclared", *MARCH).waste_heat
    # before: 1300 kWh × 0.0036 × 0.75 = 3.51 GJ "estimated", and gas, CO2 and money saved with it
    assert w.basis == "none" and w.declared is False
    assert w.recovered_gj.value is None
    assert w.avoided_fuel.value is None and w.avoided_t_co2.value is None and w.saved_cny.value is None
    assert "not declared" in w.note and "energy.heat_recovery" in w.note


def test_declared_recovery_counts_only_its_compressors_and_what_it_displaces(db: str) -> None:
    seed(db, *_compressor_site("declared", {"compressors": ["declared-c1"], "use": "space_heating",
                                            "displaces": "purchased_heat"}))
    w = kpis(db, "declared", *MARCH).waste_heat
    # installed on c1 only: 800 kWh × 0.0036 GJ/kWh × 0.75 = 2.16 GJ (not 1300 kWh's 3.51 GJ)
    assert w.basis == "estimated" and w.declared and w.use == "space_heating"
    assert w.recovered_gj.value == pytest.approx(2.16, rel=REL)
    # it displaces purchased heat: 2.16 GJ × 0.11 tCO2/GJ = 0.2376 t; × 0.03412 tce/GJ = 0.0736992 tce
    assert w.displaces == "purchased_heat" and w.avoided_fuel.unit == "GJ"
    assert w.avoided_t_co2.value == pytest.approx(0.2376, rel=REL)
    assert w.avoided_tce.value == pytest.approx(0.0736992, rel=REL)


HEAT = {"id": "heat", "role": "heat_recovery"}


def _measured_boiler_site(site_id: str, energy: dict[str, Any]) -> tuple[dict[str, Any], list[Ramp]]:
    """A gas boiler (1000 m³ → 12.5 t of 0.7 MPa steam from 20 °C water) and 2 GJ recovered from a
    compressor, metered on the recovery loop."""
    t = local("2026-03-10T10:00:00")
    ids = {k: f"{site_id}-{k}" for k in ("grid", "boiler", "heat", "comp")}
    meters = [{**GRID, "id": ids["grid"]}, {**BOILER, "id": ids["boiler"]}, {**HEAT, "id": ids["heat"]},
              {"id": ids["comp"], "role": "compressor"}]
    energy = {"gas_price_cny_per_m3": 3.6, "boiler_efficiency": 0.92, **energy}
    energy["heat_recovery"] = {"compressors": [ids["comp"]], **energy["heat_recovery"]}
    return site(site_id, meters, energy=energy), [
        Ramp(ids["grid"], "active_energy_import", t, 60, 100.0),
        Ramp(ids["boiler"], "gas_volume", t, 60, 1000.0), Ramp(ids["boiler"], "steam_mass", t, 60, 12.5),
        Ramp(ids["heat"], "heat_energy", t, 60, 2.0), Ramp(ids["comp"], "active_energy_import", t, 60, 900.0)]


def test_only_heat_that_preheats_the_feedwater_comes_off_the_boilers_output(db: str) -> None:
    # useful heat 12.5 t × (2763 − 83.72) kJ/kg = 33.491 GJ; gas 1000 m³ × 38.931 MJ = 38.931 GJ
    seed(db, *_measured_boiler_site("showers", {"heat_recovery": {
        "use": "domestic_hot_water", "displaces": "boiler_fuel"}}))
    k = kpis(db, "showers", *MARCH)
    (b,) = k.boilers
    # the 2 GJ warmed shower water, not the feedwater: the boiler made all 33.491 GJ itself
    # (before: (33.491 − 2) ÷ 38.931 = 0.8089)
    assert b.efficiency == pytest.approx(33.491 / 38.931, rel=REL)
    # still a saving: gas the boiler would have burned for that water, 2 ÷ (0.92 × 0.038931) m³
    w = k.waste_heat
    assert w.basis == "measured" and w.use == "domestic_hot_water"
    assert w.avoided_fuel.value == pytest.approx(2 / (0.92 * 0.038931), rel=REL)

    seed(db, *_measured_boiler_site("feedwater", {"heat_recovery": {"use": "boiler_feedwater"}}))
    (b,) = kpis(db, "feedwater", *MARCH).boilers
    assert b.efficiency == pytest.approx((33.491 - 2.0) / 38.931, rel=REL)

    # meters at 20 °C: the avoided 2 ÷ (0.92 × 0.038931) = 55.8394 Nm³ are 55.8394 × 293.15/273.15
    # = 59.9279 metered m³, the m³ the gas price is paid per (× 3.6 CNY = 215.74 CNY)
    seed(db, *_measured_boiler_site("feedwater20", {"heat_recovery": {"use": "boiler_feedwater"},
                                                     "gas_volume_reference_c": 20}))
    w = kpis(db, "feedwater20", *MARCH).waste_heat
    nm3 = 2 / (0.92 * 0.038931)
    assert w.avoided_fuel.value == pytest.approx(nm3 * 293.15 / 273.15, rel=REL)
    assert w.saved_cny.value == pytest.approx(nm3 * 293.15 / 273.15 * 3.6, rel=REL)
    assert w.avoided_t_co2.value == pytest.approx(nm3 * 21.62 / 1e4, rel=REL)


def test_a_declaration_names_its_compressors_and_its_use(db: str) -> None:
    from lingtan.core.site_model import ModelError, import_site_file
    from lingtan.core.site_schema import HeatRecovery

    with pytest.raises(ValueError, match="compressors"):
        HeatRecovery(use="space_heating", displaces="boiler_fuel")
    with pytest.raises(ValueError, match="use"):
        HeatRecovery(compressors=["c1"])
    with pytest.raises(ValueError, match="displaces"):
        HeatRecovery(compressors=["c1"], use="space_heating")
    with pytest.raises(ValueError, match="feedwater"):
        HeatRecovery(compressors=["c1"], use="boiler_feedwater", displaces="purchased_heat")
    data, _ = _compressor_site("typo", {"compressors": ["typo-grid"], "use": "boiler_feedwater"})
    with get_engine(db).begin() as conn, pytest.raises(ModelError) as err:
        import_site_file(conn, data)
    assert err.value.loc == ("energy", "heat_recovery", "compressors", 0)
    assert "typo-grid" in err.value.message and "compressor" in err.value.message


# --- 5: green purchases for a period still running are spread by elapsed time ------------------


def test_a_running_purchase_is_allocated_by_elapsed_time_a_closed_one_by_consumption(db: str) -> None:
    from lingtan.core.series import kpi_series

    seed(db, site("yearly", [GRID], green_power=[
        {"kind": "trade", "period_start": "2025-01-01", "period_end": "2026-01-01", "kwh": 12_000.0}]), [
        Ramp("grid", "active_energy_import", local("2025-01-15T10:00:00"), 60, 10_000.0),
        Ramp("grid", "active_energy_import", local("2025-07-15T10:00:00"), 60, 20_000.0)])
    jan = (local("2025-01-01T00:00:00"), local("2025-02-01T00:00:00"))

    running = kpis(db, "yearly", *jan, now=jan[1])
    # the year is running: January gets 12 000 kWh × 31/365 days = 1019.18 kWh of 10 000 consumed
    # (before: the whole purchase went to the consumption so far, making January 100 % green)
    e = running.electricity
    assert e.green_trade_kwh.value == pytest.approx(12_000 * 31 / 365, rel=REL)
    assert e.green_power_ratio.value == pytest.approx(12_000 * 31 / 365 / 10_000, rel=REL)
    assert e.green_allocation == "elapsed_time"
    assert any("elapsed" in n and "still running" in n for n in running.notes)
    with get_engine(db).connect() as conn:
        (month,) = kpi_series(conn, "yearly", *jan, "1mo", now=jan[1]).points
    assert month.green_kwh == pytest.approx(12_000 * 31 / 365, rel=REL)

    closed = kpis(db, "yearly", *jan, now=local("2026-02-01T00:00:00"))
    # closed: evenly over the year's consumption, 12 000 × 10 000/30 000 = 4000 kWh
    assert closed.electricity.green_trade_kwh.value == pytest.approx(4000.0, rel=REL)
    assert closed.electricity.green_allocation == "consumption"
    with get_engine(db).connect() as conn:
        (month,) = kpi_series(conn, "yearly", *jan, "1mo", now=local("2026-02-01T00:00:00")).points
    assert month.green_kwh == pytest.approx(4000.0, rel=REL)


def test_the_inventory_says_how_green_purchases_were_allocated(db: str, api_client) -> None:
    seed(db, site("yearly-inv", [{**GRID, "id": "yi-grid"}], green_power=[
        {"kind": "gec", "period_start": "2025-01-01", "period_end": "2026-01-01", "certificates": 12}]), [
        Ramp("yi-grid", "active_energy_import", local("2025-01-15T10:00:00"), 60, 10_000.0)])
    with frozen(local("2026-02-01T00:00:00")):
        inv = api_client.get("/api/v1/sites/yearly-inv/reports/ghg-inventory",
                             params={"date": "2025-01-15"}).json()
    # the period has closed: 12 GEC = 12 000 kWh over its consumption, all of it in January →
    # capped at January's 10 000 kWh
    assert inv["green_power"]["allocation"] == "consumption"
    assert inv["green_power"]["gec_kwh"]["value"] == pytest.approx(10_000.0, rel=REL)
    assert any("closed period's consumption" in n for n in inv["notes"])
    with frozen(local("2025-02-01T00:00:00")):
        inv = api_client.get("/api/v1/sites/yearly-inv/reports/ghg-inventory",
                             params={"date": "2025-01-15"}).json()
    # running: 12 000 kWh × 31/365
    assert inv["green_power"]["allocation"] == "elapsed_time"
    assert inv["green_power"]["gec_kwh"]["value"] == pytest.approx(12_000 * 31 / 365, rel=REL)
    assert any("time elapsed" in n for n in inv["notes"])


# --- 6: time-of-use bands in site-local time ---------------------------------------------------


def _tou_site(site_id: str, peak_end: str) -> tuple[dict[str, Any], list[Ramp]]:
    """1 kWh a minute (60 kW) from 19:30 to 01:30 Shenyang time, 20–21 November 2026."""
    grid = f"{site_id}-grid"
    tariff = {"flat_cny_per_kwh": 0.65, "bands": [
        {"name": "valley", "start": "22:00", "end": "05:00", "price_cny_per_kwh": 0.33},
        {"name": "peak", "start": "19:00", "end": peak_end, "price_cny_per_kwh": 1.02}]}
    return site(site_id, [{**GRID, "id": grid}], energy={"tariff": tariff}), [
        Ramp(grid, "active_energy_import", local("2026-11-20T19:30:00"), 360, 360.0)]


def test_cost_is_split_by_time_of_use_band_in_site_local_time(db: str) -> None:
    # 20:37 on the 20th to 00:30 on the 21st in Shenyang is 12:37–16:30 UTC, all on the 20th:
    # the bands must follow the site's clock, not UTC's.
    a, b = local("2026-11-20T20:37:00"), local("2026-11-21T00:30:00")
    assert a.date() == b.date() == datetime(2026, 11, 20).date()
    seed(db, *_tou_site("tou", "21:00"))
    e = kpis(db, "tou", a, b).electricity
    # peak 20:37–21:00 = 23 kWh × 1.02 = 23.46; no band 21:00–22:00 = 60 kWh at the flat 0.65 = 39.00;
    # valley 22:00–00:30 = 150 kWh × 0.33 = 49.50 → 233 kWh, 111.96 CNY (before: 233 × 0.65 = 151.45)
    assert e.grid_import_kwh.value == pytest.approx(233.0, rel=REL)
    assert e.cost_cny.value == pytest.approx(111.96, rel=REL)
    bands = {line.band: line for line in e.cost_by_band}
    assert bands["peak"].kwh == pytest.approx(23.0, rel=REL)
    assert bands["peak"].cost_cny == pytest.approx(23.46, rel=REL)
    assert sum(ln.kwh for ln in e.cost_by_band) == pytest.approx(e.grid_import_kwh.value, rel=REL)
    assert bands["flat (no band)"].kwh == pytest.approx(60.0, rel=REL)
    assert bands["flat (no band)"].price_cny_per_kwh == 0.65
    assert bands["valley"].kwh == pytest.approx(150.0, rel=REL)
    assert bands["valley"].cost_cny == pytest.approx(49.5, rel=REL)

    # a band edge off the quarter hour (21:10) is split to the minute: peak 33 kWh × 1.02 = 33.66,
    # no band 50 × 0.65 = 32.50, valley 49.50 → 115.66 CNY
    seed(db, *_tou_site("tou-minute", "21:10"))
    e = kpis(db, "tou-minute", a, b).electricity
    assert e.cost_cny.value == pytest.approx(115.66, rel=REL)
    assert {ln.band: ln.kwh for ln in e.cost_by_band} == {
        "peak": pytest.approx(33.0), "flat (no band)": pytest.approx(50.0), "valley": pytest.approx(150.0)}


def test_overlapping_bands_are_an_error_naming_the_band() -> None:
    from lingtan.core.site_schema import Tariff

    with pytest.raises(ValueError, match=r"bands\[1\].*valley"):
        Tariff(flat_cny_per_kwh=0.65, bands=[
            {"name": "valley", "start": "22:00", "end": "06:00", "price_cny_per_kwh": 0.33},
            {"name": "flat", "start": "05:00", "end": "08:00", "price_cny_per_kwh": 0.65}])


def test_energy_of_unknown_time_and_time_outside_bands_take_the_flat_price() -> None:
    from lingtan.core.site_schema import Tariff
    from lingtan.core.tariff import NO_BAND, UNPLACED, DayProfile, cost_by_band

    bands = [{"name": "peak", "start": "08:00", "end": "12:00", "price_cny_per_kwh": 1.0}]
    # 10 kWh at 08:00 (peak), 5 kWh at 13:00 (no band), 2 kWh counted across a gap
    profile = DayProfile({8 * 60: 10.0, 13 * 60: 5.0}, 2.0)
    lines = {ln.band: ln for ln in cost_by_band(Tariff(flat_cny_per_kwh=0.5, bands=bands), profile)}
    # 10 × 1.0 = 10; 5 × 0.5 = 2.5; 2 × 0.5 = 1.0
    assert (lines["peak"].cost_cny, lines[NO_BAND].cost_cny, lines[UNPLACED].cost_cny) == (10.0, 2.5, 1.0)
    # no flat price: what needs it has no cost, never a cost of 0
    lines = {ln.band: ln for ln in cost_by_band(Tariff(bands=bands), profile)}
    assert lines["peak"].cost_cny == 10.0 and lines[NO_BAND].cost_cny is None


# --- 9: GB 19153-2019 grading by the governing row ----------------------------------------------


def _loaded(meter: str, kw: float, flow: float):
    from lingtan.core.amounts import Amount, CompressorAmounts

    return CompressorAmounts(meter, Amount(100.0, 1.0, 1), Amount(8.0, 1.0, 1), Amount(6.0, 1.0, 1),
                             600.0, kw, flow)


def test_a_compressor_is_graded_in_its_nearest_power_row_and_its_pressure_band() -> None:
    from lingtan.core import compressors, figures
    from lingtan.core.site_schema import CompressorSpec, MeterParams

    # 40 kW rated at 0.65 MPa: nearest row 37 kW, pressure band 0.7 MPa → 6.2 / 6.7 / 7.4
    # (before: only exact (37, 0.7), (75, 0.7), (75, 0.8) matched, so it was never graded)
    spec = CompressorSpec(rated_kw=40, pressure_mpa=0.65)
    assert compressors.grade_limits(spec) == (6.2, 6.7, 7.4)
    # loaded 40 kW delivering 6 m³/min: 40 ÷ 6 = 6.667 kW/(m³/min), inside grade 2 (≤ 6.7)
    c = figures.compressor(_loaded("c40", 40.0, 6.0), MeterParams(compressor=spec))
    assert c.specific_power_loaded == pytest.approx(40 / 6, rel=REL)
    assert c.gb19153_grade == 2 and c.gb19153_row == "37 kW, 0.7 MPa" and "docs/domain.md" in c.gb19153_source
    # 78 kW at 0.75 MPa falls in the 0.8 MPa column of the 75 kW row: 6.3 / 6.8 / 7.5
    assert compressors.grade_limits(CompressorSpec(rated_kw=78, pressure_mpa=0.75)) == (6.3, 6.8, 7.5)


def test_a_machine_without_a_row_says_why_and_a_site_can_give_its_row() -> None:
    from lingtan.core import compressors, figures
    from lingtan.core.site_schema import CompressorSpec, MeterParams

    # the demo's lag compressor: 37 kW at 0.8 MPa, a row the library does not hold
    spec = CompressorSpec(rated_kw=37, pressure_mpa=0.8)
    found = compressors.lookup(spec)
    assert found.row is None and found.band == "37 kW, 0.8 MPa" and "gb19153_limits" in found.reason
    own = CompressorSpec(rated_kw=37, pressure_mpa=0.8, gb19153_limits={
        "grade_1": 6.6, "grade_2": 7.1, "grade_3": 7.8, "source": "site's copy of GB 19153-2019"})
    c = figures.compressor(_loaded("lag", 36.0, 5.0), MeterParams(compressor=own))
    # 36 ÷ 5 = 7.2 kW/(m³/min): above 7.1, within 7.8 → grade 3, on the site's row and source
    assert c.gb19153_grade == 3 and c.gb19153_source == "site's copy of GB 19153-2019"
    # variable speed: the standard's weighted part-load figure cannot be metered, so no grade
    vsd = compressors.lookup(CompressorSpec(rated_kw=75, pressure_mpa=0.7, speed="variable"))
    assert vsd.row is None and "25/50/70/100 %" in vsd.reason and "weighted" in vsd.reason
    high = compressors.lookup(CompressorSpec(rated_kw=75, pressure_mpa=1.4))
    assert high.row is None and "highest pressure column" in high.reason
    with pytest.raises(ValueError, match="grade_1 < grade_2 < grade_3"):
        CompressorSpec(rated_kw=37, pressure_mpa=0.8, gb19153_limits={
            "grade_1": 7.1, "grade_2": 6.6, "grade_3": 7.8, "source": "typo"})
