"""Evaluations of a year: the zero-carbon factory level, the green factory score and the cloud-model
low-carbon grade (docs/domain.md, "Zero-carbon programme", evaluations).

Every value comes from ``programme_figures.indicator`` of the year's figures (the one engine) and
the offsets from the net balance; thresholds, baseline and leading values, weights and grade
intervals are the site's data (or the shipped levels file), each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
import yaml
from pydantic import Field, TypeAdapter

from lingtan.core import closings, cloud
from lingtan.core import programme_figures as pf
from lingtan.core.neutrality import NetBalance, net_balance
from lingtan.core.programme_schema import ChecklistItem, StarLevel, ZeroCarbonProgramme
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.kernel import clock

CLOUD_SEED = 20220613  # drops are seeded, so the same data always gets the same grade
CLOUD_DROPS = 2000
DONE = ("met", "not_applicable")


@cache
def shipped_levels() -> tuple[StarLevel, ...]:
    text = resources.files("lingtan.core").joinpath("zero_carbon_levels.yaml").read_text(encoding="utf-8")
    return tuple(TypeAdapter(list[StarLevel]).validate_python(yaml.safe_load(text)))


@dataclass
class Requirement:
    name: Annotated[str, Field(description="renewable_share, offset_share or carbon_per_tce")]
    value: float | None
    threshold: float
    direction: Annotated[str, Field(description="min: at least the threshold; max: at most")]
    met: bool
    unit: str


@dataclass
class LevelCheck:
    stars: int
    reached: bool
    requirements: list[Requirement]
    checklist_open: Annotated[list[str], Field(description=(
        "checklist items this level needs that are not met"))]
    source: str
    verified: bool


@dataclass
class ZeroCarbonResult:
    year: int
    source: str
    type: str
    renewable_share: float | None
    offset_share: Annotated[float | None, Field(description=(
        "credits and removals ÷ the residual Scope 1 + 2"))]
    carbon_per_tce: float | None
    residual_t: float | None
    offsets_t: float
    levels: list[LevelCheck]
    stars: Annotated[int | None, Field(description="the highest level the data supports")]
    next_stars: int | None
    blockers: Annotated[list[str], Field(description="what stands between the level reached and the next")]
    checklist: list[ChecklistItem]


@dataclass
class GreenFactoryLine:
    indicator: str
    value: float | None
    unit: str
    baseline: float
    leading: float
    weight: float
    score: Annotated[float | None, Field(description="0 at the baseline value, 1 at the leading value")]
    source: str


@dataclass
class GreenFactoryResult:
    year: int
    source: str
    indicators: list[GreenFactoryLine]
    score: Annotated[float | None, Field(description="Σ weight × score ÷ Σ weight, 0..100")]
    scoring: str
    checklist: list[ChecklistItem]
    checklist_met: int


@dataclass
class CloudIndicatorResult:
    indicator: str
    unit: str
    weight: float
    values: list[float | None]
    ex: float | None
    en: float | None
    he: float | None
    he_imaginary: bool
    certainty: list[float]


@dataclass
class CloudResult:
    period: str
    periods: Annotated[list[str], Field(description=(
        "the months or years the indicator clouds are built from"))]
    grades: list[str]
    indicators: list[CloudIndicatorResult]
    u: list[float]
    shares: list[float]
    grade: str | None
    notes: list[str]
    method: str
    source: str


@dataclass
class Evaluations:
    site_id: str
    year: int
    zero_carbon: ZeroCarbonResult
    green_factory: GreenFactoryResult
    cloud: CloudResult | None
    notes: list[str] = field(default_factory=list)


def _req(name: str, value: float | None, threshold: float, direction: str, unit: str) -> Requirement:
    met = value is not None and (value >= threshold - 1e-12 if direction == "min"
                                 else value <= threshold + 1e-12)
    return Requirement(name, value, threshold, direction, met, unit)


def zero_carbon(z: ZeroCarbonProgramme, f: pf.WindowFigures, nb: NetBalance) -> ZeroCarbonResult:
    ev = z.evaluations.zero_carbon
    levels = sorted(ev.levels if ev.levels is not None else shipped_levels(), key=lambda lv: lv.stars)
    renewable = pf.green_share(f)
    residual = nb.gross_t
    offset_share = nb.offsets_t / residual if residual is not None and residual > 0 else \
        (1.0 if residual is not None else None)
    per_tce = pf.indicator("carbon_per_tce", f)
    checks: list[LevelCheck] = []
    for lv in levels:
        reqs = []
        if lv.renewable_share_min is not None:
            reqs.append(_req("renewable_share", renewable, lv.renewable_share_min, "min", "ratio"))
        if lv.offset_share_min is not None:
            reqs.append(_req("offset_share", offset_share, lv.offset_share_min, "min", "ratio"))
        if lv.carbon_per_tce_max is not None:
            reqs.append(_req("carbon_per_tce", per_tce, lv.carbon_per_tce_max, "max", "tCO2e/tce"))
        open_items = [c.item for c in ev.checklist if c.from_stars is not None and c.from_stars <= lv.stars
                      and c.status not in DONE]
        checks.append(LevelCheck(lv.stars, all(r.met for r in reqs) and not open_items, reqs, open_items,
                                 lv.source, lv.verified))
    reached = None
    for c in checks:  # a level counts only when every level below it is reached too
        if not c.reached:
            break
        reached = c.stars
    nxt = next((c for c in checks if reached is None or c.stars > reached), None)
    blockers: list[str] = []
    if nxt is not None:
        for r in nxt.requirements:
            if not r.met:
                shown = "no value" if r.value is None else _shown(r.value, r.unit)
                sign = "≥" if r.direction == "min" else "≤"
                blockers.append(f"{r.name} {shown}, {nxt.stars}★ needs {sign} {_shown(r.threshold, r.unit)}")
        blockers.extend(f"checklist: {item}" for item in nxt.checklist_open)
        if not nxt.verified:
            blockers.append(f"{nxt.stars}★ thresholds are unverified ({nxt.source})")
    return ZeroCarbonResult(
        year=int(nb.label), source=f.source, type=ev.type, renewable_share=renewable,
        offset_share=offset_share,
        carbon_per_tce=per_tce, residual_t=residual, offsets_t=nb.offsets_t, levels=checks, stars=reached,
        next_stars=nxt.stars if nxt is not None else None, blockers=blockers, checklist=ev.checklist)


def _shown(v: float, unit: str) -> str:
    return f"{v:.1%}" if unit == "ratio" else f"{v:.4g} {unit}"


SCORING = ("linear between the baseline value (基准值, 0) and the leading value (引领值, full marks), "
           "capped at both ends; Lingtan's choice, GB/T 36132-2025 does not publish the formula")


def green_factory(z: ZeroCarbonProgramme, f: pf.WindowFigures, production_unit: str, year: int
                  ) -> GreenFactoryResult:
    ev = z.evaluations.green_factory
    lines = []
    for ind in ev.indicators:
        v = pf.indicator(ind.indicator, f)
        score = None if v is None else min(max((v - ind.baseline) / (ind.leading - ind.baseline), 0.0), 1.0)
        unit = pf.unit_of(ind.indicator, production_unit)
        lines.append(GreenFactoryLine(ind.indicator, v, unit, ind.baseline, ind.leading, ind.weight, score,
                                      ind.source))
    scored = [ln for ln in lines if ln.score is not None]
    total = sum(ln.weight for ln in scored)
    score = 100.0 * sum(ln.weight * (ln.score or 0.0) for ln in scored) / total if total > 0 else None
    return GreenFactoryResult(year, f.source, lines, score, SCORING, ev.checklist,
                              sum(1 for c in ev.checklist if c.status in DONE))


def cloud_grade(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, year: int, now: datetime,
                model: SiteEnergyModel) -> CloudResult | None:
    ev = z.evaluations.cloud
    if ev is None:
        return None
    tz = model.site.timezone
    early_notes: list[str] = []
    if ev.period == "month":
        windows = pf.monthly_figures(conn, site_id, z, now, ev.periods, model)
        labels = [m.start.astimezone(ZoneInfo(tz)).strftime("%Y-%m") for m in windows]
    else:
        # years before metering count only when entered: a year with neither has no figures
        first = closings.first_data(conn, site_id)
        entered = {h.year for h in z.programme.history}
        years = [y for y in range(year - ev.periods + 1, year + 1) if pf.year_window(y, tz)[0] < now
                 and (y in entered or (first is not None and pf.year_window(y, tz)[1] > first))]
        every = [(y, pf.year_figures(conn, site_id, z, y, now, model)) for y in years]
        # a partly metered year is not a year's value (docs/domain.md): left out, and said so
        windows = [f for _, f in every if pf.complete(f)]
        labels = [str(y) for y, f in every if pf.complete(f)]
        if len(windows) < len(every):
            skipped = ", ".join(str(y) for y, f in every if not pf.complete(f))
            early_notes = [f"left out, not a complete year of data: {skipped}"]
    inputs, raw = [], []
    notes: list[str] = []
    for ind in ev.indicators:
        values = [pf.indicator(ind.indicator, m) for m in windows]
        raw.append(values)
        known = [v for v in values if v is not None]
        if len(known) < 2:
            notes.append(f"{ind.indicator}: {len(known)} {ev.period}(s) with a value; "
                         "at least 2 are needed")
        inputs.append(cloud.IndicatorInput(ind.indicator, known, ind.weight, list(ind.intervals)))
    method = (f"backward cloud of each indicator over {ev.periods} {ev.period}s; certainty against grade "
              "clouds "
              f"(Ex = mid-interval, En = width ÷ 6, He = {ev.he:g}) averaged over {CLOUD_DROPS} seeded "
              "drops; "
              "U = Σ weight × certainty; grade = the largest U")
    if notes:
        return CloudResult(ev.period, labels, ev.grades, [], [], [], None, [*early_notes, *notes], method,
                           ev.source)
    g = cloud.grade(inputs, ev.grades, he=ev.he, rng=np.random.default_rng(CLOUD_SEED), drops=CLOUD_DROPS)
    unit = model.params.production_unit
    out = [CloudIndicatorResult(i.name, pf.unit_of(i.name, unit), i.weight, vals, i.backward.cloud.ex,
                                i.backward.cloud.en, i.backward.cloud.he, i.backward.he_imaginary, list(i.mu))
           for i, vals in zip(g.indicators, raw, strict=True)]
    return CloudResult(ev.period, labels, list(g.grades), out, list(g.u), list(g.shares), g.grade,
                       [*early_notes, *g.notes], method, ev.source)


def evaluations(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, year: int,
                now: datetime | None = None, model: SiteEnergyModel | None = None,
                f: pf.WindowFigures | None = None, nb: NetBalance | None = None) -> Evaluations:
    """The year's zero-carbon and green factory evaluations, and the cloud grade of the last months
    or of the years up to ``year``; ``f``, ``nb``: the year's figures and net balance when the
    caller has them."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    f = f or pf.year_figures(conn, site_id, z, year, now, model)
    nb = nb or net_balance(conn, site_id, z, year, now, model, f)
    notes = [] if f.source in ("closed", "entered") else [f"{year} is {pf.SOURCES[f.source]}"]
    unit = model.params.production_unit
    return Evaluations(site_id, year, zero_carbon(z, f, nb), green_factory(z, f, unit, year),
                       cloud_grade(conn, site_id, z, year, now, model), notes)
