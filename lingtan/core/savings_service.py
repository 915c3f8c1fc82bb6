"""Energy baselines, EnPIs and measured savings of a site: stored, checked against the site, and
computed (docs/domain.md, "Baselines and savings"). The apps ask this module and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from pydantic import Field

from lingtan.core import documents, gas, kpi, queries
from lingtan.core.baseline_model import Baseline, Criterion, adequacy, fit, points_outside, predict
from lingtan.core.carbon import convert
from lingtan.core.factors import factor
from lingtan.core.figures import unit_rates
from lingtan.core.savings_data import Points, days_of, points
from lingtan.core.savings_math import GL14_A, SavingsResult, cusum, enpi_ratio, savings
from lingtan.core.savings_schema import EnergyBaseline, Project, Savings, SavingsError, Window
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.core.structure import load_structure, resolve

UNITS = {"electricity": "kWh", "gas": "m3", "steam": "t", "heat": "GJ"}


# --- the stored document --------------------------------------------------------------------------


def stored_savings(conn: sa.Connection, site_id: str) -> Savings | None:
    doc = documents.read(conn, "site_savings", site_id)
    return Savings.model_validate(doc) if doc is not None else None


def load_savings(conn: sa.Connection, site_id: str) -> Savings:
    queries.get_site(conn, site_id)
    return stored_savings(conn, site_id) or Savings()


def check_against_site(conn: sa.Connection, site_id: str, s: Savings) -> None:
    """Every meter and node a boundary or variable names is the site's (loc from the top of the file)."""
    meters = {m.id: m.role for m in load_site_model(conn, site_id).meters}
    nodes = set(resolve(load_structure(conn, site_id)).nodes)
    has_production = any(r == "production" for r in meters.values())
    for section, items in (("energy_baselines", s.energy_baselines), ("projects", s.projects)):
        for i, item in enumerate(items):
            b = item.boundary
            if b.node is not None and b.node not in nodes:
                raise SavingsError((section, i, "boundary", "node"),
                                   f"{b.node!r} is not a node of the site's structure")
            for j, m in enumerate(b.meters or []):
                if m not in meters:
                    raise SavingsError((section, i, "boundary", "meters", j),
                                       f"{m!r} is not a meter of the site")
            for j, v in enumerate(item.variables):
                if v.meter is not None and v.meter not in meters:
                    raise SavingsError((section, i, "variables", j, "meter"), f"{v.meter!r} is not a meter "
                                                                               "of the site")
                if v.source == "production" and not has_production:
                    raise SavingsError((section, i, "variables", j, "source"), "the site has no meter with "
                                                                               "the role production")


def save_savings(conn: sa.Connection, site_id: str, s: Savings, by: str, now: datetime) -> bool:
    queries.get_site(conn, site_id)
    check_against_site(conn, site_id, s)
    doc = s.model_dump_json(exclude_defaults=True)
    return documents.store(conn, "site_savings", site_id, doc, by, now)


# --- answers ------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """A fitted baseline: coefficients with their statistics, the fit and the adequacy rules."""

    n: int
    p: int
    coefficients: Annotated[dict[str, dict[str, float]], Field(description=(
        "per term (intercept first): estimate, std_error, t, p_value"))]
    r2: float
    adj_r2: float
    f_pvalue: float
    cv_rmse_pct: float
    nmbe_pct: float
    rho: Annotated[float, Field(description="lag-1 autocorrelation of the residuals")]
    criteria: list[Criterion]
    adequate: Annotated[bool, Field(description="every criterion passed: only then is the model used")]
    failed: Annotated[list[str], Field(description="the criteria the model fails, by name")]


@dataclass
class PointValue:
    label: str
    actual: float
    expected: float
    cusum: Annotated[float, Field(description=(
        "Σ (actual − expected) from the first point: rising = excess, falling = savings"))]


@dataclass
class BaselineAnswer:
    id: str
    name: str
    unit: str
    resolution: str
    baseline_period: list[str]
    fit: Fit | None
    baseline_points: list[PointValue]
    since: Annotated[list[PointValue], Field(description="every complete point after the baseline period")]
    enpi_ratio: Annotated[float | None, Field(description=(
        "Σ actual ÷ Σ expected since the baseline (ISO 50006 ratio EnPI): below 1 is an improvement"))]
    left_out: list[str]
    notes: list[str]


def _fit(pts: Points, names: list[str], reporting_months: float | None,
         reporting: dict[str, np.ndarray] | None) -> tuple[Baseline | None, Fit | None, list[str]]:
    try:
        b = fit(pts.energy, pts.variables, names)
    except ValueError as exc:
        return None, None, [f"no baseline model: {exc}"]
    crit = adequacy(b, reporting_months, reporting)
    ok = all(c.passed for c in crit)
    coefficients = {k: {"estimate": t.estimate, "std_error": t.std_error, "t": t.t, "p_value": t.p_value}
                    for k, t in b.terms.items()}
    notes = [] if reporting is None else [
        f"{n} of {len(reporting[name])} reporting points of {name} lie outside the baseline's range "
        f"[{b.ranges[name].min:g}, {b.ranges[name].max:g}]: the model is extrapolated on them"
        for name, n in points_outside(b, reporting).items() if n]
    return b, Fit(b.n, b.p, coefficients, b.r2, b.adj_r2, b.f_pvalue, b.cv_rmse_pct, b.nmbe_pct, b.rho,
                  crit, ok, [c.name for c in crit if not c.passed]), notes


def _values(labels: list[str], actual: np.ndarray, expected: np.ndarray) -> list[PointValue]:
    sums = cusum(actual, expected) if len(labels) else np.asarray([])
    return [PointValue(lb, float(a), float(e), float(c))
            for lb, a, e, c in zip(labels, actual, expected, sums, strict=True)]


def baseline(conn: sa.Connection, site_id: str, baseline_id: str, now: datetime) -> BaselineAnswer:
    s = load_savings(conn, site_id)
    found = next((b for b in s.energy_baselines if b.id == baseline_id), None)
    if found is None:
        raise queries.NotFound(f"energy baseline {baseline_id!r} not found for site {site_id!r}")
    return _baseline(conn, site_id, found, now)


def _baseline(conn: sa.Connection, site_id: str, eb: EnergyBaseline, now: datetime) -> BaselineAnswer:
    tz = load_site_model(conn, site_id).site.timezone
    names = [v.name for v in eb.variables]
    base = points(conn, site_id, eb.boundary, eb.variables, eb.baseline, eb.resolution, tz, now)
    assert eb.baseline.end is not None  # the schema insists
    after = Window(start=eb.baseline.end + timedelta(days=1))
    later = points(conn, site_id, eb.boundary, eb.variables, after, eb.resolution, tz, now) \
        if after.start < now.astimezone(ZoneInfo(tz)).date() else None
    b, f, notes = _fit(base, names, None, None)
    since: list[PointValue] = []
    ratio = None
    base_values: list[PointValue] = []
    if b is not None:
        base_values = _values(base.labels, base.energy, predict(b, base.variables))
        if f is not None and not f.adequate:
            notes.append(f"the model fails {', '.join(f.failed)}: it is shown, not used for EnPIs")
        elif later is not None and later.labels:
            expected = predict(b, later.variables)
            since = _values(later.labels, later.energy, expected)
            ratio = enpi_ratio(later.energy, expected)
    return BaselineAnswer(eb.id, eb.name or eb.id, UNITS[eb.boundary.carrier], eb.resolution,
                          [eb.baseline.start.isoformat(), eb.baseline.end.isoformat()], f, base_values, since,
                          ratio, [*base.left_out, *(later.left_out if later else [])], notes)


# --- projects ---------------------------------------------------------------------------------------


@dataclass
class Converted:
    tce: float | None
    tco2e_location: float | None
    tco2e_market: float | None
    cny: float | None
    basis: Annotated[str, Field(description="the factors and price used")]


@dataclass
class ProjectSavings:
    id: str
    name: str
    option: str
    unit: str
    period: Annotated[list[str], Field(description="the reporting days counted: first, last")]
    fit: Fit | None
    adjusted_baseline: float | None
    reporting_energy: float | None
    adjustments: float
    avoided: float | None
    uncertainty: Annotated[float | None, Field(description="± avoided energy at the confidence level")]
    fractional_uncertainty: float | None
    confidence: float
    a: Annotated[float, Field(description="Guideline 14's empirical factor used (unverified for daily data)")]
    uncertainty_below_half: bool
    converted: Converted | None
    claimed_for_period: Annotated[float | None, Field(description=(
        "the claimed yearly savings × the days counted ÷ 365"))]
    measured_vs_claimed: float | None
    points: Annotated[list[PointValue], Field(description=(
        "per reporting point: actual, adjusted baseline, CUSUM"))]
    static_factors: list[str]
    left_out: list[str]
    notes: list[str]


@dataclass
class ProjectSummary:
    id: str
    name: str
    option: str
    boundary: str
    baseline: list[str]
    installation: list[str]
    reporting: list[str | None]
    claimed_per_year: float | None
    unit: str


def projects(conn: sa.Connection, site_id: str) -> list[ProjectSummary]:
    out = []
    for p in load_savings(conn, site_id).projects:
        b = p.boundary
        where = "site" if b.site else (f"node {b.node}" if b.node else f"meters {', '.join(b.meters or [])}")
        out.append(ProjectSummary(
            p.id, p.name, p.option, f"{where}, {b.carrier}",
            [p.baseline.start.isoformat(), str(p.baseline.end)],
            [p.installation.start.isoformat(), str(p.installation.end)],
            [p.reporting.start.isoformat(), p.reporting.end.isoformat() if p.reporting.end else None],
            p.claimed.energy_per_year if p.claimed else None, UNITS[b.carrier]))
    return out


def _converted(model: SiteEnergyModel, carrier: str, avoided: float, first: date, end: date,
               cost: tuple[float | None, float]) -> Converted:
    """Avoided energy in tce, tCO2e and CNY with the factors of the reporting year and the site's
    price over the reporting days (grid import cost ÷ grid import)."""
    year = first.year
    rates = unit_rates(model, year)
    overrides = model.overrides_for(year)
    if carrier == "electricity":
        kgce = factor(model.factor_set, "tce", "electricity", year, overrides).value
        price, bought = cost
        cny = avoided * price / bought if price is not None and bought > 0 else None
        return Converted(avoided * kgce / 1000.0, avoided * rates.grid_location_t_per_kwh,
                         avoided * rates.grid_market_t_per_kwh, cny,
                         f"{year} factors of set {model.factor_set}: {kgce} kgce/kWh, location "
                         f"{rates.grid_location_t_per_kwh * 1000:.4f} and market "
                         f"{rates.grid_market_t_per_kwh * 1000:.4f} kgCO2/kWh; the site's average grid price "
                         f"over the reporting days")
    # Gas, steam and heat as the KPI engine converts them (figures.piece): gas in Nm³ at the site's
    # one heating value, steam by the site's convention. No price is held for them: no CNY.
    p, kw = model.params, {"factor_set": model.factor_set, "year": year}
    if carrier == "gas":
        site_gas = {**overrides, **gas.factors(p, model.site.id, model.factor_set, year, overrides)}
        c = convert("natural_gas", gas.gas_basis(p).nm3(abs(avoided)), "m3", overrides=site_gas, **kw)
        basis = f"{year} natural gas factors at the site's heating value"
    else:
        unit = "t" if carrier == "steam" else "GJ"
        c = convert(carrier, abs(avoided), unit, overrides=overrides, steam_convention=p.steam_convention,
                    **kw)
        basis = f"{year} purchased {carrier} factors ({p.steam_convention} convention for steam)"
    sign = -1.0 if avoided < 0 else 1.0
    tce = sign * c.tce if c.tce is not None else None
    t = sign * c.tco2e if c.tco2e is not None else None
    return Converted(tce, t, t, None, f"{basis}; no {carrier} price is held, so no CNY")


def project_savings(conn: sa.Connection, site_id: str, project_id: str, now: datetime,
                    period: Literal["all", "year", "month"] = "all", day: date | None = None
                    ) -> ProjectSavings:
    s = load_savings(conn, site_id)
    p = next((x for x in s.projects if x.id == project_id), None)
    if p is None:
        raise queries.NotFound(f"project {project_id!r} not found for site {site_id!r}")
    model = load_site_model(conn, site_id)
    tz = model.site.timezone
    reporting = _within(p, period, day, tz, now)
    names = [v.name for v in p.variables]
    unit = UNITS[p.boundary.carrier]
    base = points(conn, site_id, p.boundary, p.variables, p.baseline, p.resolution, tz, now)
    first, end = days_of(reporting, tz, now)
    if end <= first:
        raise SavingsError(("query", "date"), "no reporting day has ended in that period yet")
    rep = points(conn, site_id, p.boundary, p.variables, reporting, p.resolution, tz, now)
    months = sum(rep.days) / 30.4375
    b, f, notes = _fit(base, names, months, rep.variables if rep.labels else None)
    days = [first.isoformat(), (end - timedelta(days=1)).isoformat()]
    out = ProjectSavings(p.id, p.name, p.option, unit, days, f, None, None, 0.0, None, None, None,
                         p.confidence, GL14_A, False, None, None, None, [], p.static_factors,
                         [*base.left_out, *rep.left_out], notes)
    if b is None or f is None:
        return out
    if not f.adequate:
        out.notes.append(f"the baseline model fails {', '.join(f.failed)}: no savings are stated from it")
        return out
    if not rep.labels:
        out.notes.append("no complete reporting point yet")
        return out
    adj = sum(a.energy * _share(a.start, a.end, first, end) for a in p.adjustments)
    r: SavingsResult = savings(b, rep.energy, rep.variables, p.confidence, GL14_A, adj)
    expected = predict(b, rep.variables)
    out.adjusted_baseline, out.reporting_energy = r.adjusted_baseline, r.reporting_energy
    out.adjustments = adj
    out.avoided, out.uncertainty = r.avoided_energy, r.absolute_uncertainty
    out.fractional_uncertainty = r.fractional_uncertainty
    out.uncertainty_below_half = r.uncertainty_below_half
    if r.note:
        out.notes.append(r.note)
    out.points = _values(rep.labels, rep.energy, expected)
    cost: tuple[float | None, float] = (None, 0.0)
    if p.boundary.carrier == "electricity":  # the site's average grid price over the reporting days
        zone = ZoneInfo(tz)
        k = kpi.window_kpis(conn, site_id, datetime(first.year, first.month, first.day, tzinfo=zone),
                            datetime(end.year, end.month, end.day, tzinfo=zone), now)
        cost = (k.electricity.cost_cny.value, k.electricity.grid_import_kwh.value or 0.0)
    out.converted = _converted(model, p.boundary.carrier, r.avoided_energy, first, end, cost)
    if p.claimed is not None:
        counted = sum(rep.days)
        out.claimed_for_period = p.claimed.energy_per_year * counted / 365.0
        out.measured_vs_claimed = r.avoided_energy / out.claimed_for_period
    return out


def _share(a: date, b: date, first: date, end: date) -> float:
    """The part of an adjustment's days [a, b] inside [first, end)."""
    days = (b - a).days + 1
    inside = (min(b + timedelta(days=1), end) - max(a, first)).days
    return max(inside, 0) / days


def _within(p: Project, period: str, day: date | None, tz: str, now: datetime) -> Window:
    if period == "all":
        return p.reporting
    d = day or now.astimezone(ZoneInfo(tz)).date()
    if period == "year":
        a, z = date(d.year, 1, 1), date(d.year, 12, 31)
    else:
        a = d.replace(day=1)
        z = (a.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    start = max(a, p.reporting.start)
    stop = min(z, p.reporting.end) if p.reporting.end else z
    if stop < start:
        raise SavingsError(("query", "date"), f"the {period} of {d} is outside the reporting period "
                                              f"(from {p.reporting.start})")
    return Window(start=start, end=stop)
