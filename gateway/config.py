"""The gateway configuration schema (pydantic) and its YAML loader with line-precise errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.durations import parse_duration, parse_size
from gateway.profiles import ProfileError, load_profile
from lingtan.kernel.quantities import UnitError, conversion, get_quantity
from lingtan.kernel.yamlmarks import Loc, line_for, load_with_lines

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
    # Validation: values outside [min, max] are flagged OUT_OF_RANGE (still stored)
    min: float | None = None
    max: float | None = None
    # Transformer ratios: the value is multiplied by these device params, e.g. [ct_ratio, pt_ratio]
    ratios: list[str] = Field(default_factory=list)
    # One bit of a register (0 = least significant), for status words
    bit: int | None = Field(default=None, ge=0, le=15)
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
    # What a full buffer gives up: the oldest readings (default) or the newest ones.
    when_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)


class SinkConfig(_Strict):
    type: Literal["postgres", "mqtt"]
    # Readings per commit. Larger batches amortise the commit and the rollup marks (the ingest
    # benchmark: 5,000 → 0.42 × raw COPY, 20,000 → 0.63 ×); at low rates a batch is simply
    # whatever is pending, so this adds no latency.
    batch: int = Field(default=20_000, ge=1)
    # mqtt uplink only; the URL defaults to LINGTAN_MQTT_URL
    url: str | None = None
    topic: str = "lingtan/v1/{site}/{gateway}/readings"
    # mqtt uplink: a batch no ingest worker acknowledged within this time is sent again
    ack_timeout: float = 30.0
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @field_validator("ack_timeout", mode="before")
    @classmethod
    def _ack_timeout(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be longer than 0 s")
        return seconds

    @model_validator(mode="after")
    def _uplink_batch(self) -> SinkConfig:
        # an uplink batch is one MQTT message: keep it a few tens of kB unless told otherwise
        if self.type == "mqtt" and "batch" not in self.model_fields_set:
            self.batch = 2000
        return self


class SerialConfig(_Strict):
    port: str = Field(min_length=1, description="e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class HealthConfig(_Strict):
    listen: str | None = Field(default="127.0.0.1:9108", description="host:port for /metrics")
    heartbeat: float = 30.0

    @field_validator("heartbeat", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class Device(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str | None = None
    role: str | None = None
    protocol: Literal["modbus-tcp", "modbus-rtu", "modbus-rtu-over-tcp", "mqtt"]
    host: str | None = None
    serial: SerialConfig | None = None
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
    # Values for the profile's parameters, e.g. {ct_ratio: 40, pt_ratio: 1}
    params: dict[str, float] = Field(default_factory=dict)
    # Validation: a counter step above rated power × elapsed time is a spike, not energy
    rated_power_kw: float | None = Field(default=None, gt=0)
    # A value unchanged for longer than this is flagged STALE
    stale_after: float | None = None
    # MQTT: take the device id from this topic segment (0-based) of a wildcard topic
    device_id_from_topic: int | None = Field(default=None, ge=0)
    points: list[Point] = Field(default_factory=list)

    @field_validator("poll", "timeout", "stale_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be longer than 0 s")
        return seconds

    @model_validator(mode="after")
    def _protocol_fields(self) -> Device:
        if self.protocol in ("modbus-tcp", "modbus-rtu-over-tcp") and not self.host:
            raise ValueError(f"a {self.protocol} device needs `host`")
        if self.protocol == "modbus-rtu" and self.serial is None:
            raise ValueError("a modbus-rtu device needs `serial: {port: /dev/ttyUSB0, baudrate: …}`")
        if self.protocol.startswith("modbus"):
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
        for i, point in enumerate(self.points):
            missing = [r for r in point.ratios if r not in self.params]
            if missing:
                raise ValueError(f"points[{i}] ({point.quantity}) needs params {missing}")
        return self

    @property
    def sunspec(self) -> bool:
        return any(p.model is not None for p in self.points)


class GatewayConfig(_Strict):
    gateway: GatewayInfo
    # Extra folders of profile YAML files, searched before the built-in ones
    profile_dirs: list[Path] = Field(default_factory=list)
    health: HealthConfig = Field(default_factory=HealthConfig)
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


def _expand_profiles(data: dict[str, Any], lines: dict[Loc, int], source: str,
                     base_dir: Path) -> None:
    """Replace `profile:` by the profile's points (device points come after and may add more)."""
    # profile folders are relative to the config file, so a site folder can travel as a whole
    dirs = tuple(base_dir / d for d in (data.get("profile_dirs") or []) if isinstance(d, str))
    for i, device in enumerate(data.get("devices") or []):
        if not isinstance(device, dict) or not device.get("profile"):
            continue
        try:
            profile = load_profile(str(device["profile"]), dirs)
        except ProfileError as exc:
            line = line_for(("devices", i, "profile"), lines)
            raise ConfigError(
                f"{source}:{line}: devices[{i}] ({device.get('id', '?')}) profile: {exc}"
            ) from None
        device["points"] = [dict(p) for p in profile.points] + list(device.get("points") or [])
        for key, value in profile.defaults.items():
            device.setdefault(key, value)
        if profile.params:
            given = device.get("params") if isinstance(device.get("params"), dict) else {}
            device["params"] = {**profile.params, **given}


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


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> GatewayConfig:
    try:
        data, lines = load_with_lines(text)
    except Exception as exc:  # yaml.YAMLError carries its own line info
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the config must be a mapping with `gateway` and `devices`")
    _expand_profiles(data, lines, source, base_dir or Path.cwd())
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
    return parse_config(text, str(path), path.parent)
