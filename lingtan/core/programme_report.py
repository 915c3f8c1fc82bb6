"""The annual zero-carbon report: the year's inventory, the targets, green instruments, offsets,
the net balance and the evaluations, as report tables (XLSX, CSV or PDF through
``report_formats.render``). Every number is what the API answers for the same year: the report is
built from ``programme_service``'s answers and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from lingtan.core import programme_figures as pf
from lingtan.core import programme_service
from lingtan.core.evaluations import Evaluations
from lingtan.core.neutrality import NetBalance
from lingtan.core.programme_schema import NEUTRALITY_RULES
from lingtan.core.queries import get_site
from lingtan.core.report_formats import AMOUNT, PERCENT, TONNES, Cell, Chart, Column, Num, Table, fmt_for
from lingtan.core.targets import TargetStatus

NUMBER = "#,##0.000"


@dataclass
class ZeroCarbonReport:
    site_id: str
    site_name: str
    year: int
    generated_at: datetime
    figures: pf.WindowFigures
    targets: list[TargetStatus]
    balance: NetBalance
    evaluations: Evaluations


def zero_carbon_report(conn: sa.Connection, site_id: str, year: int, now: datetime) -> ZeroCarbonReport:
    targets, f, balance, ev = programme_service.annual(conn, site_id, year, now)
    return ZeroCarbonReport(site_id, get_site(conn, site_id).name, year, now, f, targets, balance, ev)


def _num(v: float | None, unit: str) -> Num:
    if unit == "ratio":
        return Num(v, PERCENT)
    return Num(v, fmt_for(unit) if unit in ("tCO2e", "tce", "kWh") else NUMBER)


def _yes(v: bool | None) -> str:
    return "—" if v is None else ("yes" if v else "no")


def summary_table(r: ZeroCarbonReport) -> Table:
    k, b = r.figures.kpis, r.balance
    rows: list[list[Cell]] = [
        ["Report", "Annual zero-carbon report", ""], ["Site", f"{r.site_id} ({r.site_name})", ""],
        ["Year", str(r.year), ""], ["Figures", pf.SOURCES[r.figures.source], ""],
        ["Generated", r.generated_at.isoformat(timespec="seconds"), ""],
        ["Scope 1", _num(k.carbon.scope1_t.value, "tCO2e"), "tCO2e"],
        ["Scope 2, location-based", _num(k.carbon.scope2_location_t.value, "tCO2e"), "tCO2e"],
        ["Scope 2, market-based", _num(k.carbon.scope2_market_t.value, "tCO2e"), "tCO2e"],
        ["Scope 1+2, market-based", _num(k.carbon.scope12_market_t.value, "tCO2e"), "tCO2e"],
        ["Comprehensive energy consumption", _num(k.energy.tce_total.value, "tce"), "tce"],
        ["Electricity consumption", _num(k.electricity.consumption_kwh.value, "kWh"), "kWh"],
        ["Green-power share", _num(pf.green_share(r.figures), "ratio"), "ratio"],
        ["Net emissions", _num(b.net_t, "tCO2e"), "tCO2e"],
        ["Carbon-neutral", _yes(b.neutral), b.rule],
    ]
    return Table("Summary", [Column("item"), Column("value"), Column("unit")], rows)


def inventory_table(r: ZeroCarbonReport) -> Table:
    lines = r.figures.kpis.carbon.by_carrier
    entered = r.figures.source == "entered"  # the engine's lines say "meters" for what it was given
    return Table("Inventory", [
        Column("scope", "0"), Column("carrier"), Column("amount", AMOUNT), Column("unit"),
        Column("tCO2e location-based", TONNES), Column("tCO2e market-based", TONNES), Column("tce", TONNES),
        Column("source"), Column("evidence")],
        [[ln.scope, ln.carrier, ln.amount, ln.unit, ln.tco2e_location, ln.tco2e_market, ln.tce,
          "entered annual data" if entered and ln.source == "meters" else ln.source,
          "; ".join(ln.evidence or r.figures.evidence)] for ln in lines])


def factors_table(r: ZeroCarbonReport) -> Table:
    cols = [Column("factor"), Column("value", "0.0000####"), Column("unit"), Column("source")]
    return Table("Factors", cols, [[f.label, f.value, f.unit, f.source] for f in r.figures.kpis.factors])


def targets_table(r: ZeroCarbonReport) -> Table:
    rows: list[list[Cell]] = []
    for t in r.targets:
        def v(x: float | None, t: TargetStatus = t) -> Num:
            return _num(x, t.unit)
        rows.append([t.name, t.kind, t.unit, t.base_year, v(t.base.value if t.base else None), t.target_year,
                     v(t.target_value), t.latest_year.label if t.latest_year else "—",
                     v(t.latest_year.value if t.latest_year else None),
                     v(t.last_12_months.value if t.last_12_months else None), v(t.trajectory_now),
                     v(t.projection.value if t.projection else None), t.status.replace("_", " "), t.reason])
    return Table("Targets", [
        Column("target"), Column("kind"), Column("unit"), Column("base year", "0"), Column("base value"),
        Column("target year", "0"), Column("target value"), Column("latest year"), Column("latest value"),
        Column("last 12 months"), Column("straight line now"), Column("projection"), Column("status"),
        Column("reason")], rows)


def trajectory_table(r: ZeroCarbonReport) -> Table:
    rows: list[list[Cell]] = []
    for t in r.targets:
        actual = {int(y.label): y for y in t.years}
        for p in t.trajectory:
            a = actual.get(p.year)
            rows.append([t.name, p.year, _num(p.value, t.unit), _num(a.value if a else None, t.unit),
                         a.source if a else ""])
    return Table("Trajectories", [Column("target"), Column("year", "0"), Column("straight line"),
                                  Column("actual"), Column("source")], rows)


def instruments_table(r: ZeroCarbonReport) -> Table:
    return Table("Instruments", [Column("instrument"), Column("kWh", AMOUNT), Column("tCO2e", TONNES)],
                 [["green certificates" if i.kind == "gec" else "green-power trade", i.kwh, i.tco2e]
                  for i in r.balance.instruments])


def offsets_table(r: ZeroCarbonReport) -> Table:
    return Table("Offsets", [
        Column("id"), Column("type"), Column("project"), Column("vintage", "0"), Column("tCO2e", TONNES),
        Column("serials"), Column("retired on"), Column("reference")],
        [[o.id, o.type, o.project, o.vintage, o.quantity_t, o.serials, o.retired_on.isoformat(), o.reference]
         for o in r.balance.offsets])


def balance_table(r: ZeroCarbonReport) -> Table:
    b = r.balance
    rows: list[list[Cell]] = [["Scope 1+2 before instruments", b.before_instruments_t]]
    rows += [[f"instruments: {'green certificates' if i.kind == 'gec' else 'green-power trade'}", -i.tco2e]
             for i in b.instruments]
    rows += [["Gross (the rule's basis)", b.gross_t]]
    rows += [[f"offsets: {kind}", -t] for kind, t in sorted(b.offsets_by_type.items())]
    rows += [["Net emissions", b.net_t]]
    return Table("Net balance", [Column("step"), Column("tCO2e", TONNES)], rows,
                 charts=[Chart("Net balance", 0, [1], y_title="tCO2e")])


def rule_table(r: ZeroCarbonReport) -> Table:
    b = r.balance
    return Table("Neutrality rule", [Column("item"), Column("value")], [
        ["rule", b.rule], ["rule text", NEUTRALITY_RULES[b.rule]],
        ["residual (the rule's basis), tCO2e", Num(b.gross_t, TONNES)],
        ["offsets retired for the year, tCO2e", Num(b.offsets_t, TONNES)],
        ["carbon-neutral", _yes(b.neutral)], ["reason", b.reason]])


def zero_carbon_table(r: ZeroCarbonReport) -> Table:
    z = r.evaluations.zero_carbon
    rows: list[list[Cell]] = []
    for lv in z.levels:
        for q in lv.requirements:
            rows.append([f"{lv.stars}★", q.name, _num(q.value, q.unit), _num(q.threshold, q.unit),
                         "≥" if q.direction == "min" else "≤", _yes(q.met), _yes(lv.verified), lv.source])
        for item in lv.checklist_open:
            rows.append([f"{lv.stars}★", f"checklist: {item}", None, None, "", "no", "", ""])
    rows.append(["level reached", f"{z.stars}★" if z.stars else "none", None, None, "", "", "", ""])
    rows += [[f"blocks {z.next_stars}★", b, None, None, "", "", "", ""] for b in z.blockers]
    return Table("Zero-carbon factory", [
        Column("level"), Column("requirement"), Column("value"), Column("threshold"), Column("test"),
        Column("met"), Column("verified"), Column("source")], rows)


def green_factory_table(r: ZeroCarbonReport) -> Table:
    g = r.evaluations.green_factory
    rows: list[list[Cell]] = [
        [ln.indicator, ln.unit, _num(ln.value, ln.unit), _num(ln.baseline, ln.unit),
         _num(ln.leading, ln.unit), Num(ln.weight, "0.00"), Num(ln.score, PERCENT), ln.source]
        for ln in g.indicators]
    rows.append(["score (0–100)", "", Num(g.score, "0.0"), None, None, None, None, g.scoring])
    return Table("Green factory", [
        Column("indicator"), Column("unit"), Column("value"), Column("baseline"), Column("leading"),
        Column("weight"), Column("score"), Column("source")], rows)


def cloud_table(r: ZeroCarbonReport) -> Table:
    c = r.evaluations.cloud
    if c is None:
        return Table("Cloud model", [Column("item"), Column("value")], [["cloud model", "not configured"]])
    cols = [Column("indicator"), Column("unit"), Column("weight", "0.00"), Column("Ex", NUMBER),
            Column("En", NUMBER), Column("He", NUMBER), *(Column(f"μ {g}", "0.0000") for g in c.grades)]
    rows: list[list[Cell]] = [[i.indicator, i.unit, i.weight, i.ex, i.en, i.he, *i.certainty]
                              for i in c.indicators]
    if c.u:
        rows.append(["U (weighted)", "", None, None, None, None, *c.u])
    rows.append([f"grade: {c.grade or '—'}", "", None, None, None, None, *([None] * len(c.grades))])
    rows += [[n, "", None, None, None, None, *([None] * len(c.grades))] for n in c.notes]
    return Table("Cloud model", cols, rows)


def checklist_table(r: ZeroCarbonReport) -> Table:
    rows: list[list[Cell]] = []
    for name, items in (("zero-carbon factory", r.evaluations.zero_carbon.checklist),
                        ("green factory", r.evaluations.green_factory.checklist)):
        rows += [[name, c.item, c.pathway, c.status.replace("_", " "), c.evidence] for c in items]
    return Table("Checklists", [Column("evaluation"), Column("item"), Column("pathway"), Column("status"),
                                Column("evidence")], rows)


def report_tables(r: ZeroCarbonReport) -> list[Table]:
    return [summary_table(r), inventory_table(r), targets_table(r), trajectory_table(r),
            instruments_table(r), offsets_table(r), balance_table(r), rule_table(r), zero_carbon_table(r),
            green_factory_table(r), cloud_table(r), checklist_table(r), factors_table(r)]


SECTIONS = ("Summary", "Inventory", "Targets", "Trajectories", "Instruments", "Offsets", "Net balance",
            "Neutrality rule", "Zero-carbon factory", "Green factory", "Cloud model", "Checklists", "Factors")


def title(r: ZeroCarbonReport, lang: Literal["zh", "en"]) -> tuple[str, str]:
    head = f"{r.year} 年度零碳报告" if lang == "zh" else f"Annual zero-carbon report {r.year}"
    return head, f"{r.site_name} ({r.site_id}) · {pf.SOURCES[r.figures.source]}"

