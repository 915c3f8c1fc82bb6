"""What a site used, generated and produced in a window: counter energy per carrier, with coverage.

Everything comes from counters through ``lingtan.core.counters`` (rollups, reset- and spike-safe);
compressor air delivery and loaded power come from the compressor-hour rollup, with the
1-minute rollups of the live quantities at the window's edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from lingtan.core.counters import CounterEnergy, counter_energy
from lingtan.core.rollups import COMPRESSOR_LOADED, COMPRESSOR_SUMS, HOUR, compressor_minutes
from lingtan.core.site_model import SiteEnergyModel
from lingtan.kernel.timegrid import ceil_time, floor_time


@dataclass
class Amount:
    """A summed counter figure; coverage is the share of meter-time with data (1 with no meters).

    ``value`` includes what the counters counted across gaps (``gap_value``): that energy is
    known to have been used inside the window even though its timing is not, so the total stays
    exact while the coverage says how much of the window was actually observed.
    """

    value: float = 0.0
    coverage: float = 1.0
    meters: int = 0
    gap_value: float = 0.0

    @classmethod
    def of(cls, e: CounterEnergy) -> Amount:
        return cls(e.value + e.gap_value, e.coverage, e.meters, e.gap_value)


@dataclass
class CompressorAmounts:
    meter_id: str
    energy_kwh: Amount
    running_h: Amount
    loaded_h: Amount
    air_m3: float | None           # free air delivered over the minutes with flow data
    loaded_kw: float | None        # mean power over fully loaded minutes
    loaded_flow_m3min: float | None


@dataclass
class BoilerAmounts:
    meter_id: str
    fuel: str
    fuel_amount: Amount            # m³ for natural gas
    steam_t: Amount | None         # from the same meter or a boiler_output meter


@dataclass(kw_only=True)
class Balance:
    """The site's electricity counters over a window, and the balance figures built from them.

    Every consumer of consumption (the KPI window, green-power allocation, the series) takes it
    from here, so there is one formula (docs/domain.md, KPI definitions).
    """

    grid_import_kwh: Amount
    grid_export_kwh: Amount
    pv_kwh: Amount

    @property
    def consumption_kwh(self) -> float:
        # docs/domain.md: site electricity consumption = grid import − grid export + PV generation
        return self.grid_import_kwh.value - self.grid_export_kwh.value + self.pv_kwh.value

    @property
    def pv_self_consumed_kwh(self) -> float:
        # docs/domain.md: PV self-consumed = PV generation − grid export, not below 0
        return max(self.pv_kwh.value - self.grid_export_kwh.value, 0.0)

    @property
    def grid_supplied_kwh(self) -> float:
        """Consumption the site's own PV did not cover: what bought green power can make green
        (PV already carries its own attributes), and what purchases are spread over."""
        return max(self.consumption_kwh - self.pv_self_consumed_kwh, 0.0)

    @property
    def electricity_coverage(self) -> float:
        return min(self.grid_import_kwh.coverage, self.grid_export_kwh.coverage, self.pv_kwh.coverage)


@dataclass(kw_only=True)
class SiteAmounts(Balance):
    start: datetime
    end: datetime
    fuels: dict[str, Amount]       # fuel -> amount in its canonical unit (natural gas: m³)
    purchased_heat_gj: Amount
    purchased_steam_t: Amount
    recovered_heat_gj: Amount      # measured by heat-recovery meters
    compressors: list[CompressorAmounts] = field(default_factory=list)
    boilers: list[BoilerAmounts] = field(default_factory=list)
    production: Amount = field(default_factory=Amount)


def _energy(conn: sa.Connection, meters: list[str], quantity: str, a: datetime, b: datetime) -> Amount:
    if not meters:
        return Amount()
    return Amount.of(counter_energy(conn, meters, quantity, a, b))


def _has(conn: sa.Connection, meter: str, quantity: str) -> bool:
    return conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM readings_1d WHERE meter_id = :m AND quantity = :q)"),
        {"m": meter, "q": quantity},
    ).scalar_one()


_MINUTES = (f"SELECT meter_id, {COMPRESSOR_SUMS} FROM ({compressor_minutes(':loaded')}"
            " AND f.meter_id = ANY(:m) AND f.bucket >= :{a} AND f.bucket < :{b}) x GROUP BY meter_id")
_HOURS = """
SELECT meter_id, flow_minutes, air_m3, loaded_minutes, loaded_flow_sum, loaded_kw_minutes, loaded_kw_sum
FROM compressor_1h WHERE meter_id = ANY(:m) AND bucket >= :h0 AND bucket < :h1
"""


def compressor_air(conn: sa.Connection, meters: list[str], a: datetime, b: datetime
         ) -> dict[str, tuple[float | None, float | None, float | None]]:
    """Per compressor: air delivered (m³), and mean power and flow over minutes loaded throughout.

    Whole hours come from ``compressor_1h``; only the window's ragged edges join minute rollups.
    """
    if not meters:
        return {}
    h0, h1 = ceil_time(a, HOUR), floor_time(b, HOUR)
    params: dict[str, object] = {"m": meters, "loaded": float(COMPRESSOR_LOADED), "a": a, "b": b}
    if h0 < h1:
        params |= {"h0": h0, "h1": h1}
        parts = [_MINUTES.format(a="a", b="h0"), _HOURS, _MINUTES.format(a="h1", b="b")]
    else:
        parts = [_MINUTES.format(a="a", b="b")]
    rows = conn.execute(sa.text(
        "SELECT meter_id, sum(flow_minutes), sum(air_m3),"
        " sum(loaded_flow_sum) / nullif(sum(loaded_minutes), 0),"
        " sum(loaded_kw_sum) / nullif(sum(loaded_kw_minutes), 0)"
        f" FROM ({' UNION ALL '.join(parts)}) t GROUP BY meter_id"
    ), params).all()
    # A 1-minute bucket's mean flow in m³/min is the air delivered in that minute.
    return {r[0]: (r[2] if r[1] else None, r[4], r[3]) for r in rows}


def _ids(model: SiteEnergyModel, role: str) -> list[str]:
    return [m.id for m in model.meters_with_role(role)]


def _reporting(conn: sa.Connection, meters: list[str], quantity: str) -> list[str]:
    if not meters:
        return []
    return list(conn.execute(sa.text(
        "SELECT m FROM unnest(CAST(:m AS text[])) AS m WHERE EXISTS"
        " (SELECT 1 FROM readings_1d WHERE meter_id = m AND quantity = :q)"), {"m": meters, "q": quantity}
    ).scalars())


def electricity_meters(conn: sa.Connection, model: SiteEnergyModel) -> tuple[list[str], list[str], list[str]]:
    """(grid import, grid export, PV generation) meters. A grid_export meter counts export, and
    so does a grid incomer's export register — where it has one: an import-only incomer that
    never reported ``active_energy_export`` does not measure it, and is not a meter without data."""
    grid = _ids(model, "grid_import")
    export = _ids(model, "grid_export") + _reporting(conn, grid, "active_energy_export")
    return grid, export, _ids(model, "pv_generation")


def natural_gas_meters(model: SiteEnergyModel) -> list[str]:
    return [m.id for m in model.meters_with_role("boiler_fuel")
            if (m.params.fuel or model.params.boiler_fuel) == "natural_gas"]


def purchased_heat_meters(model: SiteEnergyModel) -> tuple[list[str], list[str]]:
    """(heat meters counting GJ, steam meters counting tonnes) of purchased heat."""
    meters = model.meters_with_role("purchased_heat")
    return ([m.id for m in meters if m.params.heat_carrier != "steam"],
            [m.id for m in meters if m.params.heat_carrier == "steam"])


def balance(conn: sa.Connection, model: SiteEnergyModel, a: datetime, b: datetime) -> Balance:
    """The electricity counters alone, e.g. for a green-power purchase period."""
    grid, export, pv = electricity_meters(conn, model)
    return Balance(grid_import_kwh=_energy(conn, grid, "active_energy_import", a, b),
                   grid_export_kwh=_energy(conn, export, "active_energy_export", a, b),
                   pv_kwh=_energy(conn, pv, "active_energy_export", a, b))


def gather(conn: sa.Connection, model: SiteEnergyModel, a: datetime, b: datetime) -> SiteAmounts:
    ids = lambda role: _ids(model, role)  # noqa: E731
    boilers: list[BoilerAmounts] = []
    outputs = model.meters_with_role("boiler_output")
    gas = natural_gas_meters(model)
    # only natural gas has a canonical counter (gas_volume); liquid fuels are not metered yet
    fuel_amounts = {"natural_gas": _energy(conn, gas, "gas_volume", a, b)} if gas else {}
    for m in model.meters_with_role("boiler_fuel"):
        fuel = m.params.fuel or model.params.boiler_fuel
        if fuel != "natural_gas":
            continue  # no canonical mass-of-fuel counter yet: liquid fuels are not metered
        steam_meters = [m.id] if _has(conn, m.id, "steam_mass") else [o.id for o in outputs]
        steam = _energy(conn, steam_meters, "steam_mass", a, b) if steam_meters else None
        boilers.append(BoilerAmounts(m.id, fuel, _energy(conn, [m.id], "gas_volume", a, b), steam))
    heat_ids, steam_ids = purchased_heat_meters(model)
    compressors = []
    air_of = compressor_air(conn, [m.id for m in model.meters_with_role("compressor")], a, b)
    for m in model.meters_with_role("compressor"):
        air, kw, flow = air_of.get(m.id, (None, None, None))
        compressors.append(CompressorAmounts(
            m.id, _energy(conn, [m.id], "active_energy_import", a, b),
            _energy(conn, [m.id], "running_hours", a, b), _energy(conn, [m.id], "loaded_hours", a, b),
            air, kw, flow))
    e = balance(conn, model, a, b)
    return SiteAmounts(
        start=a, end=b,
        grid_import_kwh=e.grid_import_kwh, grid_export_kwh=e.grid_export_kwh, pv_kwh=e.pv_kwh,
        fuels=fuel_amounts,
        purchased_heat_gj=_energy(conn, heat_ids, "heat_energy", a, b),
        purchased_steam_t=_energy(conn, steam_ids, "steam_mass", a, b),
        recovered_heat_gj=_energy(conn, ids("heat_recovery"), "heat_energy", a, b),
        compressors=compressors,
        boilers=boilers,
        production=_energy(conn, ids("production"), "production_count", a, b),
    )
