"""Wires the Overview's refresh logic to Dash: one Interval-driven callback writes every live value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, ctx

from dashboard.data import make_reader
from dashboard.i18n import DEFAULT, pick
from dashboard.refresh import OUTPUTS, Loader, ordered, refresh
from dashboard.snapshot import Snapshot, load_snapshot
from lingtan.kernel import clock


def make_loader(database_url: str | None, site_id: str) -> Loader:
    read = make_reader(database_url)

    def load(now: datetime, start: datetime, end: datetime) -> Snapshot:
        return read(lambda conn: load_snapshot(conn, site_id, now, start, end))

    return load


def register_callbacks(app: dash.Dash, database_url: str | None, default_site: str) -> None:
    def load(site: str | None) -> Loader:
        return make_loader(database_url, site or default_site)

    @app.callback(
        [Output(cid, prop) for cid, prop in OUTPUTS],
        Input("refresh", "n_intervals"),
        Input("ctl-site", "value"),
        Input("ctl-basis", "value"),
        State("chart-state", "data"),
        State("lang", "data"),
    )
    def on_refresh(_n: int, site: str | None, basis: str | None, state: dict[str, Any] | None,
                   lang: str | None) -> list[Any]:
        if ctx.triggered_id == "ctl-site":
            state = None  # another site: the chart starts over
        return ordered(refresh(load(site), state, clock.now(), pick(lang) or DEFAULT,
                               "market" if basis == "market" else "location"))
