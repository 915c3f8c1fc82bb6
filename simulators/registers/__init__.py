"""Modbus register images of the demo plant's meters, as the gateway reads them.

``device_images(model)`` → {unit id: {table: {first address: registers}}}, tables
``"input"`` (FC04) and ``"holding"`` (FC03), 0-based addresses. All units sit on one
RS-485 bus behind one Modbus TCP gateway: the plant's equipment on units 1–6, the main feeders'
and the utilities' SDM630 sub-meters from unit 7 on. The layout (units, tables, block starts and
lengths) never changes; only register values do.
"""

from __future__ import annotations

from simulators.registers import boiler, compressor, sdm630, sunspec, tuf2000m
from simulators.site import (
    BOILER,
    COMPRESSOR_1,
    COMPRESSOR_2,
    GRID,
    HEAT_RECOVERY,
    MODBUS_SUBMETERS,
    PV,
    SiteModel,
)

Image = dict[int, dict[str, dict[int, list[int]]]]

UNITS: dict[int, str] = {
    1: GRID,
    2: PV,
    3: COMPRESSOR_1,
    4: COMPRESSOR_2,
    5: BOILER,
    6: HEAT_RECOVERY,
    **{7 + i: meter for i, meter in enumerate(MODBUS_SUBMETERS)},
}
UNIT_OF: dict[str, int] = {device: unit for unit, device in UNITS.items()}
FUNCTION_CODES: dict[str, int] = {"holding": 3, "input": 4}


def device_images(model: SiteModel) -> Image:
    g = model.grid
    c1, c2 = model.compressors
    p = model.air.pressure_bar
    images: Image = {
        1: sdm630.image(g),
        2: sunspec.image(model.pv, model.seed, 2, g.voltage_v[0], g.frequency_hz),
        3: compressor.image(c1, p),
        4: compressor.image(c2, p),
        5: boiler.image(model.boiler),
        6: tuf2000m.image(model.heat_recovery),
    }
    readings = model.submeters()
    for meter in MODBUS_SUBMETERS:
        kw, kwh = readings[meter]
        images[UNIT_OF[meter]] = sdm630.meter_image(kw, kwh, g.voltage_v, g.frequency_hz)
    return images
