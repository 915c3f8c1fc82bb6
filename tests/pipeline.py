"""Readings into the database the way a gateway writes them: through the PostgreSQL sink, then
the central rollup refresher, as it would catch up within seconds."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.sinks.postgres import PostgresSink
from lingtan.core.rollup_worker import RollupRefresher
from lingtan.kernel.reading import Reading

BATCH = 50_000


def refresh_rollups(url: str) -> None:
    refresher = RollupRefresher(url)
    try:
        refresher.refresh_all()
    finally:
        refresher.close()


def store_readings(url: str, readings: Sequence[Reading]) -> None:
    sink = PostgresSink(url)
    try:
        for i in range(0, len(readings), BATCH):
            sink.write(readings[i:i + BATCH])
    finally:
        sink.close()
    refresh_rollups(url)
