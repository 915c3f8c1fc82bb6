from __future__ import annotations

import pytest

from tests.dashboard.seed import Seeded, seed_demo_plant


@pytest.fixture
def demo_plant(db: str) -> tuple[str, Seeded]:
    """(database url, what was seeded): a demo-plant with ~2 h of grid and PV readings."""
    return db, seed_demo_plant(db)
