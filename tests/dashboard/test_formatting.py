"""Formatting and tile views: a missing value is "—" with a reason, never a 0."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.formatting import MISSING, data_value, factor_caption, format_number, local_time
from dashboard.snapshot import Snapshot
from dashboard.tiles import TILE_IDS, TILES, tile_views
from lingtan.core.factors import grid_factor
from lingtan.core.kpi import Overview, PowerNow, PowerSeries
from lingtan.core.queries import Site

NOW = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (None, 1, MISSING),
        (float("nan"), 1, MISSING),
        (0.0, 1, "0.0"),
        (1234.56, 1, "1,234.6"),
        (-512.04, 1, "-512.0"),
        (-0.04, 1, "0.0"),
        (0.51219, 3, "0.512"),
        (1_234_567.0, 0, "1,234,567"),
    ],
)
def test_format_number(value: float | None, decimals: int, text: str) -> None:
    assert format_number(value, decimals) == text


def test_data_value_is_raw_or_empty() -> None:
    assert data_value(None) == ""
    assert data_value(float("inf")) == ""
    assert float(data_value(1234.5678)) == 1234.5678


def test_local_time_in_site_zone() -> None:
    assert local_time(NOW, "Asia/Shanghai") == "2026-11-21 14:30:00"


def test_factor_caption_names_value_and_source() -> None:
    caption = factor_caption(grid_factor("north_east"))
    assert caption == "North-East China grid 0.5122 kgCO₂/kWh, MEE/NBS 2023"


def _snapshot(power: PowerNow, offline: list[str], roles: dict[str, list[str]]) -> Snapshot:
    site = Site("demo-plant", "Demo", "Asia/Shanghai", "north_east")
    # no KPI window at all: the tiles read power from the overview and today's figures from
    # Snapshot.today, which is left out here
    overview = Overview("demo-plant", power, None, offline)  # type: ignore[arg-type]
    return Snapshot(NOW, site, roles, overview, PowerSeries([], [], [], []), NOW, NOW)


def test_offline_meter_shows_dash_and_reason() -> None:
    snap = _snapshot(PowerNow(None, None, None, None), ["grid-1"], {"grid_import": ["grid-1"]})
    views = tile_views(snap)
    assert set(views) == set(TILE_IDS)
    for tile_id, view in views.items():
        assert view.text == MISSING, tile_id
        assert view.value == "", tile_id
        assert view.state == "missing"
    assert views["tile-grid-kw"].note == "offline"
    assert views["tile-pv-kw"].note == "no meter"  # the site has no PV: say so, not "offline"
    assert views["tile-today-kwh"].note == "no data"


def test_numbers_are_formatted_and_signed() -> None:
    snap = _snapshot(PowerNow(-35.25, 120.0, 84.75, NOW), [], {"grid_import": ["g"], "pv_generation": ["p"]})
    views = tile_views(snap)
    assert views["tile-grid-kw"].text == "-35.2"  # exporting is negative, not hidden
    assert views["tile-grid-kw"].note == "exporting"
    assert float(views["tile-grid-kw"].value) == -35.25
    assert views["tile-pv-kw"].text == "120.0"
    assert views["tile-load-kw"].text == "84.8"
    # today's figures come from the KPI engine (checked against it in test_refresh.py); a snapshot
    # without them shows every one as missing, never as 0
    for spec in TILES:
        if spec.group == "today":
            assert views[spec.id].text == MISSING and views[spec.id].note == "no data"
