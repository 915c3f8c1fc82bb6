"""JSON-safe snapshots of model state dataclasses, random streams included.

Floats survive a JSON round trip exactly (``repr`` is shortest round-trip), so a model
restored from a snapshot continues bit-for-bit where the original would have gone.
"""

from __future__ import annotations

import random
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")
_RNG_KEY = "__rng__"


def rng_to_json(rng: random.Random) -> dict[str, Any]:
    version, internal, gauss_next = rng.getstate()
    return {_RNG_KEY: [version, list(internal), gauss_next]}


def rng_from_json(data: dict[str, Any]) -> random.Random:
    version, internal, gauss_next = data[_RNG_KEY]
    rng = random.Random()
    rng.setstate((version, tuple(internal), gauss_next))
    return rng


def dump(state: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(state):  # type: ignore[arg-type]
        value = getattr(state, f.name)
        if isinstance(value, random.Random):
            out[f.name] = rng_to_json(value)
        elif isinstance(value, list):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def load(cls: type[T], data: dict[str, Any]) -> T:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = data[f.name]
        if isinstance(value, dict) and _RNG_KEY in value:
            value = rng_from_json(value)
        elif isinstance(value, list):
            value = list(value)
        kwargs[f.name] = value
    return cls(**kwargs)
