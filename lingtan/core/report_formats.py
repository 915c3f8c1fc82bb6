"""Reports as tables, written as CSV (UTF-8 with BOM), XLSX (openpyxl) or PDF (``report_pdf``).

A report becomes a list of ``Table``s (one XLSX sheet, or one CSV or PDF section each), so every
file carries the same rows; the writers know nothing about reports.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from lingtan.core.department_report import DepartmentReport
from lingtan.core.factors import Factor
from lingtan.core.figures import Figure
from lingtan.core.reports import (
    BalanceLine,
    EnergyBalance,
    GreenFactoryReport,
    Inventory,
    ReportPeriod,
    ReportSite,
)
from lingtan.core.savings_service import ProjectSavings
from lingtan.kernel.i18n import Lang

Format = Literal["json", "csv", "xlsx"]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"
MAX_WIDTH = 80


@dataclass
class Num:
    """A number with its own Excel format (a column of mixed units, as in Summary)."""

    value: float | None
    fmt: str


Cell = str | float | int | None | Num


@dataclass
class Column:
    header: str
    fmt: str | None = None  # Excel number format for numbers in this column


@dataclass
class Chart:
    """A native Excel chart of some of a table's columns (the CSV has the numbers alone)."""

    title: str
    categories: int  # column index of the labels
    values: list[int]  # column indices of the series
    stacked: bool = False
    y_title: str = ""


@dataclass
class Table:
    name: str  # sheet name (≤ 31 characters) and CSV section title
    columns: list[Column]
    rows: list[list[Cell]]
    charts: list[Chart] = field(default_factory=list)


PERCENT = "0.0%"
AMOUNT = "#,##0.00"
TONNES = "#,##0.000"
# A unit decides how a number is shown, never what is stored: cells keep full precision.
_FORMATS = {"ratio": PERCENT, "kWh": AMOUNT, "m3": AMOUNT, "Nm3": AMOUNT, "CNY": AMOUNT, "GJ": TONNES,
            "t": TONNES, "tCO2e": TONNES, "tce": TONNES}


def fmt_for(unit: str) -> str:
    return _FORMATS.get(unit, "#,##0.000" if "/" in unit else "General")


def _fig(name: str, f: Figure) -> list[Cell]:
    return [name, Num(f.value, fmt_for(f.unit)), f.unit, Num(f.coverage, PERCENT)]


def _head(site: ReportSite, period: ReportPeriod, title: str) -> list[list[Cell]]:
    return [
        ["Report", title, "", None], ["Site", site.id, "", None], ["Site name", site.name, "", None],
        ["Grid region", site.grid_region, "", None], ["Factor set", site.factor_set, "", None],
        ["Period", period.label, "", None],
        ["Start (local)", period.start.isoformat(), "", None],
        ["End (local, exclusive)", period.end.isoformat(), "", None],
    ]


SUMMARY_COLUMNS = [Column("item"), Column("value"), Column("unit"), Column("coverage", PERCENT)]


def _factors(factors: list[Factor]) -> Table:
    cols = [Column("factor"), Column("kind"), Column("subject"), Column("value", "0.0000####"),
            Column("unit"), Column("data year", "0"), Column("region"), Column("source"),
            Column("valid from"), Column("valid to")]
    rows: list[list[Cell]] = [
        [f.label, f.kind, f.subject, f.value, f.unit, f.year, f.region, f.source, _date(f.valid_from),
         _date(f.valid_to)] for f in factors]
    return Table("Factors", cols, rows)


def _notes(notes: list[str]) -> Table:
    return Table("Notes", [Column("note")], [[n] for n in notes])


def _date(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def inventory_tables(inv: Inventory) -> list[Table]:
    t, g = inv.totals, inv.green_power
    summary = [
        *_head(inv.site, inv.period, "GHG inventory (Scope 1 and 2)"),
        _fig("Scope 1", t.scope1_t),
        # Every Scope 2 row names its electricity basis (the Notes sheet says what each means).
        _fig("Scope 2, location-based, gross import", t.scope2_location_t),
        _fig("Scope 2, market-based, gross import", t.scope2_market_t),
        _fig("Scope 2, location-based, net purchased", t.scope2_location_net_t),
        _fig("Scope 2, market-based, net purchased", t.scope2_market_net_t),
        _fig("Scope 1+2, location-based, gross import", t.scope12_location_t),
        _fig("Scope 1+2, market-based, gross import", t.scope12_market_t),
        _fig("Scope 1+2, location-based, net purchased", t.scope12_location_net_t),
        _fig("Scope 1+2, market-based, net purchased", t.scope12_market_net_t),
        _fig("Green certificates applied", g.gec_kwh),
        _fig("Green-power trades applied", g.trade_kwh),
    ]
    lines = Table("By carrier", [
        Column("scope", "0"), Column("carrier"), Column("amount", AMOUNT), Column("unit"),
        Column("tCO2e location-based", TONNES), Column("tCO2e market-based", TONNES), Column("tce", TONNES),
        Column("coverage", PERCENT), Column("source"), Column("evidence")],
        [[ln.scope, ln.carrier, ln.amount, ln.unit, ln.tco2e_location, ln.tco2e_market, ln.tce, ln.coverage,
          ln.source, "; ".join(ln.evidence)] for ln in inv.lines])
    tables = [Table("Summary", SUMMARY_COLUMNS, summary), lines, _factors(inv.factors)]
    if inv.monthly is not None:
        tables.append(Table("Monthly", [
            Column("month"), Column("consumption kWh", AMOUNT), Column("Scope 1 tCO2e", TONNES),
            Column("Scope 2 location-based, gross import tCO2e", TONNES),
            Column("Scope 2 market-based, gross import tCO2e", TONNES),
            Column("coverage", PERCENT)],
            [[m.month, m.consumption_kwh, m.scope1_t, m.scope2_location_t, m.scope2_market_t, m.coverage]
             for m in inv.monthly]))
    notes = [*inv.notes, *(f"Green-power purchase: {p}" for p in g.purchases)]
    return [*tables, _notes(notes)]


_BALANCE_COLUMNS = [Column("section"), Column("item"), Column("carrier"), Column("amount", AMOUNT),
                    Column("unit"), Column("tce", TONNES), Column("share of total", PERCENT),
                    Column("coverage", PERCENT), Column("basis"), Column("note")]


def _balance_row(section: str, ln: BalanceLine) -> list[Cell]:
    return [section, ln.item, ln.carrier, ln.amount, ln.unit, ln.tce, ln.share, ln.coverage, ln.basis,
            ln.note]


def balance_tables(b: EnergyBalance) -> list[Table]:
    summary = [
        *_head(b.site, b.period, "Energy balance"),
        _fig("Comprehensive energy consumption", b.total_tce),
        _fig("Comprehensive energy consumption, electricity at equal value", b.total_tce_equal_value),
    ]
    rows = [_balance_row("input", ln) for ln in b.inputs]
    rows += [_balance_row("output", ln) for ln in b.outputs]
    rows += [_balance_row("consumption", ln) for ln in b.consumption]
    rows += [_balance_row("of which", b.pv_self_consumed), _balance_row("internal", b.recovered_heat)]
    return [Table("Summary", SUMMARY_COLUMNS, summary), Table("Balance", _BALANCE_COLUMNS, rows),
            _factors(b.factors), _notes(b.notes)]


def green_factory_tables(r: GreenFactoryReport) -> list[Table]:
    summary = _head(r.site, r.period, "Green-factory indicators (GB/T 36132-2025)")
    cols = [Column("indicator"), Column("name (zh)"), Column("value"), Column("unit"),
            Column("coverage", PERCENT), Column("formula"), Column("note"), Column("key")]
    rows: list[list[Cell]] = [
        [i.name, i.name_zh, Num(i.value, fmt_for(i.unit)), i.unit, i.coverage, i.formula, i.note, i.key]
        for i in r.indicators]
    return [Table("Summary", SUMMARY_COLUMNS, summary), Table("Indicators", cols, rows),
            _factors(r.factors), _notes(r.notes)]


def department_tables(r: DepartmentReport) -> list[Table]:
    summary = _head(r.site, r.period, "Department report")
    summary.append(["Internal carbon price", Num(r.carbon_price_cny_per_tco2e, AMOUNT), "CNY/tCO2e", None])
    summary.append(["Departments", len(r.departments), "", None])
    head = [Column("rank (tce)", "0"), Column("department"), Column("id"), Column("electricity kWh", AMOUNT),
            Column("tce", TONNES), Column("tCO2e location", TONNES), Column("tCO2e market", TONNES),
            Column("carbon cost CNY", AMOUNT), Column("electricity cost CNY", AMOUNT)]
    bands = [Column(f"{b} kWh", AMOUNT) for b in r.bands] + [Column(f"{b} CNY", AMOUNT) for b in r.bands]
    tail = [Column("kgce per unit", "#,##0.000"), Column("kgCO2e per unit", "#,##0.000"),
            Column("kWh per m2", "#,##0.000"), Column("kWh per person", "#,##0.000"),
            Column("tce last year", TONNES), Column("change vs last year", PERCENT),
            Column("target tce", TONNES), Column("tce ÷ target", PERCENT), Column("target tCO2e", TONNES),
            Column("tCO2e ÷ target", PERCENT), Column("target basis"), Column("coverage", PERCENT),
            Column("rank (tCO2e)", "0"), Column("rank (carbon cost)", "0"), Column("rank (cost)", "0")]
    rows: list[list[Cell]] = []
    for d in r.departments:
        t = d.target
        rows.append([
            d.ranks.get("tce"), d.name, d.id, d.electricity_kwh, d.tce, d.tco2e_location, d.tco2e_market,
            d.carbon_cost_cny, d.cost_cny, *(d.kwh_by_band.get(b) for b in r.bands),
            *(d.cost_by_band.get(b) for b in r.bands), d.tce_per_unit_kg, d.tco2e_per_unit_kg, d.kwh_per_m2,
            d.kwh_per_person, d.last_year_tce, d.change_tce, t.energy_tce if t else None, d.vs_target_tce,
            t.carbon_tco2e if t else None, d.vs_target_tco2e, t.basis if t else None, d.coverage,
            d.ranks.get("tco2e_market"), d.ranks.get("carbon_cost_cny"), d.ranks.get("cost_cny")])
    columns = head + bands + tail
    tce, last = columns.index(head[4]), len(head) + len(bands) + 4
    charts = [Chart("Standard coal: this period, last year, target", 1, [tce, last, last + 2], y_title="tce")]
    if r.bands:
        first = len(head) + len(r.bands)
        charts.append(Chart("Electricity cost by time-of-use band", 1,
                            list(range(first, first + len(r.bands))), stacked=True, y_title="CNY"))
    return [Table("Summary", SUMMARY_COLUMNS, summary), Table("Departments", columns, rows, charts),
            savings_table(r.savings), _factors(r.factors), _notes(r.notes)]


def savings_table(projects: list[ProjectSavings]) -> Table:
    """Each project's measured savings in the period (docs/domain.md, "Baselines and savings")."""
    cols = [Column("project"), Column("option"), Column("days counted"), Column("unit"),
            Column("adjusted baseline", AMOUNT), Column("reporting energy", AMOUNT),
            Column("avoided", AMOUNT), Column("± uncertainty", AMOUNT), Column("confidence", PERCENT),
            Column("tce", TONNES), Column("tCO2e location-based", TONNES),
            Column("tCO2e market-based", TONNES), Column("CNY", AMOUNT),
            Column("claimed for the days", AMOUNT), Column("measured ÷ claimed", PERCENT), Column("model"),
            Column("notes")]
    rows: list[list[Cell]] = []
    for p in projects:
        c = p.converted
        model = "—" if p.fit is None else (
            "adequate" if p.fit.adequate else f"fails {', '.join(p.fit.failed)}")
        rows.append([p.name, p.option, f"{p.period[0]} – {p.period[1]}", p.unit, p.adjusted_baseline,
                     p.reporting_energy, p.avoided, p.uncertainty, p.confidence, c.tce if c else None,
                     c.tco2e_location if c else None, c.tco2e_market if c else None, c.cny if c else None,
                     p.claimed_for_period, p.measured_vs_claimed, model, "; ".join(p.notes)])
    return Table("Savings", cols, rows)


# --- writers ---------------------------------------------------------------------------------


def _plain(v: Cell) -> str | float | int | None:
    return v.value if isinstance(v, Num) else v


def to_csv(tables: list[Table]) -> bytes:
    """Sections: a title row, a header row, the rows, then a blank row.

    UTF-8 with a BOM, so Excel on a Chinese-locale Windows opens it as UTF-8 and not GBK.
    """
    out = io.StringIO()
    w = csv.writer(out)
    for i, t in enumerate(tables):
        if i:
            w.writerow([])
        w.writerow([t.name])
        w.writerow([c.header for c in t.columns])
        for row in t.rows:
            # repr keeps every digit of a float; None is an empty cell, never 0.
            w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                        for v in map(_plain, row)])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(tables: list[Table]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    bold = Font(bold=True)
    for t in tables:
        ws = wb.create_sheet(t.name[:31])
        ws.append([c.header for c in t.columns])
        for cell in ws[1]:
            cell.font = bold
        for row in t.rows:
            ws.append([_plain(v) for v in row])
            for col, (v, cell) in enumerate(zip(row, ws[ws.max_row], strict=True)):
                fmt = v.fmt if isinstance(v, Num) else t.columns[col].fmt
                if fmt and isinstance(cell.value, int | float):
                    cell.number_format = fmt
        ws.freeze_panes = "A2"
        for k, chart in enumerate(t.charts):
            _chart(ws, t, chart, f"{get_column_letter(len(t.columns) + 2)}{2 + k * 18}")
        for col, c in enumerate(t.columns, start=1):
            longest = max([len(c.header), *(len(_shown(_plain(r[col - 1]))) for r in t.rows)])
            ws.column_dimensions[get_column_letter(col)].width = min(longest + 2, MAX_WIDTH)
            if longest > MAX_WIDTH:
                for cell in ws[get_column_letter(col)][1:]:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _chart(ws: Any, t: Table, spec: Chart, anchor: str) -> None:
    chart = BarChart()
    chart.type = "col"
    chart.title = spec.title
    chart.y_axis.title = spec.y_title
    if spec.stacked:
        chart.grouping, chart.overlap = "stacked", 100
    last = len(t.rows) + 1
    for col in spec.values:
        chart.add_data(Reference(ws, min_col=col + 1, min_row=1, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=spec.categories + 1, min_row=2, max_row=last))
    chart.width, chart.height = 18, 8
    ws.add_chart(chart, anchor)


def _shown(v: str | float | int | None) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}"
    return "" if v is None else str(v)


def render(tables: list[Table], fmt: Literal["csv", "xlsx", "pdf"], *, title: str = "", subtitle: str = "",
           lang: Lang = "en") -> tuple[bytes, str]:
    """(body, media type). ``title``, ``subtitle`` and ``lang`` shape the PDF alone: the CSV and
    XLSX carry the title in their Summary rows and keep the tables' English words."""
    if fmt == "csv":
        return to_csv(tables), CSV_TYPE
    if fmt == "xlsx":
        return to_xlsx(tables), XLSX_TYPE
    if fmt == "pdf":
        # Imported here: report_pdf imports this module's tables, and ReportLab loads only for a PDF.
        from lingtan.core.report_pdf import to_pdf

        return to_pdf(tables, title, subtitle, lang), PDF_TYPE
    raise ValueError(f"fmt: {fmt!r} is none of csv, xlsx, pdf")


def filename(site_id: str, report: str, period_label: str, fmt: str) -> str:
    # Site ids are slugs, but a header value must never carry quotes or line breaks.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", site_id)
    return f"{safe}-{report}-{period_label}.{fmt}"
