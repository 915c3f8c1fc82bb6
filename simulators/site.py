"""The demo plant: all equipment models wired together and stepped on one clock."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from simulators import snapshot
from simulators.models.boiler import (
    EFFICIENCY,
    H_FEEDWATER_KJ_KG,
    H_STEAM_KJ_KG,
    NCV_GAS_KJ_M3,
    BoilerState,
    firing_fraction,
    steam_demand_target,
    step_boiler,
)
from simulators.models.calendar import UTC_OFFSET_S, local_day_and_second
from simulators.models.compressor import (
    AMBIENT_C,
    LOADED,
    OFF,
    UNLOADED,
    AirSystemState,
    CompressorSpec,
    CompressorState,
    VfdSpec,
    step_air_system,
)
from simulators.models.distribution import (
    BY_METER,
    SUBMETERS,
    DistributionState,
    energies_kwh,
    load_kw,
    new_distribution_state,
    power_kw,
    step_distribution,
)
from simulators.models.grid import GridState, step_grid
from simulators.models.heat_recovery import (
    CP_WATER,
    DELTA_T_K,
    HeatRecoveryState,
    step_heat_recovery,
)
from simulators.models.production import LINE_1, LineSpec, LineState, scheduled, step_line
from simulators.models.pv import PvSpec, PvState, new_pv_state, step_pv

SITE_ID = "demo-plant"
TIMEZONE = "Asia/Shanghai"
LATITUDE_DEG = 41.8  # Shenyang
LONGITUDE_DEG = 123.4

GRID = "grid-incomer"
PV = "pv-inverter"
COMPRESSOR_1 = "compressor-1"
COMPRESSOR_2 = "compressor-2"
BOILER = "boiler"
HEAT_RECOVERY = "heat-recovery"
LINE = "line-1"
# The sub-meters of the plant's feeders and loads (simulators/models/distribution.py): the main
# feeders and the utilities' meters on the Modbus bus, the workshops' and offices' over MQTT.
DEVICE_IDS = (GRID, PV, COMPRESSOR_1, COMPRESSOR_2, BOILER, HEAT_RECOVERY, LINE, *SUBMETERS)
MODBUS_SUBMETERS = tuple(m for m in SUBMETERS if BY_METER[m].transport == "modbus")
MQTT_SUBMETERS = tuple(m for m in SUBMETERS if BY_METER[m].transport == "mqtt")

PV_SPEC = PvSpec(latitude_deg=LATITUDE_DEG, longitude_deg=LONGITUDE_DEG)
# Lead/lag on one receiver: the lag machine's band sits 0.3 bar lower, so it only runs
# when the lead one cannot hold the pressure on its own.
COMPRESSORS = (
    CompressorSpec(COMPRESSOR_1, rated_kw=75.0, fad_m3min=13.0,
                   unload_bar=7.5, load_bar=6.5, restart_bar=6.3),
    CompressorSpec(COMPRESSOR_2, rated_kw=37.0, fad_m3min=6.0,
                   unload_bar=7.2, load_bar=6.2, restart_bar=6.0),
)
# From the retrofit on, compressor 1 runs on a variable-speed drive (docs/domain.md "Compressed
# air", the VFD model). It stays the lead: its setpoint sits above the lag's unload pressure, so
# the lag still loads only when compressor 1 at full speed cannot hold the pressure, and each
# machine delivers about the air it did for the same demand. It stops at its old unload pressure.
# The heat recovered from its oil cooler falls with its power, so the boiler burns a little more.
VFD_1 = VfdSpec(setpoint_bar=7.3)
COMPRESSORS_RETROFITTED = (replace(COMPRESSORS[0], vfd=VFD_1), COMPRESSORS[1])
# What the retrofit's savings are measured on: compressor 1's energy against the production that
# drives the air demand (the plant has no outdoor temperature to add).
RETROFIT_SERIES = frozenset({(COMPRESSOR_1, "active_energy_import"), (LINE, "production_count")})

# Line 2 (sub-assembly, beside line 1 in workshop A) and line 3 (presses, workshop B, one shift)
# report no production of their own: line 1's counter is the finished product.
LINE_2 = LineSpec(idle_kw=6.0, running_kw=70.0)
LINE_3 = LineSpec(idle_kw=12.0, running_kw=110.0, shift_end_s=16 * 3600.0,
                  mean_time_between_stops_s=3 * 3600.0)

_US = 1_000_000
# 2: the feeders and their sub-meters, lines 2 and 3. A version-1 snapshot resumes with them new.
# 3: compressor 1's retrofit instant (none in older snapshots: it stays fixed speed).
SNAPSHOT_VERSION = 3


def _to_us(t: datetime) -> int:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {t!r}")
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _US + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def local_midnight(day: date) -> datetime:
    """The start of a local day at the plant (Asia/Shanghai, UTC+8 all year)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(seconds=UTC_OFFSET_S)


def local_day(t: datetime) -> date:
    """The plant's local date at instant ``t`` (timezone-aware)."""
    return (_from_us(_to_us(t)) + timedelta(seconds=UTC_OFFSET_S)).date()


def _stream(seed: int, name: str) -> random.Random:
    # String seeds are hashed with SHA-512, so streams do not depend on PYTHONHASHSEED.
    return random.Random(f"lingtan/{seed}/{name}")


class SiteModel:
    """The demo plant's true state, advanced in whole simulated seconds.

    With the default ``max_step=1`` the state at ``start + n`` seconds does not depend on
    how ``advance_to`` calls were spaced: same seed, start and retrofit, same trajectory.

    ``retrofit``: from this instant compressor 1 runs at variable speed (``COMPRESSORS_RETROFITTED``);
    None keeps it at fixed speed. The retrofit draws nothing from the random streams, so the line,
    the air demand and everything upstream of the compressors are the same with or without it.
    """

    def __init__(self, seed: int, start: datetime, *, retrofit: datetime | None = None) -> None:
        self.seed = seed
        self.start_us = _to_us(start)
        self.t_us = self.start_us
        self.retrofit_us = _retrofit_us(retrofit)
        init = _stream(seed, "init")
        weekday, second = local_day_and_second(self.t_us / _US)
        on_shift = scheduled(weekday, second)

        self.line = LineState(rng=_stream(seed, LINE), count=float(init.randint(5_000_000, 20_000_000)),
                              rate_noise=0.0, stop_left_s=0.0)
        self.pv: PvState = new_pv_state(_stream(seed, PV), energy_wh=init.uniform(1.0e9, 1.6e9))
        self.compressors = tuple(
            _new_compressor(spec, init, lead=i == 0, on_shift=on_shift)
            for i, spec in enumerate(COMPRESSORS)
        )
        self.air = AirSystemState(rng=_stream(seed, "air"), pressure_bar=7.0, demand_noise=0.0)
        gas = init.uniform(1.5e6, 3.0e6)
        self.boiler = BoilerState(
            rng=_stream(seed, BOILER), steam_smooth_t_h=steam_demand_target(on_shift), steam_noise=0.0,
            gas_volume_m3=gas,
            steam_mass_t=gas * EFFICIENCY * NCV_GAS_KJ_M3 / (H_STEAM_KJ_KG - H_FEEDWATER_KJ_KG) / 1000.0,
        )
        heat_gj = init.uniform(2000.0, 4000.0)
        self.heat_recovery = HeatRecoveryState(
            rng=_stream(seed, HEAT_RECOVERY), noise=0.0, return_c=38.0, supply_c=48.0 if on_shift else 38.0,
            heat_energy_gj=heat_gj, water_volume_m3=heat_gj * 1e6 / (CP_WATER * DELTA_T_K) / 1000.0,
        )
        imp = round(init.uniform(1.0e6, 1.5e6), 1)
        self.grid = GridState(rng=_stream(seed, GRID), import_kwh=imp,
                              export_kwh=round(init.uniform(2.0e4, 6.0e4), 1),
                              v_noise=[0.0, 0.0, 0.0], hz_noise=0.0, pf_noise=0.0)
        self._new_feeders()
        # A zero-length step fills in the instantaneous outputs without moving the clock.
        self._step(0)

    def _new_feeders(self) -> None:
        """What version 2 added: its own streams, so the rest of the plant starts as before."""
        self.line_2 = LineState(rng=_stream(self.seed, "line-2"), count=0.0, rate_noise=0.0, stop_left_s=0.0)
        self.line_3 = LineState(rng=_stream(self.seed, "line-3"), count=0.0, rate_noise=0.0, stop_left_s=0.0)
        self.distribution = new_distribution_state(_stream(self.seed, "distribution"),
                                                   _stream(self.seed, "init/distribution"))

    @property
    def now(self) -> datetime:
        return _from_us(self.t_us)

    @property
    def start(self) -> datetime:
        return _from_us(self.start_us)

    @property
    def retrofit(self) -> datetime | None:
        return None if self.retrofit_us is None else _from_us(self.retrofit_us)

    @property
    def compressor_specs(self) -> tuple[CompressorSpec, ...]:
        """The compressors as they are now: compressor 1 at variable speed from the retrofit on."""
        r = self.retrofit_us
        return COMPRESSORS if r is None or self.t_us < r else COMPRESSORS_RETROFITTED

    def advance_to(self, t: datetime, *, max_step: int = 1) -> int:
        """Step whole seconds up to ``t`` (a remainder under 1 s waits for the next call).

        ``max_step`` > 1 takes coarser steps for long gaps (e.g. 60 to catch up on a day
        in well under a second): counters still integrate exactly what the coarse steps
        report, but the trajectory then differs from the 1-s one. Returns steps taken.
        """
        if max_step < 1:
            raise ValueError("max_step must be >= 1 second")
        target = _to_us(t)
        if target < self.t_us:
            raise ValueError(f"cannot go back in time: model is at {self.now}, asked for {t}")
        remaining = (target - self.t_us) // _US
        steps = 0
        step = self._step
        # A step never straddles the retrofit: the compressors switch at that second whatever
        # the step size.
        r = self.retrofit_us
        before = -1 if r is None or r <= self.t_us else -(-(r - self.t_us) // _US)
        while remaining > 0:
            dt = max_step if remaining > max_step else remaining
            if 0 < before < dt:
                dt = before
            step(dt)
            remaining -= dt
            before -= dt
            steps += 1
        return steps

    def _step(self, dt: int) -> None:
        epoch_s = self.t_us / _US
        weekday, second = local_day_and_second(epoch_s)
        line, line_2, line_3 = self.line, self.line_2, self.line_3
        step_line(line, weekday, second, dt)
        step_line(line_2, weekday, second, dt, LINE_2)
        step_line(line_3, weekday, second, dt, LINE_3)
        pv = self.pv
        step_pv(PV_SPEC, pv, epoch_s, dt)
        step_air_system(self.compressor_specs, self.compressors, self.air, line.running, dt)
        c1, c2 = self.compressors
        step_heat_recovery(self.heat_recovery, c1.power_kw, dt)
        step_boiler(self.boiler, line.running, self.heat_recovery.heat_kw, dt)
        dist = self.distribution
        step_distribution(
            dist, epoch_s=epoch_s, weekday=weekday, second_of_day=second,
            lines_above_idle_kw=(line.power_kw - LINE_1.idle_kw, line_2.power_kw - LINE_2.idle_kw,
                                 line_3.power_kw - LINE_3.idle_kw),
            compressors_kw=(c1.power_kw, c2.power_kw), air_m3min=c1.air_flow_m3min + c2.air_flow_m3min,
            firing=firing_fraction(self.boiler), irradiance_wm2=pv.irradiance_wm2, dt=dt)
        step_grid(self.grid, load_kw(dist), pv.power_kw, dt)
        self.t_us += dt * _US

    def truth(self, *, sub_meters: bool = True) -> dict[tuple[str, str], float]:
        """Current true values by (device id, quantity), in canonical units; without the
        sub-meters' when ``sub_meters`` is False (they are most of the cost)."""
        g, pv, b, hr, ln = self.grid, self.pv, self.boiler, self.heat_recovery, self.line
        out: dict[tuple[str, str], float] = {
            (GRID, "active_power"): g.power_kw,
            (GRID, "active_energy_import"): g.import_kwh,
            (GRID, "active_energy_export"): g.export_kwh,
            (GRID, "voltage"): g.voltage_v[0],
            (GRID, "current"): g.current_a[0],
            (GRID, "frequency"): g.frequency_hz,
            (GRID, "power_factor"): g.power_factor,
            (PV, "active_power"): pv.power_kw,
            (PV, "active_energy_export"): pv.energy_wh / 1000.0,
            (PV, "state"): float(pv.status),
            (BOILER, "gas_flow"): b.gas_flow_m3_h,
            (BOILER, "gas_volume"): b.gas_volume_m3,
            (BOILER, "steam_flow"): b.steam_flow_t_h,
            (BOILER, "steam_mass"): b.steam_mass_t,
            (HEAT_RECOVERY, "heat_power"): hr.heat_kw,
            (HEAT_RECOVERY, "heat_energy"): hr.heat_energy_gj,
            (HEAT_RECOVERY, "water_volume"): hr.water_volume_m3,
            (HEAT_RECOVERY, "temperature"): hr.supply_c,
            (LINE, "production_count"): float(math.floor(ln.count)),
            (LINE, "state"): 1.0 if ln.running else 0.0,
            (LINE, "active_power"): ln.power_kw,
        }
        for spec, c in zip(COMPRESSORS, self.compressors, strict=True):
            d = spec.device_id
            out[(d, "active_power")] = c.power_kw
            out[(d, "air_flow")] = c.air_flow_m3min
            out[(d, "air_pressure")] = self.air.pressure_bar
            out[(d, "state")] = float(c.state)
            out[(d, "running_hours")] = c.running_h
            out[(d, "loaded_hours")] = c.loaded_h
            out[(d, "active_energy_import")] = c.energy_kwh
            out[(d, "temperature")] = c.temperature_c
        if sub_meters:
            for meter, (kw, kwh) in self.submeters().items():
                out[(meter, "active_power")] = kw
                out[(meter, "active_energy_import")] = kwh
        return out

    def submeters(self) -> dict[str, tuple[float, float]]:
        """Each sub-meter's (power kW over the last step, import counter kWh)."""
        dist = self.distribution
        return {meter: (power_kw(dist, meter), kwh)
                for meter, kwh in zip(SUBMETERS, energies_kwh(dist), strict=True)}

    def balance(self) -> dict[str, float]:
        """The site's electrical balance over the last step, kW (not metered as such)."""
        dist = self.distribution
        return {
            "feeders_kw": dist.feeders_kw,
            "losses_kw": dist.losses_kw,
            "unmetered_kw": dist.unmetered_kw,
            "load_kw": self.grid.load_kw,
            "pv_kw": self.pv.power_kw,
            "grid_kw": self.grid.power_kw,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot; ``from_dict`` resumes it exactly."""
        return {
            "version": SNAPSHOT_VERSION,
            "site": SITE_ID,
            "seed": self.seed,
            "start_us": self.start_us,
            "t_us": self.t_us,
            "retrofit_us": self.retrofit_us,
            "line": snapshot.dump(self.line),
            "pv": snapshot.dump(self.pv),
            "compressors": [snapshot.dump(c) for c in self.compressors],
            "air": snapshot.dump(self.air),
            "boiler": snapshot.dump(self.boiler),
            "heat_recovery": snapshot.dump(self.heat_recovery),
            "grid": snapshot.dump(self.grid),
            "line_2": snapshot.dump(self.line_2),
            "line_3": snapshot.dump(self.line_3),
            "distribution": snapshot.dump(self.distribution),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteModel:
        version = data.get("version")
        if version not in (1, 2, SNAPSHOT_VERSION) or data.get("site") != SITE_ID:
            raise ValueError(
                f"not a {SITE_ID} snapshot of version 1 to {SNAPSHOT_VERSION}: "
                f"site={data.get('site')!r} version={data.get('version')!r}"
            )
        model = cls.__new__(cls)
        model.seed = int(data["seed"])
        model.start_us = int(data["start_us"])
        model.t_us = int(data["t_us"])
        retrofit_us = data.get("retrofit_us")
        model.retrofit_us = None if retrofit_us is None else int(retrofit_us)
        model.line = snapshot.load(LineState, data["line"])
        model.pv = snapshot.load(PvState, data["pv"])
        model.compressors = tuple(snapshot.load(CompressorState, c) for c in data["compressors"])
        model.air = snapshot.load(AirSystemState, data["air"])
        model.boiler = snapshot.load(BoilerState, data["boiler"])
        model.heat_recovery = snapshot.load(HeatRecoveryState, data["heat_recovery"])
        model.grid = snapshot.load(GridState, data["grid"])
        if len(model.compressors) != len(COMPRESSORS):
            raise ValueError(f"snapshot has {len(model.compressors)} compressors, expected 2")
        if version == 1:
            # The plant's meters keep counting; the sub-meters are installed now.
            model._new_feeders()
            model._step(0)
        else:
            model.line_2 = snapshot.load(LineState, data["line_2"])
            model.line_3 = snapshot.load(LineState, data["line_3"])
            model.distribution = snapshot.load(DistributionState, data["distribution"])
            if len(model.distribution.start_kwh) != len(SUBMETERS):
                raise ValueError(f"snapshot has {len(model.distribution.start_kwh)} sub-meters, "
                                 f"expected {len(SUBMETERS)}")
        return model


def _retrofit_us(retrofit: datetime | None) -> int | None:
    if retrofit is None:
        return None
    if retrofit.tzinfo is None or retrofit.utcoffset() is None:
        raise ValueError(f"retrofit must be timezone-aware, got {retrofit!r}")
    return _to_us(retrofit)


def _new_compressor(spec: CompressorSpec, init: random.Random, *, lead: bool,
                    on_shift: bool) -> CompressorState:
    running_h = init.uniform(15000.0, 25000.0) if lead else init.uniform(8000.0, 15000.0)
    loaded_h = running_h * (init.uniform(0.65, 0.8) if lead else init.uniform(0.4, 0.6))
    energy = loaded_h * spec.rated_kw + (running_h - loaded_h) * spec.rated_kw * spec.unloaded_share
    if lead:
        state, temp = (LOADED, 84.0) if on_shift else (UNLOADED, 72.0)
    else:
        state, temp = OFF, AMBIENT_C
    return CompressorState(state=state, unloaded_s=0.0, temperature_c=temp,
                           running_h=running_h, loaded_h=loaded_h, energy_kwh=energy)
