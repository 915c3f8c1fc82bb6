"""The annual zero-carbon report: the PDF opens, has every section in both languages, and its
numbers are the API's for the same year (read back from the file); the XLSX has the same sections."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader

from lingtan.core.programme_report import SECTIONS
from lingtan.core.report_formats import AMOUNT, PERCENT, TONNES
from lingtan.core.report_pdf import format_number
from lingtan.kernel import clock
from lingtan.kernel.i18n import term
from tests.api.test_programme import NOW, SITE, zc  # noqa: F401 — the fixture

REPORT = f"{SITE}/reports/zero-carbon"


def _heading(name: str, lines: list[str]) -> bool:
    """A section's heading; a table too wide for a page is printed in parts, each headed so."""
    return name in lines or any(ln.startswith(f"{name} (") for ln in lines)


def _text(body: bytes) -> tuple[int, list[str]]:
    reader = PdfReader(io.BytesIO(body))
    lines = [ln.strip() for page in reader.pages for ln in (page.extract_text() or "").splitlines()]
    return len(reader.pages), lines


def test_pdf_has_every_section_and_the_api_numbers(zc: str, api_client: TestClient,  # noqa: F811
                                                   auth_headers: Callable[..., dict[str, str]]) -> None:
    viewer = auth_headers("viewer")
    with clock.frozen(NOW):
        pdf = api_client.get(REPORT, params={"year": 2022, "format": "pdf", "lang": "en"}, headers=viewer)
        balance = api_client.get(f"{SITE}/neutrality", params={"date": "2022-01-01"}, headers=viewer).json()
        targets = api_client.get(f"{SITE}/targets", headers=viewer).json()["targets"]
        ev = api_client.get(f"{SITE}/evaluations", params={"year": 2022}, headers=viewer).json()
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="zc-plant-zero-carbon-2022.pdf"' in pdf.headers["content-disposition"]
    pages, lines = _text(pdf.content)
    assert pages >= 2 and "Annual zero-carbon report 2022" in lines
    for section in SECTIONS:
        assert _heading(section, lines), section
    # The net balance, as the API answers it, printed with the report's formats.
    for key in ("before_instruments_t", "gross_t", "offsets_t", "net_t"):
        value = balance[key]
        assert format_number(value, TONNES) in lines, value
    assert format_number(-balance["instruments_t"], TONNES) in lines
    for offset in balance["offsets"]:
        assert offset["reference"] in lines
    emissions = next(t for t in targets if t["id"] == "emissions-2023")
    assert format_number(emissions["projection"]["value"], "#,##0.000") in lines
    green = next(t for t in targets if t["id"] == "green-90")
    assert format_number(green["projection"]["value"], PERCENT) in lines
    assert format_number(ev["green_factory"]["score"], "0.0") in lines
    assert format_number(ev["zero_carbon"]["carbon_per_tce"], "#,##0.000") in lines
    kwh = format_number(8_000_000.0, AMOUNT)  # 2022's grid import, in the inventory
    assert kwh in lines


def test_pdf_in_chinese_and_the_xlsx_carry_the_same_sections(
        zc: str, api_client: TestClient, auth_headers: Callable[..., dict[str, str]]) -> None:  # noqa: F811
    viewer = auth_headers("viewer")
    with clock.frozen(NOW):
        pdf = api_client.get(REPORT, params={"year": 2022, "format": "pdf", "lang": "zh"}, headers=viewer)
        xlsx = api_client.get(REPORT, params={"year": 2022, "format": "xlsx"}, headers=viewer)
        balance = api_client.get(f"{SITE}/neutrality", params={"date": "2022-01-01"}, headers=viewer).json()
    _, lines = _text(pdf.content)
    assert "2022 年度零碳报告" in lines
    for section in SECTIONS:
        zh = term("report", section, "zh")
        assert zh != section, f"no Chinese for the section {section!r}"
        assert _heading(zh, lines), zh
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == list(SECTIONS)
    net = [row for row in book["Net balance"].iter_rows(values_only=True) if row[0] == "Net emissions"]
    assert net and abs(net[0][1] - balance["net_t"]) < 1e-9


def test_report_requests_name_the_bad_field(zc: str, api_client: TestClient,  # noqa: F811
                                            auth_headers: Callable[..., dict[str, str]]) -> None:
    viewer = auth_headers("viewer")
    with clock.frozen(NOW):
        fmt = api_client.get(REPORT, params={"year": 2022, "format": "docx"}, headers=viewer)
        lang = api_client.get(REPORT, params={"year": 2022, "lang": "fr"}, headers=viewer)
        future = api_client.get(REPORT, params={"year": 2030}, headers=viewer)
    assert fmt.status_code == 422 and "format" in fmt.text
    assert lang.status_code == 422 and "lang" in lang.text
    assert future.status_code == 422 and "has not begun" in future.text


def test_cli_prints_targets_and_balance_and_writes_the_report(zc: str, tmp_path: Path) -> None:  # noqa: F811
    """The CLI answers with the same engine: the clock pinned by LINGTAN_CLOCK_START to NOW."""
    env = {**os.environ, "LINGTAN_DATABASE_URL": zc, "LINGTAN_CLOCK_START": NOW.isoformat()}

    def lingtan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], env=env, capture_output=True,
                              text=True, check=False)

    targets = lingtan("programme", "targets", "zc-plant")
    assert targets.returncode == 0, targets.stderr
    assert "computing the targets of zc-plant" in targets.stderr
    assert "emissions-2023: on track: base 2020 6,814 tCO2e, target 2023 2,726 tCO2e, projection 2,335" \
        in targets.stdout
    assert "green-90: off track" in targets.stdout
    balance = lingtan("programme", "balance", "zc-plant", "--year", "2022")
    assert balance.returncode == 0, balance.stderr
    assert "offsets −3,000.000 tCO2e (2 retirement(s)); net 828.100 tCO2e" in balance.stdout
    out = tmp_path / "zc-2022.pdf"
    report = lingtan("programme", "report", "zc-plant", "--year", "2022", "-o", str(out), "--lang", "en")
    assert report.returncode == 0, report.stderr
    _, lines = _text(out.read_bytes())
    assert format_number(828.1, TONNES) in lines
    future = lingtan("programme", "balance", "zc-plant", "--year", "2031")
    assert future.returncode == 2 and "query.date: 2031 has not begun" in future.stderr
    wrong = lingtan("programme", "report", "zc-plant", "--year", "2022", "-o", str(tmp_path / "x.docx"))
    assert wrong.returncode == 2 and "--output" in wrong.stderr
