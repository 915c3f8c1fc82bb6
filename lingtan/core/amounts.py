"""What a site used, generated and produced in a window: counter energy per carrier, with coverage.

Everything comes from counters through ``lingtan.core.counters`` (rollups, reset- and spike-safe);
compressor air delivery and loaded power come from the compressor-hour rollup, with the
1-minute rollups of the live quantities at the window's edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from lingtan.core.counters import CounterEnergy, CounterRequest, counter_energy_many, counter_request
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


_MINUTES = (f"SELECT meter_id, {COMPRESSOR_SUMS} FROM ({compressor_minutes(':loaded')}"
            " AND f.meter_id = ANY(:{m}) AND f.bucket >= :{a} AND f.bucket < :{b}) x GROUP BY meter_id")
_HOURS = """
SELECT meter_id, flow_minutes, air_m3, loaded_minutes, loaded_flow_sum, loaded_kw_minutes, loaded_kw_sum
FROM compressor_1h WHERE meter_id = ANY(:m{k}) AND bucket >= :h0{k} AND bucket < :h1{k}
"""

AirFigures = dict[str, tuple[float | None, float | None, float | None]]
AirRequest = tuple[tuple[str, ...], datetime, datetime]  # (meters, start, end)


def _minutes(k: int, a: str, b: str) -> str:
    return f"SELECT {k} AS k, * FROM ({_MINUTES.format(m=f'm{k}', a=f'{a}{k}', b=f'{b}{k}')}) x"


def compressor_air(conn: sa.Connection, meters: list[str], a: datetime, b: datetime) -> AirFigures:
    """Per compressor: air delivered (m³), and mean power and flow over minutes loaded throughout.

    Whole hours come from ``compressor_1h``; only the window's ragged edges join minute rollups.
    """
    return compressor_air_many(conn, [(tuple(meters), a, b)])[0]


def compressor_air_many(conn: sa.Connection, requests: Sequence[AirRequest]) -> list[AirFigures]:
    """``compressor_air`` of each (meters, start, end), in order, in one statement."""
    params: dict[str, object] = {"loaded": float(COMPRESSOR_LOADED)}
    parts = []
    for k, (meters, a, b) in enumerate(requests):
        if not meters:
            continue
        h0, h1 = ceil_time(a, HOUR), floor_time(b, HOUR)
        params |= {f"m{k}": list(meters), f"a{k}": a, f"b{k}": b}
        if h0 < h1:
            params |= {f"h0{k}": h0, f"h1{k}": h1}
            parts += [_minutes(k, "a", "h0"), f"SELECT {k} AS k, * FROM ({_HOURS.format(k=k)}) x",
                      _minutes(k, "h1", "b")]
        else:
            parts.append(_minutes(k, "a", "b"))
    out: list[AirFigures] = [{} for _ in requests]
    if not parts:
        return out
    rows = conn.execute(sa.text(
        "SELECT k, meter_id, sum(flow_minutes), sum(air_m3),"
        " sum(loaded_flow_sum) / nullif(sum(loaded_minutes), 0),"
        " sum(loaded_kw_sum) / nullif(sum(loaded_kw_minutes), 0)"
        f" FROM ({' UNION ALL '.join(parts)}) t GROUP BY k, meter_id"
    ), params).all()
    for r in rows:
        # A 1-minute bucket's mean flow in m³/min is the air delivered in that minute.
        out[r[0]][r[1]] = (r[3] if r[2] else None, r[5], r[4])
    return out


class Counters:
    """The counter reads behind a site's KPIs, kept for reuse and read in batches.

    Used directly, each figure is one statement, as before. ``prefetch`` runs a dry run of the
    KPI code that only notes what it asks for, then reads all of it in one statement for the
    counters and one for compressor air; the real run then finds everything here. So the windows
    of a dashboard refresh, and the green-purchase periods they share, cost two statements
    instead of dozens, and every figure is the one a window read on its own gets (a request's
    sums do not depend on what else is in its batch). Whatever the dry run did not foresee is
    read on demand.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._energy: dict[CounterRequest, CounterEnergy] = {}
        self._air: dict[AirRequest, AirFigures] = {}
        self._reporting: dict[tuple[tuple[str, ...], str], list[str]] = {}
        self._asked: tuple[list[CounterRequest], list[AirRequest]] | None = None  # in a dry run

    def energy(self, meters: Sequence[str], quantity: str, a: datetime, b: datetime) -> Amount:
        if not meters:
            return Amount()
        req = counter_request(meters, quantity, a, b)
        got = self._energy.get(req)
        if got is None:
            if self._asked is not None:
                self._asked[0].append(req)
                return Amount()
            got = self._energy[req] = counter_energy_many(self.conn, [req])[0]
        return Amount.of(got)

    def air(self, meters: Sequence[str], a: datetime, b: datetime) -> AirFigures:
        if not meters:
            return {}
        req = (tuple(meters), a, b)
        got = self._air.get(req)
        if got is None:
            if self._asked is not None:
                self._asked[1].append(req)
                return {}
            got = self._air[req] = compressor_air_many(self.conn, [req])[0]
        return got

    def reporting(self, meters: Sequence[str], quantity: str) -> list[str]:
        """Those of ``meters`` that have ever reported ``quantity`` (a day rollup holds it), in
        their order. Read for real even in a dry run: what is asked next depends on it."""
        key = (tuple(meters), quantity)
        if key not in self._reporting:
            self.learn([key])
        return self._reporting[key]

    def learn(self, keys: Sequence[tuple[tuple[str, ...], str]]) -> None:
        """Look up ``reporting`` for several (meters, quantity) at once."""
        todo = [k for k in dict.fromkeys(keys) if k not in self._reporting]
        pairs = sorted({(m, q) for meters, q in todo for m in meters})
        found: set[tuple[str, str]] = set()
        if pairs:
            found = {(r[0], r[1]) for r in self.conn.execute(sa.text(
                "SELECT k.m, k.q FROM unnest(CAST(:m AS text[]), CAST(:q AS text[])) AS k(m, q) WHERE EXISTS"
                " (SELECT 1 FROM readings_1d WHERE meter_id = k.m AND quantity = k.q)"),
                {"m": [m for m, _ in pairs], "q": [q for _, q in pairs]})}
        for meters, q in todo:
            self._reporting[(meters, q)] = [m for m in meters if (m, q) in found]

    def prefetch(self, ask: Callable[[], object]) -> None:
        """Run ``ask`` as a dry run (counters read as zero, nothing read but ``reporting``), then
        read everything it asked for in one statement per kind."""
        self._asked = ([], [])
        try:
            ask()
        finally:
            energy, air = self._asked
            self._asked = None
        energy = [r for r in dict.fromkeys(energy) if r not in self._energy]
        if energy:
            self._energy.update(zip(energy, counter_energy_many(self.conn, energy), strict=True))
        air = [r for r in dict.fromkeys(air) if r not in self._air]
        if air:
            self._air.update(zip(air, compressor_air_many(self.conn, air), strict=True))


Source = sa.Connection | Counters


def counters(source: Source) -> Counters:
    """The reads of ``source``: a caller's ``Counters``, or fresh ones on a connection."""
    return source if isinstance(source, Counters) else Counters(source)


def _ids(model: SiteEnergyModel, role: str) -> list[str]:
    return [m.id for m in model.meters_with_role(role)]


def export_meters(model: SiteEnergyModel) -> list[str]:
    """Every meter that may count grid export: grid_export meters and the grid incomers, some of
    which have an export register."""
    return _ids(model, "grid_export") + _ids(model, "grid_import")


def electricity_meters(source: Source, model: SiteEnergyModel) -> tuple[list[str], list[str], list[str]]:
    """(grid import, grid export, PV generation) meters. A grid_export meter counts export, and
    so does a grid incomer's export register — where it has one: an import-only incomer that
    never reported ``active_energy_export`` does not measure it, and is not a meter without data."""
    grid = _ids(model, "grid_import")
    silent = set(grid) - set(counters(source).reporting(grid, "active_energy_export"))
    return grid, [m for m in export_meters(model) if m not in silent], _ids(model, "pv_generation")


def natural_gas_meters(model: SiteEnergyModel) -> list[str]:
    return [m.id for m in model.meters_with_role("boiler_fuel")
            if (m.params.fuel or model.params.boiler_fuel) == "natural_gas"]


def purchased_heat_meters(model: SiteEnergyModel) -> tuple[list[str], list[str]]:
    """(heat meters counting GJ, steam meters counting tonnes) of purchased heat."""
    meters = model.meters_with_role("purchased_heat")
    return ([m.id for m in meters if m.params.heat_carrier != "steam"],
            [m.id for m in meters if m.params.heat_carrier == "steam"])


def series_asked(model: SiteEnergyModel) -> list[tuple[tuple[str, ...], str]]:
    """Every ``Counters.reporting`` question ``gather`` and ``balance`` ask, to ask them at once."""
    return [(tuple(_ids(model, "grid_import")), "active_energy_export"),
            (tuple(natural_gas_meters(model)), "steam_mass")]


def balance(source: Source, model: SiteEnergyModel, a: datetime, b: datetime) -> Balance:
    """The electricity counters alone, e.g. for a green-power purchase period."""
    c = counters(source)
    grid, export, pv = electricity_meters(c, model)
    return Balance(grid_import_kwh=c.energy(grid, "active_energy_import", a, b),
                   grid_export_kwh=c.energy(export, "active_energy_export", a, b),
                   pv_kwh=c.energy(pv, "active_energy_export", a, b))


def gather(source: Source, model: SiteEnergyModel, a: datetime, b: datetime) -> SiteAmounts:
    c = counters(source)
    ids = lambda role: _ids(model, role)  # noqa: E731
    boilers: list[BoilerAmounts] = []
    outputs = model.meters_with_role("boiler_output")
    gas = natural_gas_meters(model)
    # only natural gas has a canonical counter (gas_volume); liquid fuels are not metered yet
    fuel_amounts = {"natural_gas": c.energy(gas, "gas_volume", a, b)} if gas else {}
    own_steam = c.reporting(gas, "steam_mass")  # a fuel meter that counts steam is its own steam meter
    for m in model.meters_with_role("boiler_fuel"):
        fuel = m.params.fuel or model.params.boiler_fuel
        if fuel != "natural_gas":
            continue  # no canonical mass-of-fuel counter yet: liquid fuels are not metered
        steam_meters = [m.id] if m.id in own_steam else [o.id for o in outputs]
        steam = c.energy(steam_meters, "steam_mass", a, b) if steam_meters else None
        boilers.append(BoilerAmounts(m.id, fuel, c.energy([m.id], "gas_volume", a, b), steam))
    heat_ids, steam_ids = purchased_heat_meters(model)
    compressors = []
    air_of = c.air([m.id for m in model.meters_with_role("compressor")], a, b)
    for m in model.meters_with_role("compressor"):
        air, kw, flow = air_of.get(m.id, (None, None, None))
        compressors.append(CompressorAmounts(
            m.id, c.energy([m.id], "active_energy_import", a, b),
            c.energy([m.id], "running_hours", a, b), c.energy([m.id], "loaded_hours", a, b),
            air, kw, flow))
    e = balance(c, model, a, b)
    return SiteAmounts(
        start=a, end=b,
        grid_import_kwh=e.grid_import_kwh, grid_export_kwh=e.grid_export_kwh, pv_kwh=e.pv_kwh,
        fuels=fuel_amounts,
        purchased_heat_gj=c.energy(heat_ids, "heat_energy", a, b),
        purchased_steam_t=c.energy(steam_ids, "steam_mass", a, b),
        recovered_heat_gj=c.energy(ids("heat_recovery"), "heat_energy", a, b),
        compressors=compressors,
        boilers=boilers,
        production=c.energy(ids("production"), "production_count", a, b),
    )
