"""The canonical quantity vocabulary and unit conversion (pint).

Every reading is stored in its quantity's canonical unit; anything a meter reports is
converted here, and a unit that does not fit the quantity is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pint

_ureg = pint.UnitRegistry()
# Reactive power gets its own dimension so that "var" can never be mistaken for "W".
_ureg.define("var = [reactive_power]")
_ureg.define("kvar = 1000 * var")
_ureg.define("m3 = meter ** 3")
_ureg.define("Nm3 = meter ** 3")
_ureg.define("units = [production]")
_ureg.define("code = [state]")
# The one registry every component converts with, so the project's extra units mean the same
# everywhere.
ureg = _ureg


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str  # canonical unit, as stored
    counter: bool = False


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in [
        Quantity("active_power", "kW"),
        Quantity("active_energy_import", "kWh", counter=True),
        Quantity("active_energy_export", "kWh", counter=True),
        Quantity("reactive_power", "kvar"),
        Quantity("voltage", "V"),
        Quantity("current", "A"),
        Quantity("frequency", "Hz"),
        Quantity("power_factor", "dimensionless"),
        Quantity("gas_flow", "m3/h"),
        Quantity("gas_volume", "m3", counter=True),
        Quantity("steam_flow", "t/h"),
        Quantity("steam_mass", "t", counter=True),
        Quantity("heat_power", "kW"),
        Quantity("heat_energy", "GJ", counter=True),
        Quantity("air_flow", "m3/min"),
        Quantity("air_pressure", "bar"),
        Quantity("temperature", "degC"),
        Quantity("water_volume", "m3", counter=True),
        Quantity("production_count", "units", counter=True),
        Quantity("running_hours", "h", counter=True),
        Quantity("loaded_hours", "h", counter=True),
        Quantity("state", "code"),
    ]
}
# the quantities that are cumulative counters (energy is derived from their steps)
COUNTERS = frozenset(q.name for q in QUANTITIES.values() if q.counter)


class UnitError(ValueError):
    """A unit that is unknown or does not fit the quantity."""


_SUPERSCRIPTS = str.maketrans({"²": "2", "³": "3"})


def quantity(value: float, unit: str) -> pint.Quantity:
    """``value`` in ``unit`` as people write it on an invoice: "m³" and "Nm³" as well as "m3".

    pint reads "Nm³" as newton-metre cubed, so superscripts become plain digits first.
    """
    return _ureg.Quantity(value, unit.strip().translate(_SUPERSCRIPTS))


def get_quantity(name: str) -> Quantity:
    try:
        return QUANTITIES[name]
    except KeyError:
        known = ", ".join(sorted(QUANTITIES))
        raise UnitError(f"unknown quantity {name!r} (known: {known})") from None


@lru_cache(maxsize=512)
def conversion(unit: str | None, quantity: str) -> tuple[float, float]:
    """(factor, offset) so that canonical = value * factor + offset.

    ``unit`` None means the value is already in the canonical unit.
    """
    q = get_quantity(quantity)
    if unit is None or unit == q.unit:
        return 1.0, 0.0
    try:
        src = _ureg.parse_units(unit)
    except (pint.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc
    dst = _ureg.parse_units(q.unit)
    if src.dimensionality != dst.dimensionality:
        raise UnitError(
            f"unit {unit!r} does not fit quantity {quantity!r} (canonical unit {q.unit!r})"
        )
    zero = _ureg.Quantity(0.0, src).to(dst).magnitude
    one = _ureg.Quantity(1.0, src).to(dst).magnitude
    return one - zero, zero


def to_canonical(value: float, unit: str | None, quantity: str) -> float:
    factor, offset = conversion(unit, quantity)
    return value * factor + offset
