"""The controls every page shares: site, time range (today, 7 d, 30 d, custom) and the Scope 2
basis (location- or market-based). Kept in the browser (local storage), so a wall screen comes
back to the same view after a power cut."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard.i18n import Lang, t

Range = Literal["today", "7d", "30d", "custom"]
Basis = Literal["location", "market"]
RANGES: tuple[Range, ...] = ("today", "7d", "30d", "custom")
MAX_CUSTOM_DAYS = 400  # a year and a bit: a report page, not a data export


@dataclass(frozen=True)
class View:
    site_id: str
    range: Range
    basis: Basis
    start_date: date | None = None  # custom range, site-local dates, end inclusive
    end_date: date | None = None


def view_of(site_id: str | None, range_: str | None, basis: str | None, start: str | None,
            end: str | None, default_site: str) -> View:
    """Control values as the browser sends them → a valid View (bad values fall back, never fail)."""
    r: Range = range_ if range_ in RANGES else "today"  # type: ignore[assignment]
    b: Basis = "market" if basis == "market" else "location"
    a, z = _date(start), _date(end)
    if r == "custom" and (a is None or z is None or z < a or (z - a).days > MAX_CUSTOM_DAYS):
        r = "today"
    return View(site_id or default_site, r, b, a, z)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def window(view: View, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the view in UTC; ranges end now, a custom range at the end of its last day."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if view.range == "custom" and view.start_date and view.end_date:
        a = datetime.combine(view.start_date, datetime.min.time(), tz)
        z = datetime.combine(view.end_date + timedelta(days=1), datetime.min.time(), tz)
        return a.astimezone(UTC), min(z.astimezone(UTC), now)
    days = {"today": 0, "7d": 7, "30d": 30}.get(view.range, 0)
    start = midnight if days == 0 else local - timedelta(days=days)
    return start.astimezone(UTC), now


def control_bar(lang: Lang, sites: list[tuple[str, str]], site_id: str, ranged: bool = True) -> html.Div:
    """(id, name) of the sites the reader may choose from. Pages without a time range keep the
    range controls, hidden, so every page's callbacks see the same inputs."""
    hide = None if ranged else {"display": "none"}
    return html.Div(className="controls", children=[
        html.Label([html.Span(t("control.site", lang), className="control-label"),
                    dcc.Dropdown(id="ctl-site", options=[{"label": n, "value": i} for i, n in sites],
                                 value=site_id, clearable=False, searchable=False,
                                 persistence=True, persistence_type="local", className="control-site")]),
        html.Div(style=hide, children=[html.Span(t("control.range", lang), className="control-label"),
                  dcc.RadioItems(id="ctl-range", options=[{"label": t(f"range.{r}", lang), "value": r}
                                                          for r in RANGES],
                                 value="today", inline=True, persistence=True, persistence_type="local",
                                 className="control-range")]),
        dcc.DatePickerRange(id="ctl-dates", display_format="YYYY-MM-DD", persistence=True, style=hide,
                            persistence_type="local", className="control-dates",
                            start_date_placeholder_text=t("control.from", lang),
                            end_date_placeholder_text=t("control.to", lang)),
        html.Div(style=hide, children=[html.Span(t("control.basis", lang), className="control-label"),
                  dcc.RadioItems(id="ctl-basis", options=[{"label": t(f"basis.{b}", lang), "value": b}
                                                          for b in ("location", "market")],
                                 value="location", inline=True, persistence=True, persistence_type="local",
                                 className="control-basis")]),
    ])


CONTROL_INPUTS: tuple[tuple[str, str], ...] = (
    ("ctl-site", "value"), ("ctl-range", "value"), ("ctl-basis", "value"),
    ("ctl-dates", "start_date"), ("ctl-dates", "end_date"),
)


def controls_view(values: list[Any], default_site: str) -> View:
    site, range_, basis, start, end = values
    return view_of(site, range_, basis, start, end, default_site)
