"""Wires the refresh logic to Dash: one Interval-driven callback writes every live value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
from dash import Input, Output, State

from dashboard.refresh import OUTPUTS, Loader, NotConfigured, ordered, refresh
from dashboard.snapshot import Snapshot, load_snapshot
from lingtan.db import get_engine


def make_loader(database_url: str | None, site_id: str) -> Loader:
    def load(now: datetime, start: datetime, end: datetime) -> Snapshot:
        if not database_url:
            raise NotConfigured("LINGTAN_DATABASE_URL is not set: the dashboard has no database to read.")
        with get_engine(database_url).connect() as conn:
            return load_snapshot(conn, site_id, now, start, end)

    return load


def register_callbacks(app: dash.Dash, load: Loader) -> None:
    @app.callback(
        [Output(cid, prop) for cid, prop in OUTPUTS],
        Input("refresh", "n_intervals"),
        State("chart-state", "data"),
    )
    def on_refresh(_n: int, state: dict[str, Any] | None) -> list[Any]:
        return ordered(refresh(load, state, datetime.now(UTC)))
