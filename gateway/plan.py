"""Read planning: merge nearby registers of one table into as few requests as possible."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Device, GatewayConfig, Point

FUNCTION_CODES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
MAX_BITS = 2000


@dataclass(frozen=True)
class Slot:
    """One thing read from a block: a point's value, or a SunSpec scale-factor register."""

    point: Point
    address: int  # absolute register address
    sf_address: int | None = None  # absolute address of its scale factor, if any


@dataclass
class ReadBlock:
    table: str
    start: int
    count: int
    slots: list[Slot] = field(default_factory=list)

    @property
    def function_code(self) -> int:
        return FUNCTION_CODES[self.table]


def resolve_slots(device: Device, model_bases: dict[int, int] | None = None) -> list[Slot]:
    """Absolute addresses; SunSpec offsets need the model chain walked at connect time."""
    slots = []
    for point in device.points:
        assert point.address is not None
        if point.model is None:
            slots.append(Slot(point, point.address))
            continue
        if model_bases is None or point.model not in model_bases:
            continue  # model absent on this device: its points cannot be read
        base = model_bases[point.model]
        sf = None if point.scale_factor is None else base + point.scale_factor
        slots.append(Slot(point, base + point.address, sf))
    return slots


def plan_reads(slots: list[Slot], max_registers: int = 125, max_gap: int = 10) -> list[ReadBlock]:
    spans: list[tuple[str, int, int, Slot | None]] = []
    for slot in slots:
        spans.append((slot.point.table, slot.address, slot.point.register_count, slot))
        if slot.sf_address is not None:
            spans.append((slot.point.table, slot.sf_address, 1, None))
    blocks: list[ReadBlock] = []
    for table in ("holding", "input", "coil", "discrete"):
        limit = MAX_BITS if table in ("coil", "discrete") else max_registers
        current: ReadBlock | None = None
        for _, start, count, slot in sorted((s for s in spans if s[0] == table), key=lambda s: s[1]):
            end = start + count
            if current is not None:
                gap = start - (current.start + current.count)
                new_count = max(current.count, end - current.start)
                if gap <= max_gap and new_count <= limit:
                    current.count = new_count
                    if slot is not None:
                        current.slots.append(slot)
                    continue
            current = ReadBlock(table, start, count, [slot] if slot is not None else [])
            blocks.append(current)
    return blocks


def describe_plan(cfg: GatewayConfig) -> str:
    """What `lingtan gateway check` prints."""
    lines = [f"gateway {cfg.gateway.id} (site {cfg.gateway.site}): {len(cfg.devices)} devices"]
    for device in cfg.devices:
        if device.protocol == "mqtt":
            points = ", ".join(f"{p.quantity}←{p.path}" for p in device.points)
            lines.append(f"  {device.id}  mqtt topic {device.topic}  points: {points}")
            continue
        endpoint = device.serial.port if device.serial and device.protocol == "modbus-rtu" \
            else f"{device.host}:{device.port}"
        where = f"{endpoint} unit {device.unit}, every {device.poll:g}s"
        lines.append(f"  {device.id}  {device.protocol} {where}")
        if device.sunspec:
            lines.append(
                f"    SunSpec: model chain walked from {device.sunspec_base} at connect;"
                " offsets shown relative to each model"
            )
            bases = {p.model: 0 for p in device.points if p.model is not None}
            blocks = plan_reads(resolve_slots(device, bases), device.max_registers, device.max_gap)
        else:
            blocks = plan_reads(resolve_slots(device), device.max_registers, device.max_gap)
        for block in blocks:
            served = ", ".join(s.point.quantity for s in block.slots)
            last = block.start + block.count - 1
            lines.append(
                f"    FC{block.function_code:02d} {block.table:8} {block.start:#06x}-{last:#06x}"
                f" ({block.count} regs)  {served}"
            )
    return "\n".join(lines)
