"""Monthly and annual reports as JSON, CSV or XLSX downloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from api.deps import get_conn
from api.problems import Unprocessable
from lingtan.core import closings, department_report, report_formats, reports
from lingtan.core.carbon import ConversionError
from lingtan.kernel import clock, periods

router = APIRouter(tags=["reports"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(description="the site's id", examples=["demo-plant"])]
PeriodQ = Annotated[reports.Period, Query(description="calendar month or year in the site's time zone",
                                          examples=["month"])]
DateQ = Annotated[date | None, Query(alias="date", description="a day inside the period; default today "
                                     "in the site's time zone", examples=["2026-11-21"])]
FormatQ = Annotated[report_formats.Format, Query(
    alias="format", description="json, or a download: csv (UTF-8 with BOM, opens in Excel) or xlsx",
    examples=["xlsx"])]

DOWNLOADS: dict[int | str, dict[str, Any]] = {200: {
    "description": "the report; `format=csv` or `format=xlsx` sends it as an attachment",
    "content": {"text/csv": {"schema": {"type": "string"}},
                report_formats.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}}


def _answer(build: Callable[[], Any], tables: Callable[[Any], list[report_formats.Table]], site_id: str,
            name: str, fmt: Literal["json", "csv", "xlsx"]) -> Any:
    try:
        report = build()
    except periods.PeriodError as exc:
        raise Unprocessable(f"query.{exc.field}", str(exc)) from None
    except ConversionError as exc:
        if exc.field != "year":
            raise
        # No factor valid for the period's year (e.g. before the oldest MEE data year).
        raise Unprocessable("query.date", str(exc)) from None
    if fmt == "json":
        return report
    body, media_type = report_formats.render(tables(report), fmt)
    filename = report_formats.filename(site_id, name, report.period.label, fmt)
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/sites/{site_id}/reports/ghg-inventory", response_model=closings.InventoryReport,
            responses=DOWNLOADS, summary="GHG inventory for a month or year")
def ghg_inventory(site_id: SiteId, conn: Conn, period: PeriodQ = "month", date_: DateQ = None,
                  fmt: FormatQ = "json") -> Any:
    """Scope 1 and Scope 2 (location- and market-based) by carrier, with totals, the green
    certificates and trades applied, every factor used with its source and validity, and notes.
    An annual report adds a row per month. Every figure carries its coverage (0–1).

    `status` says whether the figures are `closed` (stored when the period was closed, never
    recomputed) or `provisional`; for a closed period, `restatement` lists the figures that
    differ when recomputed now, with the reason where known. CSV and XLSX carry the same status
    line in Summary and a Restatement table.
    """
    return _answer(lambda: closings.period_report(conn, site_id, "ghg-inventory", period, date_, clock.now()),
                   closings.report_tables, site_id, "ghg-inventory", fmt)


@router.get("/sites/{site_id}/reports/energy-balance", response_model=closings.EnergyBalanceReport,
            responses=DOWNLOADS, summary="Energy balance for a month or year")
def energy_balance(site_id: SiteId, conn: Conn, period: PeriodQ = "month", date_: DateQ = None,
                   fmt: FormatQ = "json") -> Any:
    """Grid import, PV, fuels and purchased heat in; grid export out; consumption by carrier; PV
    self-consumed and recovered waste heat — each in its unit and in tce (GB/T 2589-2020) with its
    share of the comprehensive energy consumption.

    `status` and `restatement` as in the GHG inventory: a closed period shows its closed figures.
    """
    return _answer(lambda: closings.period_report(conn, site_id, "energy-balance", period, date_,
                                                  clock.now()),
                   closings.report_tables, site_id, "energy-balance", fmt)


@router.get("/sites/{site_id}/reports/green-factory", response_model=reports.GreenFactoryReport,
            responses=DOWNLOADS, summary="Green-factory indicators for a month or year")
def green_factory(site_id: SiteId, conn: Conn, period: PeriodQ = "month", date_: DateQ = None,
                  fmt: FormatQ = "json") -> Any:
    """The GB/T 36132-2025 quantitative indicators the meters support (energy and carbon per unit
    of product, green-power ratio, self-sufficiency, renewable share, waste heat), each with its
    formula. Baseline and leading values are the site's to set; none are invented here.
    """
    return _answer(lambda: reports.green_factory_indicators(conn, site_id, period, date_),
                   report_formats.green_factory_tables, site_id, "green-factory", fmt)


@router.get("/sites/{site_id}/reports/departments", response_model=department_report.DepartmentReport,
            responses=DOWNLOADS, summary="Departments ranked by energy, carbon and cost")
def departments(site_id: SiteId, conn: Conn, period: PeriodQ = "month", date_: DateQ = None,
                fmt: FormatQ = "json") -> Any:
    """The structure's departments (`department: true`) for a month or year: electricity, tce, tCO2e
    (location and market), carbon cost at the internal carbon price, electricity cost per
    time-of-use band, per unit of product, per m² and per person; against the same period a year
    earlier and each department's own target, and ranked. XLSX carries native charts.
    """
    return _answer(lambda: department_report.department_report(conn, site_id, period, date_),
                   report_formats.department_tables, site_id, "departments", fmt)
