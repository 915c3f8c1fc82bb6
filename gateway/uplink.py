"""The uplink payload: a batch of readings a gateway publishes to the central broker.

Version 1 is compact JSON, dictionary-coded so a batch of thousands of readings of a few
meters and quantities repeats no strings:

    {"v": 1, "g": "gw-1", "s": "plant-a", "t": 1763596800000000,
     "m": ["main-incomer", "comp-1"], "q": ["active_power", "air_flow"],
     "r": [[0, 0, 0, 412.5, 0], [1000000, 1, 1, 7.5, 0], ...]}

``t`` is the batch's base time in microseconds since the Unix epoch; each row is
``[time offset µs, meter index, quantity index, value, quality flags]``. Microseconds keep the
reading key (meter, quantity, time) identical to what a direct PostgreSQL gateway stores, so a
replayed batch lands on the same rows. Non-finite values, which JSON cannot carry, travel as
the strings "NaN", "Infinity", "-Infinity". Readers reject any other ``v``.

End-to-end acknowledgement: a batch may carry ``"b"``, its id — a hash of the batch's own
content, so every copy of the same batch has the same id and an acknowledgement of any copy
confirms all of them. An ingest worker publishes ``{"v": 1, "b": id}`` on the gateway's ack
topic (``ack_topic``) only after the batch's readings are committed in PostgreSQL; the gateway
keeps the batch in its buffer until then and sends it again while no acknowledgement comes
(docs/architecture.md). Ack topics lie outside the uplink filter, so workers never read them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lingtan.kernel.quantities import get_quantity
from lingtan.kernel.reading import Reading

VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class UplinkError(ValueError):
    """A payload this version of the codec cannot accept; the reason names what is wrong."""


@dataclass(frozen=True)
class Batch:
    gateway: str
    site: str
    readings: list[Reading]
    id: str | None = None  # set when the gateway waits for an end-to-end acknowledgement


def ack_topic(site: str, gateway: str) -> str:
    return f"lingtan/ack/v1/{site}/{gateway}"


def _us(t: datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _value_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def encode(gateway: str, site: str, readings: list[Reading]) -> bytes:
    meters: dict[str, int] = {}
    quantities: dict[str, int] = {}
    base = min((_us(r.time) for r in readings), default=0)
    rows = [
        [_us(r.time) - base, meters.setdefault(r.meter_id, len(meters)),
         quantities.setdefault(r.quantity, len(quantities)), _value_out(r.value), int(r.quality)]
        for r in readings
    ]
    doc = {"v": VERSION, "g": gateway, "s": site, "t": base, "m": list(meters), "q": list(quantities),
           "r": rows}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def encode_batch(gateway: str, site: str, readings: list[Reading]) -> tuple[str, bytes]:
    """``(id, payload)`` of a batch that asks for an end-to-end acknowledgement."""
    body = encode(gateway, site, readings)
    batch_id = hashlib.blake2b(body, digest_size=12).hexdigest()
    return batch_id, b'{"b":"' + batch_id.encode() + b'",' + body[1:]


def encode_ack(batch_id: str) -> bytes:
    return json.dumps({"v": VERSION, "b": batch_id}, separators=(",", ":")).encode()


def decode_ack(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UplinkError(f"acknowledgement is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != VERSION or not isinstance(doc.get("b"), str):
        raise UplinkError(f"not an acknowledgement of version {VERSION}: {payload[:100]!r}")
    return doc["b"]


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UplinkError(f"{what} must be an integer, got {value!r}")
    return value


def _strings(doc: dict[str, Any], key: str) -> list[str]:
    items = doc.get(key)
    if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
        raise UplinkError(f"`{key}` must be a list of non-empty strings")
    return items


def decode(payload: bytes) -> Batch:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UplinkError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UplinkError("not a JSON object")
    if doc.get("v") != VERSION:
        raise UplinkError(f"unsupported payload version {doc.get('v')!r} (this reader knows {VERSION})")
    gateway, site = doc.get("g"), doc.get("s")
    if not isinstance(gateway, str) or not isinstance(site, str):
        raise UplinkError("`g` (gateway) and `s` (site) must be strings")
    base = _int(doc.get("t"), "`t`")
    meters, quantities = _strings(doc, "m"), _strings(doc, "q")
    for q in quantities:
        try:
            get_quantity(q)
        except Exception:
            raise UplinkError(f"unknown quantity {q!r}") from None
    rows = doc.get("r")
    if not isinstance(rows, list):
        raise UplinkError("`r` must be a list of rows")
    readings = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 5:
            raise UplinkError(f"r[{i}] must be [offset_us, meter, quantity, value, quality]")
        offset, mi, qi, value, quality = row
        offset, mi, qi, quality = (_int(offset, f"r[{i}] offset"), _int(mi, f"r[{i}] meter"),
                                   _int(qi, f"r[{i}] quantity"), _int(quality, f"r[{i}] quality"))
        if not (0 <= mi < len(meters) and 0 <= qi < len(quantities)):
            raise UplinkError(f"r[{i}] refers to a meter or quantity that is not listed")
        if isinstance(value, str) and value in _NON_FINITE:
            value = _NON_FINITE[value]
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise UplinkError(f"r[{i}] value {value!r} is not a number")
        try:
            at = _EPOCH + timedelta(microseconds=base + offset)
        except OverflowError:
            raise UplinkError(f"r[{i}] time is out of range") from None
        readings.append(Reading(at, meters[mi], quantities[qi], float(value), quality))
    batch_id = doc.get("b")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id):
        raise UplinkError("`b` (batch id) must be a non-empty string")
    return Batch(gateway, site, readings, batch_id)
