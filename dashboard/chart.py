"""The 24-hour power chart: a dense minute grid (gaps stay gaps) kept current with Patch.

The figure is built once; each refresh re-reads only the last few minutes, replaces the
tail (the newest minute was partial, late data may have landed) and drops what slid out of
the window: about 1 KB of chart data per refresh instead of ~100 KB for the whole day (plus
a full reload every few minutes, for late data further back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import Patch

from dashboard.i18n import Lang, t
from lingtan.core.kpi import PowerSeries

MINUTE = timedelta(minutes=1)
WINDOW_MINUTES = 24 * 60
TAIL_MINUTES = 3  # re-read and replace this many newest buckets on every refresh
# Past this much slide (a sleeping laptop, a throttled tab) one full reload is cheaper and
# safer than hundreds of single-element deletes.
MAX_INCREMENTAL_MINUTES = 30
# A gateway replaying its buffer after an outage fills buckets far behind the tail; a periodic
# full reload shows them, and bounds any drift between the figure and what the server assumes.
FULL_RELOAD_EVERY = timedelta(minutes=10)

# same stack as assets/style.css, so the chart does not fall back to plotly's Open Sans
FONT = ('"Inter", "Segoe UI", "Noto Sans SC", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", '
         '"WenQuanYi Micro Hei", "Liberation Sans", "DejaVu Sans", sans-serif')

# (series attribute, legend name's catalog key, colour); order = trace index in the figure
TRACES: tuple[tuple[str, str, str], ...] = (
    ("pv_kw", "trace.pv_kw", "#f6c343"),
    ("grid_kw", "trace.grid_kw", "#4da3ff"),
    ("load_kw", "trace.load_kw", "#e6edf3"),
)


def floor_minute(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def window(now: datetime) -> tuple[datetime, datetime]:
    """First and last minute bucket of the 24 h ending at ``now`` (both inclusive)."""
    last = floor_minute(now)
    return last - (WINDOW_MINUTES - 1) * MINUTE, last


@dataclass
class ChartPoints:
    x: list[str]  # site-local wall time, no offset: plotly would otherwise shift it to the viewer
    y: dict[str, list[float | None]]  # series attribute → values, None where no data


def densify(series: PowerSeries, first: datetime, last: datetime, timezone: str) -> ChartPoints:
    """One point per minute from ``first`` to ``last``; minutes without rows become None."""
    index = {t.astimezone(UTC): i for i, t in enumerate(series.time)}
    tz = ZoneInfo(timezone)
    points = ChartPoints([], {attr: [] for attr, _, _ in TRACES})
    t = first
    while t <= last:
        points.x.append(t.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
        i = index.get(t)
        for attr, _, _ in TRACES:
            points.y[attr].append(None if i is None else _round(getattr(series, attr)[i]))
        t += MINUTE
    return points


def _round(v: float | None) -> float | None:
    # 3 decimals of kW is far below what the chart can show and keeps the JSON small
    return None if v is None else round(v, 3)


def _x_range(first: datetime, last: datetime, timezone: str) -> list[str]:
    tz = ZoneInfo(timezone)
    return [first.astimezone(tz).strftime("%Y-%m-%d %H:%M"), last.astimezone(tz).strftime("%Y-%m-%d %H:%M")]


def empty_figure(lang: Lang = "en") -> go.Figure:
    fig = go.Figure()
    for attr, key, colour in TRACES:
        name = t(key, lang)
        fig.add_trace(
            go.Scatter(
                x=[], y=[], name=name, mode="lines", connectgaps=False,
                # lines only: plotly's area fill bridges None gaps, which would hide an outage
                line={"color": colour, "width": 3 if attr == "load_kw" else 2.5},
                hovertemplate="%{y:,.1f} kW<extra>" + name + "</extra>",
            )
        )
    grid = "rgba(230, 237, 243, 0.08)"
    fig.update_layout(
        template=None,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": "#c9d4df", "size": 15, "family": FONT},
        margin={"l": 64, "r": 24, "t": 16, "b": 48},
        hovermode="x unified",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "bgcolor": "rgba(0,0,0,0)"},
        # axes stay hidden until the first data arrives: an empty date axis labels every tick 00:00
        xaxis={"type": "date", "gridcolor": grid, "tickformat": "%H:%M", "hoverformat": "%H:%M",
               "visible": False},
        # power starts at 0 (or below, when exporting): a floating baseline exaggerates swings
        yaxis={"title": {"text": "kW"}, "gridcolor": grid, "zerolinecolor": "rgba(230,237,243,0.35)",
               "rangemode": "tozero", "visible": False},
        annotations=[{"text": t("note.waiting", lang) + "…", "showarrow": False, "xref": "paper",
                      "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 20, "color": "#8b9bb0"}}],
        uirevision="overview",  # keep a viewer's zoom across refreshes
    )
    return fig


@dataclass(frozen=True)
class _State:
    first: datetime  # first and last bucket the figure holds
    last: datetime
    reloaded: datetime  # when the whole window was last sent

    @property
    def count(self) -> int:
        return int((self.last - self.first) / MINUTE) + 1


def _parse_state(state: dict[str, Any] | None) -> _State | None:
    if not state:
        return None
    try:
        return _State(*(datetime.fromisoformat(state[k]) for k in ("first", "last", "reloaded")))
    except (KeyError, TypeError, ValueError):
        return None


def _incremental(previous: _State | None, now: datetime) -> bool:
    if previous is None:
        return False
    first, _ = window(now)
    slide = int((first - previous.first) / MINUTE)
    return (previous.count >= TAIL_MINUTES and 0 <= slide <= MAX_INCREMENTAL_MINUTES
            and now - previous.reloaded < FULL_RELOAD_EVERY)


def fetch_start(state: dict[str, Any] | None, now: datetime) -> datetime:
    """Where the next refresh must start reading: the tail to replace, or the whole window."""
    previous = _parse_state(state)
    if previous is None or not _incremental(previous, now):
        return window(now)[0]
    return previous.last - (TAIL_MINUTES - 1) * MINUTE


def chart_patch(state: dict[str, Any] | None, series: PowerSeries, now: datetime,
                timezone: str) -> tuple[Patch, dict[str, str]]:
    """A Patch that brings the figure to the window ending at ``now``, and the new state.

    ``series`` must cover [fetch_start(state, now), last bucket]. A state from another time
    zone must not be passed (its x labels would be wrong): pass None for a full reload.
    """
    first, last = window(now)
    previous = _parse_state(state)
    start = fetch_start(state, now)
    points = densify(series, start, last, timezone)
    patch = Patch()
    if previous is None or not _incremental(previous, now):
        reloaded = now
        for i, (attr, _, _) in enumerate(TRACES):
            patch["data"][i]["x"] = points.x
            patch["data"][i]["y"] = points.y[attr]
        patch["layout"]["xaxis"]["visible"] = True
        patch["layout"]["yaxis"]["visible"] = True
        patch["layout"]["annotations"] = []
    else:
        reloaded = previous.reloaded
        slide = int((first - previous.first) / MINUTE)
        for i, (attr, _, _) in enumerate(TRACES):
            for key, values in (("x", points.x), ("y", points.y[attr])):
                target = patch["data"][i][key]
                # non-negative indices only: each delete shortens the list, so the same index
                # walks the tail (and then the head) away one element at a time
                for _ in range(TAIL_MINUTES):
                    del target[previous.count - TAIL_MINUTES]
                target.extend(values)
                for _ in range(slide):
                    del target[0]
    patch["layout"]["xaxis"]["range"] = _x_range(first, last, timezone)
    new_state = {"first": first.isoformat(), "last": last.isoformat(), "reloaded": reloaded.isoformat(),
                 "tz": timezone}
    return patch, new_state
