"""A simulated plant served over real Modbus TCP from a background event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pymodbus.client import ModbusTcpClient

from simulators.modbus_server import ModbusHandle, start_modbus_server
from simulators.site import SiteModel

# Tuesday 10:00 in Shenyang in June: the line runs, PV produces, both compressors busy.
WEEKDAY_MORNING = datetime(2026, 6, 16, 2, 0, tzinfo=UTC)


@dataclass
class ServedSite:
    loop: asyncio.AbstractEventLoop
    handle: ModbusHandle
    model: SiteModel

    def advance(self, seconds: int) -> None:
        """Advance the model and push its image, as the runner's tick does."""
        self.model.advance_to(self.model.now + timedelta(seconds=seconds))
        asyncio.run_coroutine_threadsafe(self.handle.publish(self.model), self.loop).result(10)


@pytest.fixture(scope="module")
def served_site() -> Iterator[ServedSite]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    model = SiteModel(seed=7, start=WEEKDAY_MORNING)
    model.advance_to(WEEKDAY_MORNING + timedelta(minutes=20))
    handle = asyncio.run_coroutine_threadsafe(
        start_modbus_server("127.0.0.1", 0, model), loop).result(10)
    try:
        yield ServedSite(loop=loop, handle=handle, model=model)
    finally:
        asyncio.run_coroutine_threadsafe(handle.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def client(served_site: ServedSite) -> Iterator[ModbusTcpClient]:
    c = ModbusTcpClient("127.0.0.1", port=served_site.handle.port, timeout=5)
    assert c.connect()
    yield c
    c.close()
