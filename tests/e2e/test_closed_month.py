"""Acceptance: a closed month published over MQTT with known truth comes back exactly.

A plant in Shenyang (Asia/Shanghai, North-East grid) with a grid meter (import and export
counters), a PV inverter, a gas boiler meter (gas burned and steam made), a production line and
one green-certificate purchase and one green-power trade for November 2026. A whole month of
counter readings, every 10 minutes and two hours past each end of the month, is generated from
simple known functions, published over the real broker as the JSON a gateway MQTT device reads,
collected by the gateway (MQTT collector → validator → disk buffer → PostgreSQL sink → rollups)
and asked for through the API as the month's KPIs and GHG inventory, with the clock frozen after
the month has ended. The grid meter is replaced mid-month: both its counters restart from 0, and
the replacement is recorded in the site file (the old counters' last values, the new ones' 0).

The truth is computed here from the generating functions alone, never from the engine:

- Each 10-minute interval (t − 10 min, t] has known increments, labelled by its end t. The
  documented edge rule (``lingtan/core/energy.py`` rule 4, docs/domain.md "Readings and
  counters") puts a pair of readings wholly into the window holding its later reading, so the
  month's amount of a counter is the sum of the increments of the intervals whose end t lies in
  [2026-10-31T16:00Z, 2026-11-30T16:00Z). The generating functions use the same labelling: an
  interval belongs to November when its end does, and intervals outside November run at very
  different rates (150 kWh, 100 m³, 50 units per interval against November's 8–60 kWh,
  10–30 m³, 0–7 units), so a window off by even one interval, or by the 8 hours between UTC
  and local midnight, changes every figure.
- Meter replacement: the old grid meter's last reading is at ``REPLACED``; the new meter starts
  at 0 at that instant, so its first reading 10 minutes later is exactly that interval's
  increment. The site file records the exchange (time, the old counters' last values, the new
  ones' 0), so the pair across it counts (old final − old last reading) + (new reading − 0), with
  known timing (energy rule 3, "a recorded exchange"): every figure covers the whole month.
  Unrecorded, the step down would be a reset whose 600 s are uncovered, which
  ``test_an_unrecorded_replacement_leaves_its_interval_uncovered`` checks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from gateway.config import parse_config
from gateway.runtime import Gateway
from lingtan.core.site_model import apply_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.settings import get_settings
from tests.conftest import free_port
from tests.pipeline import refresh_rollups

SHANGHAI = ZoneInfo("Asia/Shanghai")
# November 2026 in the site's zone: local midnights, UTC+8.
START = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
END = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
WINDOW_S = (END - START).total_seconds()  # 30 days = 2,592,000 s
STEP = timedelta(minutes=10)
FIRST = START - timedelta(hours=2)  # readings start before the month ...
LAST = END + timedelta(hours=2)     # ... and go on after it (inclusive)
# The old grid meter's last reading (Saturday 14 November, 11:20 local); the new meter starts
# from 0 right after it.
REPLACED = datetime(2026, 11, 14, 3, 20, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # the month has ended; not closed

# Counter values of the meters when the readings begin (the old grid meter's registers).
INITIAL = {"import": 123_456.0, "export": 789.0, "pv": 50_000.0, "gas": 9_876.5, "steam": 321.25,
           "units": 100_000.0}

# Contractual green power for November 2026 (the site file below).
TRADE_KWH = 20_000.0
GEC_CERTIFICATES = 10
GEC_KWH = GEC_CERTIFICATES * 1000.0  # docs/domain.md "Green power": 1 GEC = 1,000 kWh
FLAT_PRICE = 0.65  # CNY/kWh, the site's flat tariff

# Factors the engine must use for 2026 with factor set mee-2023 (docs/domain.md): the 2023 data
# year is the newest published, so it stays valid for 2026.
GRID_NORTH_EAST_2023 = 0.5122    # kgCO2/kWh, MEE/NBS 2023 North-East regional grid average
RESIDUAL_MIX_2023 = 0.6096       # kgCO2/kWh, MEE/NBS 2023 national residual mix (market-based)
GAS_CO2 = 21.62                  # tCO2/10^4 Nm3, MEE enterprise guideline default for natural gas
TCE_ELECTRICITY = 0.1229         # kgce/kWh, GB/T 2589-2020 equivalent value
# kgce per m³ from the site's one heating value (docs/domain.md): 38.931 MJ/Nm³ (the MEE default
# 389.31 GJ/10⁴Nm³; the site declares no meter conditions, so m³ are taken at the NCV's) ÷ 29.3076
# MJ/kgce (GB/T 2589-2020)
TCE_GAS = 38.931 / 29.3076


@dataclass(frozen=True)
class Increments:
    """What happened in one 10-minute interval: kWh, m³, t and units (exact binary fractions,
    so every sum below and in the engine is exact)."""

    imp: float
    exp: float
    pv: float
    gas: float
    steam: float
    units: float


def in_month(t: datetime) -> bool:
    return START <= t < END


def increments(t: datetime) -> Increments:
    """The interval ending at ``t``; its local start gives the hour and weekday of the profile."""
    if not in_month(t):
        # October and December run flat out: any of it leaking into November shows.
        return Increments(imp=150.0, exp=0.0, pv=0.0, gas=100.0, steam=1.25, units=50.0)
    begin = (t - STEP).astimezone(SHANGHAI)
    h, sunday = begin.hour, begin.weekday() == 6
    load = 8.0 if sunday else (60.0 if 8 <= h < 20 else 25.0)
    pv = 12.0 + 4.0 * (begin.day % 3) if 9 <= h < 15 else 0.0
    gas = 30.0 if 6 <= h < 22 else 10.0
    return Increments(
        imp=max(load - pv, 0.0),
        exp=max(pv - load, 0.0),  # on Sundays the PV exceeds the load at midday
        pv=pv,
        gas=gas,
        steam=gas / 80.0,  # 12.5 kg of steam per m³ of gas: 0.375 t or 0.125 t per interval
        units=7.0 if 8 <= h < 20 and not sunday else 0.0,
    )


def times() -> list[datetime]:
    out, t = [], FIRST
    while t <= LAST:
        out.append(t)
        t += STEP
    return out


@dataclass(frozen=True)
class Sample:
    t: datetime
    imp: float
    exp: float
    pv: float
    gas: float
    steam: float
    units: float


def samples() -> list[Sample]:
    """The counters as the meters read them at each instant."""
    out = []
    c = dict(INITIAL)
    for t in times():
        if t > FIRST:
            inc = increments(t)
            if t - STEP == REPLACED:
                # the new grid meter's registers start at 0 at REPLACED
                c["import"], c["export"] = 0.0, 0.0
            c["import"] += inc.imp
            c["export"] += inc.exp
            c["pv"] += inc.pv
            c["gas"] += inc.gas
            c["steam"] += inc.steam
            c["units"] += inc.units
        out.append(Sample(t, c["import"], c["export"], c["pv"], c["gas"], c["steam"], c["units"]))
    return out


@dataclass(frozen=True)
class Truth:
    imp: float
    exp: float
    pv: float
    gas: float
    steam: float
    units: float
    grid_coverage: float

    @property
    def consumption(self) -> float:
        # docs/domain.md "KPI definitions": consumption = import − export + PV
        return self.imp - self.exp + self.pv

    @property
    def self_used(self) -> float:
        return self.pv - self.exp

    @property
    def scope1_t(self) -> float:
        return self.gas * GAS_CO2 / 10_000

    @property
    def scope2_location_t(self) -> float:
        return self.imp * GRID_NORTH_EAST_2023 / 1000

    @property
    def scope2_market_t(self) -> float:
        # the whole purchase counts: the month is over and the purchase covers exactly it
        return (self.imp - TRADE_KWH - GEC_KWH) * RESIDUAL_MIX_2023 / 1000

    @property
    def tce(self) -> float:
        # GB/T 2589 counts all electricity consumed, self-consumed PV included (docs/domain.md)
        return self.consumption * TCE_ELECTRICITY / 1000 + self.gas * TCE_GAS / 1000


def truth() -> Truth:
    """Sum of the increments of the intervals whose end lies in the month (module docstring)."""
    month = [increments(t) for t in times() if in_month(t)]
    assert len(month) == 30 * 24 * 6  # every interval of the month, each once
    return Truth(
        imp=sum(i.imp for i in month), exp=sum(i.exp for i in month), pv=sum(i.pv for i in month),
        gas=sum(i.gas for i in month), steam=sum(i.steam for i in month),
        units=sum(i.units for i in month),
        # the exchange is recorded: the pair across it counts with known timing (energy rule 3)
        grid_coverage=1.0,
    )


def _old_final() -> dict[str, float]:
    last = next(s for s in samples() if s.t == REPLACED)  # the old meter's last reading
    return {"active_energy_import": last.imp, "active_energy_export": last.exp}


OLD_FINAL = _old_final()

SITE_FILE: dict[str, Any] = {
    "site": {"id": "month-plant", "name": "Closed-month plant, Shenyang", "timezone": "Asia/Shanghai",
             "grid_region": "north_east", "factor_set": "mee-2023"},
    "energy": {"boiler_fuel": "natural_gas", "natural_gas_origin": "gas_field",
               "tariff": {"flat_cny_per_kwh": FLAT_PRICE}, "production_unit": "pcs"},
    "meters": [
        {"id": "grid-incomer", "role": "grid_import", "name": "Grid incomer", "params": {"exchanges": [
            {"time": REPLACED.isoformat(), "quantity": q, "old_final": OLD_FINAL[q], "new_initial": 0.0}
            for q in ("active_energy_import", "active_energy_export")]}},
        {"id": "pv-inverter", "role": "pv_generation", "name": "Rooftop PV"},
        {"id": "boiler", "role": "boiler_fuel", "name": "Gas boiler",
         "params": {"fuel": "natural_gas",
                    "boiler_output": {"steam_pressure_mpa_abs": 0.7, "feedwater_c": 20}}},
        {"id": "line-1", "role": "production", "name": "Line 1"},
    ],
    "green_power": [
        {"kind": "gec", "period_start": "2026-11-01", "period_end": "2026-12-01",
         "certificates": GEC_CERTIFICATES, "reference": "GEC batch, November 2026"},
        {"kind": "trade", "period_start": "2026-11-01", "period_end": "2026-12-01",
         "kwh": TRADE_KWH, "reference": "green-power trade, November 2026"},
    ],
}


def gateway_config(gateway_id: str, prefix: str, buffer: Path) -> dict[str, Any]:
    """One MQTT device per meter, each reading its counters from its own topic's JSON."""

    def device(meter: dict[str, Any], points: list[tuple[str, str, str]]) -> dict[str, Any]:
        return {"id": meter["id"], "name": meter["name"], "role": meter["role"], "protocol": "mqtt",
                "topic": f"{prefix}/{meter['id']}/telemetry", "timestamp": {"path": "$.ts"},
                "points": [{"quantity": q, "path": p, "unit": u} for q, p, u in points]}

    grid, pv, boiler, line = SITE_FILE["meters"]
    site = SITE_FILE["site"]
    return {
        "gateway": {"id": gateway_id, "site": site["id"], "site_name": site["name"]},
        "health": {"listen": f"127.0.0.1:{free_port()}"},
        "buffer": {"path": str(buffer)},
        "sinks": [{"type": "postgres"}],
        "devices": [
            device(grid, [("active_energy_import", "$.import_kwh", "kWh"),
                          ("active_energy_export", "$.export_kwh", "kWh")]),
            device(pv, [("active_energy_export", "$.energy.total_kwh", "kWh")]),
            device(boiler, [("gas_volume", "$.gas_m3", "m3"), ("steam_mass", "$.steam_t", "t")]),
            device(line, [("production_count", "$.count", "units")]),
        ],
    }


def messages(prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for s in samples():
        ts = s.t.astimezone(SHANGHAI).isoformat()  # local time with its offset, as devices send
        yield f"{prefix}/grid-incomer/telemetry", {"ts": ts, "import_kwh": s.imp, "export_kwh": s.exp}
        yield f"{prefix}/pv-inverter/telemetry", {"ts": ts, "energy": {"total_kwh": s.pv}}
        yield f"{prefix}/boiler/telemetry", {"ts": ts, "gas_m3": s.gas, "steam_t": s.steam}
        yield f"{prefix}/line-1/telemetry", {"ts": ts, "count": s.units}


READINGS_PER_INSTANT = 6  # 2 grid + 1 PV + 2 boiler + 1 line
# Mosquitto queues at most 1,000 QoS 1 messages per subscriber by default and drops the rest:
# the publisher stays at most this far ahead of what the gateway has taken, well inside that.
AHEAD = 100


def empty_database(url: str) -> None:
    """Every table of the schema emptied, as the ``db`` fixture does for one test."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename <> 'alembic_version'")]
        conn.execute(f"TRUNCATE {', '.join(tables)}")


def publish_month(gateway: Gateway, mqtt_url: str, protocol: str, prefix: str) -> int:
    """Publishes every message at QoS 1; returns how many readings they carry."""
    assert gateway.mqtt is not None
    collector = gateway.mqtt
    client, address = make_client(mqtt_url, protocol)
    client.max_inflight_messages_set(100)
    client.connect(address.host, address.port)
    client.loop_start()
    sent = 0
    try:
        pending = []
        for topic, body in messages(prefix):
            pending.append(client.publish(topic, json.dumps(body), qos=1))
            sent += 1
            if sent % 100 == 0:
                deadline = time.monotonic() + 60
                while collector.received < sent - AHEAD:
                    assert time.monotonic() < deadline, f"gateway took {collector.received} of {sent}"
                    time.sleep(0.005)
        for info in pending:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent // 4 * READINGS_PER_INSTANT


@dataclass
class Month:
    client: TestClient
    truth: Truth


@pytest.fixture(scope="module")
def month(database_url: str, mqtt_broker: tuple[str, str],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    """The month published, collected and stored once for this module's tests."""
    from api.app import create_app
    from lingtan.core.keys import create_key

    mqtt_url, protocol = mqtt_broker
    empty_database(database_url)
    tmp = tmp_path_factory.mktemp("closed-month")
    site_file = tmp / "month-plant.yaml"
    site_file.write_text(yaml.safe_dump(SITE_FILE, sort_keys=False))
    apply_site_file(database_url, site_file)

    uid = uuid.uuid4().hex[:8]
    cfg = parse_config(yaml.safe_dump(gateway_config(f"month-{uid}", f"month-{uid}", tmp / "buffer.db")))
    gateway = Gateway(cfg, database_url, mqtt_url, protocol)
    try:
        gateway.start()
        assert gateway.mqtt is not None and gateway.mqtt.subscribed.wait(10)
        expected = publish_month(gateway, mqtt_url, protocol, f"month-{uid}")
        deadline = time.monotonic() + 120  # a hang guard, not a performance limit
        while gateway.written < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gateway.mqtt.malformed == 0
        assert gateway.written == expected, f"stored {gateway.written} of {expected} readings"
    finally:
        gateway.stop()
    refresh_rollups(database_url)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINGTAN_DATABASE_URL", database_url)
        get_settings.cache_clear()
        with get_engine(database_url).begin() as conn:
            _, key = create_key(conn, "viewer", "closed-month test")
        client = TestClient(create_app(), headers={"Authorization": f"Bearer {key}"})
        yield Month(client, truth())
    get_settings.cache_clear()


def get(m: Month, path: str) -> dict[str, Any]:
    with clock.frozen(NOW):
        r = m.client.get(path, params={"period": "month", "date": "2026-11-15"})
    assert r.status_code == 200, r.text
    return r.json()


def exact(value: float) -> Any:
    return pytest.approx(value, rel=1e-9)


def figures_in(doc: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every {value, unit, coverage} figure in a response, with its path."""
    if isinstance(doc, dict):
        if {"value", "unit", "coverage"} <= doc.keys():
            yield path, doc
        for k, v in doc.items():
            yield from figures_in(v, f"{path}.{k}" if path else k)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from figures_in(v, f"{path}[{i}]")


def test_the_truth_is_what_it_should_be():
    """The generating functions do what the docstring says (so the other tests test the engine)."""
    t = truth()
    ss = samples()
    # the replacement really is a reset by the documented rule: down to at most half
    before = next(s for s in ss if s.t == REPLACED)
    after = next(s for s in ss if s.t == REPLACED + STEP)
    assert after.imp == increments(REPLACED + STEP).imp == 40.0  # 60 kWh load − 20 kWh PV
    assert after.imp <= before.imp / 2 and after.exp == 0.0 < before.exp
    # PV exported on Sunday middays only; the purchases are not capped (room = consumption − PV used)
    assert 0 < t.exp < t.pv and t.consumption - t.self_used > TRADE_KWH + GEC_KWH
    # November's rates differ from October's and December's on both sides of both edges
    assert increments(START) != increments(START - STEP)
    assert increments(END - STEP) != increments(END)
    assert t.grid_coverage == 1.0  # the replacement is recorded
    assert OLD_FINAL["active_energy_import"] == before.imp and OLD_FINAL["active_energy_export"] == before.exp


def test_a_closed_month_over_mqtt_comes_back_exactly(month: Month):
    t = month.truth
    g = t.grid_coverage
    k = get(month, "/api/v1/sites/month-plant/kpis")
    assert (k["start"], k["end"]) == ("2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z")
    e, c, en = k["electricity"], k["carbon"], k["energy"]

    def check(fig: dict[str, Any], value: float, coverage: float) -> None:
        assert (fig["value"], fig["coverage"]) == (exact(value), exact(coverage))

    check(e["grid_import_kwh"], t.imp, g)
    check(e["grid_export_kwh"], t.exp, g)
    check(e["pv_generation_kwh"], t.pv, 1.0)
    check(e["consumption_kwh"], t.consumption, g)
    check(e["pv_self_consumed_kwh"], t.self_used, g)
    check(e["self_sufficiency"], 1 - t.imp / t.consumption, g)
    check(e["self_consumption"], 1 - t.exp / t.pv, g)
    check(e["green_trade_kwh"], TRADE_KWH, g)
    check(e["green_certificate_kwh"], GEC_KWH, g)
    check(e["green_power_ratio"], (t.self_used + TRADE_KWH + GEC_KWH) / t.consumption, g)
    check(e["cost_cny"], t.imp * FLAT_PRICE, g)

    check(c["scope1_t"], t.scope1_t, 1.0)
    check(c["scope2_location_t"], t.scope2_location_t, g)
    check(c["scope2_market_t"], t.scope2_market_t, g)
    check(c["intensity_location_kg_per_kwh"], t.scope2_location_t * 1000 / t.consumption, g)
    check(c["intensity_market_kg_per_kwh"], t.scope2_market_t * 1000 / t.consumption, g)
    check(c["per_unit_location_kg"], (t.scope1_t + t.scope2_location_t) * 1000 / t.units, g)
    check(c["per_unit_market_kg"], (t.scope1_t + t.scope2_market_t) * 1000 / t.units, g)

    check(en["tce_total"], t.tce, g)
    check(en["tce_per_unit"], t.tce * 1000 / t.units, g)
    check(en["production"], t.units, 1.0)
    [boiler] = k["boilers"]
    check(boiler["fuel_m3"], t.gas, 1.0)
    check(boiler["steam_t"], t.steam, 1.0)

    used = {(f["kind"], f["subject"]): f["value"] for f in k["factors"]}
    assert used[("grid", "north_east")] == GRID_NORTH_EAST_2023
    assert used[("grid_residual", "national")] == RESIDUAL_MIX_2023
    assert used[("co2", "natural_gas")] == GAS_CO2
    assert used[("tce", "electricity")] == TCE_ELECTRICITY
    assert used[("tce", "natural_gas")] == TCE_GAS

    inv = get(month, "/api/v1/sites/month-plant/reports/ghg-inventory")
    assert inv["status"]["state"] == "provisional" and inv["period"]["label"] == "2026-11"
    totals = inv["totals"]
    check(totals["scope1_t"], t.scope1_t, 1.0)
    check(totals["scope2_location_t"], t.scope2_location_t, g)
    check(totals["scope2_market_t"], t.scope2_market_t, g)
    check(totals["total_location_t"], t.scope1_t + t.scope2_location_t, g)
    check(totals["total_market_t"], t.scope1_t + t.scope2_market_t, g)
    check(inv["green_power"]["gec_kwh"], GEC_KWH, g)
    check(inv["green_power"]["trade_kwh"], TRADE_KWH, g)
    lines = {ln["carrier"]: ln for ln in inv["lines"]}
    assert set(lines) == {"electricity", "electricity_pv_self_consumed", "natural_gas"}
    gas, grid, own = lines["natural_gas"], lines["electricity"], lines["electricity_pv_self_consumed"]
    assert (gas["scope"], gas["amount"], gas["tco2e_location"], gas["tco2e_market"], gas["tce"],
            gas["coverage"]) == (1, exact(t.gas), exact(t.scope1_t), exact(t.scope1_t),
                                 exact(t.gas * TCE_GAS / 1000), 1.0)
    # the electricity line is grid import (the Scope 2 basis) with the tce of what was bought
    assert (grid["scope"], grid["amount"], grid["tco2e_location"], grid["tco2e_market"], grid["tce"],
            grid["coverage"]) == (2, exact(t.imp), exact(t.scope2_location_t), exact(t.scope2_market_t),
                                  exact(t.imp * TCE_ELECTRICITY / 1000), exact(g))
    assert (own["amount"], own["tco2e_location"], own["tce"], own["coverage"]) == (
        exact(t.self_used), 0.0, exact(t.self_used * TCE_ELECTRICITY / 1000), exact(g))
    # the lines add up to the totals
    assert sum(ln["tco2e_location"] for ln in inv["lines"]) == exact(t.scope1_t + t.scope2_location_t)
    assert sum(ln["tce"] for ln in inv["lines"]) == exact(t.tce)


def test_every_figure_of_the_closed_month_has_its_coverage(month: Month):
    """No figure claims less (or more) data than the meters gave: every figure, the grid meter's
    across its recorded replacement and roles the site has no meter for (no heat recovery, no
    compressor, no purchased heat) alike, is fully covered (docs/domain.md: "a meter role the
    site does not have is not a gap")."""
    t = month.truth
    grid_free = {"electricity.pv_generation_kwh", "carbon.scope1_t", "energy.production",
                 "boilers[0].fuel_m3", "boilers[0].steam_t", "totals.scope1_t"}
    wrong, seen = {}, 0
    for path in ("kpis", "reports/ghg-inventory"):
        doc = get(month, f"/api/v1/sites/month-plant/{path}")
        for name, fig in figures_in(doc):
            seen += 1
            if name.startswith("waste_heat."):
                want = 1.0  # the site has no recovered heat to measure: nothing is missing
            elif name in grid_free:
                want = 1.0
            else:
                want = t.grid_coverage
            if fig["coverage"] != exact(want):
                wrong[f"{path}: {name}"] = (fig["coverage"], want)
    assert seen >= 29 + 7  # the KPI answer's figures and the inventory's totals and green power
    assert not wrong, wrong


def test_the_kpis_carry_the_scope_1_and_2_totals(month: Month):
    """docs/domain.md "KPI definitions": Scope 1 + 2 on each basis is the total the carbon tile
    shows, so the KPI answer carries it with the inventory's figures."""
    t = month.truth
    c = get(month, "/api/v1/sites/month-plant/kpis")["carbon"]
    assert "scope12_location_t" in c and "scope12_market_t" in c, sorted(c)
    assert (c["scope12_location_t"]["value"], c["scope12_location_t"]["coverage"]) == (
        exact(t.scope1_t + t.scope2_location_t), exact(t.grid_coverage))
    assert (c["scope12_market_t"]["value"], c["scope12_market_t"]["coverage"]) == (
        exact(t.scope1_t + t.scope2_market_t), exact(t.grid_coverage))


def test_an_unrecorded_replacement_leaves_its_interval_uncovered(month: Month, database_url: str):
    """Without the record the step down is a reset: the month's import is still exact (the new
    reading counts with unknown timing) but the 600 s across it are uncovered."""
    from lingtan.core.counters import counter_energy
    from lingtan.kernel.db import get_engine

    with get_engine(database_url).begin() as conn:
        conn.execute(sa.text("UPDATE meters SET params = params - 'exchanges' WHERE id = 'grid-incomer'"))
        conn.execute(sa.text(
            "INSERT INTO rollup_dirty (meter_id, quantity, bucket) SELECT meter_id, quantity,"
            " date_bin('1 minute', time, '2000-01-01T00:00:00+08:00') FROM readings WHERE meter_id ="
            " 'grid-incomer' AND time = :t ON CONFLICT DO NOTHING"), {"t": REPLACED + STEP})
    refresh_rollups(database_url)
    try:
        with get_engine(database_url).connect() as conn:
            imp = counter_energy(conn, ["grid-incomer"], "active_energy_import", START, END)
        assert imp.value + imp.gap_value == exact(month.truth.imp)
        assert imp.gap_value == 40.0  # the new meter's first reading, timing unknown
        assert imp.coverage == exact((WINDOW_S - STEP.total_seconds()) / WINDOW_S)
    finally:  # put the record back for any test that runs after this one
        with get_engine(database_url).begin() as conn:
            conn.execute(sa.text("UPDATE meters SET params = jsonb_set(params, '{exchanges}',"
                                 " CAST(:x AS jsonb)) WHERE id = 'grid-incomer'"),
                         {"x": json.dumps(SITE_FILE["meters"][0]["params"]["exchanges"])})
            conn.execute(sa.text(
                "INSERT INTO rollup_dirty (meter_id, quantity, bucket) SELECT meter_id, quantity,"
                " date_bin('1 minute', time, '2000-01-01T00:00:00+08:00') FROM readings WHERE meter_id ="
                " 'grid-incomer' AND time = :t ON CONFLICT DO NOTHING"), {"t": REPLACED + STEP})
        refresh_rollups(database_url)
