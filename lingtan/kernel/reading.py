"""The one record that flows from collectors to storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag


class Quality(IntFlag):
    """Bit flags; 0 means a good, directly measured value."""

    GOOD = 0
    STALE = 1  # value frozen longer than allowed
    OUT_OF_RANGE = 2
    COUNTER_RESET = 4
    SPIKE = 8
    ESTIMATED = 16
    NOT_IMPLEMENTED = 32  # device answered with a "not implemented" sentinel


@dataclass(frozen=True, slots=True)
class Reading:
    time: datetime  # timezone-aware
    meter_id: str
    quantity: str  # a key of lingtan.kernel.quantities.QUANTITIES
    value: float  # in the quantity's canonical unit
    quality: int = Quality.GOOD

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"reading for {self.meter_id}/{self.quantity} has a naive timestamp")
