from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lingtan.core.users import create_user
from lingtan.kernel.db import get_engine
from tests.dashboard.seed import Seeded, seed_demo_plant

if TYPE_CHECKING:
    from playwright.sync_api import Browser

DASHBOARD_PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for a module's browser tests."""
    from tests.dashboard.browser import chromium

    with chromium() as b:
        yield b


@pytest.fixture
def demo_plant(db: str) -> tuple[str, Seeded]:
    """(database url, what was seeded): a demo-plant with ~2 h of grid and PV readings."""
    return db, seed_demo_plant(db)


@pytest.fixture
def dashboard_user(db: str) -> tuple[str, str]:
    """(name, password) of a viewer who can sign in to the dashboard on the test database."""
    with get_engine(db).begin() as conn:
        create_user(conn, "wall.viewer", DASHBOARD_PASSWORD, "viewer")
    return "wall.viewer", DASHBOARD_PASSWORD
