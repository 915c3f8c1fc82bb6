"""The gateway configuration schema (pydantic) and its YAML loader with line-precise errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.durations import parse_duration, parse_size
from gateway.profiles import ProfileError, load_profile
from gateway.yamlmarks import Loc, line_for, load_with_lines
from lingtan.quantities import UnitError, conversion, get_quantity

DataType = Literal[
    "int16", "uint16", "int32", "uint32", "int64", "uint64",
    "float32", "float64", "acc32", "string", "bool",
]
Table = Literal["holding", "input", "coil", "discrete"]
Order = Literal["big", "little"]

REGISTERS_PER_TYPE: dict[str, int] = {
    "int16": 1, "uint16": 1, "bool": 1,
    "int32": 2, "uint32": 2, "float32": 2, "acc32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}


class ConfigError(ValueError):
    """A config problem, already formatted with file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Point(_Strict):
    quantity: str
    unit: str | None = None
    counter: bool | None = None
    scale: float = 1.0
    offset: float = 0.0
    # Modbus
    table: Table = "holding"
    address: int | None = Field(default=None, ge=0, le=65535)
    datatype: DataType = "uint16"
    length: int | None = Field(default=None, ge=1, le=125, description="registers, for strings")
    word_order: Order = "big"
    byte_order: Order = "big"
    # SunSpec: address is the offset inside `model`; the scale factor register is another offset
    model: int | None = None
    scale_factor: int | None = None
    # MQTT
    path: str | None = None

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, value: str) -> str:
        get_quantity(value)
        return value

    @model_validator(mode="after")
    def _unit_fits(self) -> Point:
        conversion(self.unit, self.quantity)
        if self.counter is None:
            self.counter = get_quantity(self.quantity).counter
        if self.datatype == "string" and not self.length:
            raise ValueError("a string point needs `length` (registers)")
        return self

    @property
    def register_count(self) -> int:
        if self.datatype == "string":
            return int(self.length or 1)
        return 1 if self.table in ("coil", "discrete") else REGISTERS_PER_TYPE[self.datatype]


class GatewayInfo(_Strict):
    id: str = Field(min_length=1)
    site: str = Field(min_length=1)
    site_name: str | None = None


class BufferConfig(_Strict):
    path: Path = Path("./var/buffer.db")
    max_bytes: int = 2 * 10**9

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)


class SinkConfig(_Strict):
    type: Literal["postgres"]
    batch: int = Field(default=5000, ge=1)


class Device(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str | None = None
    role: str | None = None
    protocol: Literal["modbus-tcp", "mqtt"]
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255)
    poll: float = 5.0
    timeout: float = 2.0
    profile: str | None = None
    topic: str | None = None
    timestamp: dict[str, str] | None = None
    sunspec_base: int = 40000
    max_registers: int = Field(default=125, ge=1, le=125)
    max_gap: int = Field(default=10, ge=0, le=124)
    points: list[Point] = Field(default_factory=list)

    @field_validator("poll", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be longer than 0 s")
        return seconds

    @model_validator(mode="after")
    def _protocol_fields(self) -> Device:
        if self.protocol == "modbus-tcp":
            if not self.host:
                raise ValueError("a modbus-tcp device needs `host`")
            for i, point in enumerate(self.points):
                if point.address is None:
                    raise ValueError(f"points[{i}] ({point.quantity}) needs `address`")
        if self.protocol == "mqtt":
            if not self.topic:
                raise ValueError("an mqtt device needs `topic`")
            for i, point in enumerate(self.points):
                if not point.path:
                    raise ValueError(f"points[{i}] ({point.quantity}) needs a JSON `path`")
        if not self.points:
            raise ValueError("has no points: give `profile` or `points`")
        return self

    @property
    def sunspec(self) -> bool:
        return any(p.model is not None for p in self.points)


class GatewayConfig(_Strict):
    gateway: GatewayInfo
    buffer: BufferConfig = Field(default_factory=BufferConfig)
    sinks: list[SinkConfig] = Field(default_factory=lambda: [SinkConfig(type="postgres")])
    devices: list[Device] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> GatewayConfig:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is used twice")
            seen.add(device.id)
        return self


def _expand_profiles(data: dict[str, Any], lines: dict[Loc, int], source: str) -> None:
    """Replace `profile:` by the profile's points (device points come after and may add more)."""
    for i, device in enumerate(data.get("devices") or []):
        if not isinstance(device, dict) or not device.get("profile"):
            continue
        try:
            profile = load_profile(str(device["profile"]))
        except ProfileError as exc:
            line = line_for(("devices", i, "profile"), lines)
            raise ConfigError(
                f"{source}:{line}: devices[{i}] ({device.get('id', '?')}) profile: {exc}"
            ) from None
        device["points"] = [dict(p) for p in profile.points] + list(device.get("points") or [])
        for key, value in profile.defaults.items():
            device.setdefault(key, value)


def _describe(loc: Loc, data: Any) -> str:
    """`devices[1] (line-2-meter) points[0].unit` for a pydantic location."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            if isinstance(node, dict) and "id" in node:
                out += f" ({node['id']})"
            elif isinstance(node, dict) and "quantity" in node:
                out += f" ({node['quantity']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def parse_config(text: str, source: str = "<config>") -> GatewayConfig:
    try:
        data, lines = load_with_lines(text)
    except Exception as exc:  # yaml.YAMLError carries its own line info
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping with `gateway` and `devices`")
    _expand_profiles(data, lines, source)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            line = line_for(loc, lines)
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{line}: {_describe(loc, data)}: {msg}")
        raise ConfigError("\n".join(problems)) from None
    except UnitError as exc:  # raised outside pydantic's wrapping in rare paths
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return parse_config(text, str(path))
