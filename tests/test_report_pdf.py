"""The PDF writer, read back with pypdf: headings, numbers as the XLSX formats them, charts, pages."""

from __future__ import annotations

import io
import math
from collections import Counter

import pypdf
import pytest
from pypdf.generic import ContentStream

from lingtan.core.report_formats import (
    AMOUNT,
    PDF_TYPE,
    PERCENT,
    TONNES,
    Cell,
    Chart,
    Column,
    Num,
    Table,
    render,
)
from lingtan.core.report_pdf import format_number, to_pdf

SUMMARY = Table("Summary", [Column("item"), Column("value"), Column("unit"), Column("coverage", PERCENT)], [
    ["Report", "GHG inventory (Scope 1 and 2)", "", None],
    ["Scope 1", Num(1234.5678, TONNES), "tCO2e", Num(0.123, PERCENT)],
    ["Electricity", Num(1234.567, AMOUNT), "kWh", 0.9995],
    ["Heat rate", 3.14159265, "GJ/t", None],
])
DEPARTMENTS = Table(
    "Departments",
    [Column("department"), Column("tce", TONNES), Column("tce last year", TONNES), Column("peak CNY", AMOUNT),
     Column("valley CNY", AMOUNT)],
    [["Assembly", 10.0, 30.0, 10.0, 30.0], ["Paint shop", 20.0, 20.0, 20.0, 20.0],
     ["Stores", 5.0, 5.0, 5.0, 5.0]],
    [Chart("Standard coal by department", 0, [1, 2], y_title="tce"),
     Chart("Electricity cost by band", 0, [3, 4], stacked=True, y_title="CNY")],
)
CHINESE = Table("部门能耗", [Column("部门"), Column("说明"), Column("电耗 kWh", AMOUNT)], [
    ["一车间", "空压机房与锅炉房合计，含照明。" * 8, 52345.678],
    ["二车间", None, 1.005],
])
LONG = Table("Factors", [Column("factor"), Column("value", "0.0000####"), Column("source")],
             [[f"grid factor {i}", 0.5703 + i / 1e6, "MEE announcement, national grid average"]
              for i in range(200)])


def _pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _lines(pdf: bytes) -> set[str]:
    return {ln.strip() for text in _pages(pdf) for ln in text.splitlines()}


def _rects(pdf: bytes) -> Counter[tuple[float, ...]]:
    """Every rectangle the pages draw (x, y, width, height), with its count."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    out: Counter[tuple[float, ...]] = Counter()
    for page in reader.pages:
        for operands, op in ContentStream(page.get_contents(), reader).operations:
            if op == b"re":
                out[tuple(round(float(v), 3) for v in operands)] += 1
    return out


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fmt", "shown"), [
    (1234.5678, AMOUNT, "1,234.57"),
    (0.123, PERCENT, "12.3%"),
    (0.9995, PERCENT, "100.0%"),  # 99.95 → 100.0, half away from zero as Excel rounds
    (1234.5675, TONNES, "1,234.568"),  # the float is 1234.567499…: rounded on its shortest decimal
    (0.125, AMOUNT, "0.13"),
    (-0.0001, AMOUNT, "0.00"),  # never "-0.00"
    (-1234567.891, AMOUNT, "-1,234,567.89"),
    (2025, "0", "2025"),
    (3, AMOUNT, "3.00"),
    (0.5703, "0.0000####", "0.5703"),
    (0.570312345, "0.0000####", "0.57031235"),
    (0.57031, "0.0000####", "0.57031"),
    (3.14159265, None, "3.14159"),  # no format: six significant digits
    (3.14159265, "General", "3.14159"),
    (0.000123456789, None, "0.000123457"),
    (1234567.89, None, "1234568"),  # the integer part is never cut
    (12.0, None, "12"),
    (42, None, "42"),
    (1e30, None, "1000000000000000000000000000000"),
    (math.nan, AMOUNT, "nan"),
])
def test_numbers_as_the_xlsx_formats_them(value: float, fmt: str | None, shown: str) -> None:
    assert format_number(value, fmt) == shown


# --- documents ---------------------------------------------------------------------------------


def test_headings_and_numbers_read_back_exactly() -> None:
    pdf = to_pdf([SUMMARY, DEPARTMENTS, CHINESE], "GHG inventory 2025-11", "demo-plant, Shenyang")
    assert pdf.startswith(b"%PDF-")
    lines = _lines(pdf)
    assert {"GHG inventory 2025-11", "demo-plant, Shenyang", "Summary", "Departments", "部门能耗"} <= lines
    # each number is one string in Helvetica: extracted as printed, thousands separators and all
    assert {"1,234.568", "12.3%", "1,234.57", "100.0%", "3.14159", "10.000", "52,345.68", "1.01"} <= lines
    assert {"page 1"} <= lines


def test_chinese_headings_and_cells() -> None:
    pdf = to_pdf([CHINESE], "能耗报表", "沈阳工厂 2025-11", lang="zh")
    text = "\n".join(_pages(pdf))
    lines = _lines(pdf)
    assert {"能耗报表", "沈阳工厂 2025-11", "部门能耗", "部门", "说明", "电耗 kWh"} <= lines
    assert {"一车间", "二车间"} <= lines
    # the long note wraps over lines, but every character is there, in order
    assert "空压机房与锅炉房合计，含照明。" * 4 in text.replace("\n", "")
    assert {"52,345.68", "1.01", "第 1 页"} <= lines
    assert b"/STSong-Light" in pdf and b"/Helvetica" in pdf


def test_fixed_words_in_chinese() -> None:
    lines = _lines(to_pdf([SUMMARY], "Report", lang="zh"))
    assert {"摘要", "项目", "数值", "范围一", "1,234.568"} <= lines  # the catalog's "report" words


def test_long_table_spans_pages_and_repeats_its_header() -> None:
    pages = _pages(to_pdf([LONG], "Factors"))
    assert len(pages) > 1
    for n, text in enumerate(pages, start=1):
        lines = [ln.strip() for ln in text.splitlines()]
        assert {"factor", "value", "source", f"page {n}"} <= set(lines)
    every = [ln.strip() for text in pages for ln in text.splitlines()]
    assert all(f"grid factor {i}" in every for i in range(200))
    assert "0.5703" in every and "0.570399" in every and "0.57031" in every


def test_charts_draw_one_bar_per_value_grouped_or_stacked() -> None:
    with_charts = to_pdf([DEPARTMENTS], "Departments")
    without = to_pdf([Table(DEPARTMENTS.name, DEPARTMENTS.columns, DEPARTMENTS.rows)], "Departments")
    lines = _lines(with_charts)
    assert {"Standard coal by department", "Electricity cost by band"} <= lines
    assert not {"Standard coal by department"} <= _lines(without)
    # legend: the series names from the column headers (also the table's headers, so counted twice)
    every = [ln.strip() for text in _pages(with_charts) for ln in text.splitlines()]
    assert every.count("tce last year") == 2 and every.count("valley CNY") == 2

    chart = _rects(with_charts) - _rects(without)  # what the charts add to the same table
    swatches = [r for r in chart.elements() if r[2:] == (7.0, 7.0)]
    bars = [r for r in chart.elements() if r[2:] != (7.0, 7.0)]
    assert len(swatches) == 4  # two series in each legend
    assert len(bars) == 12  # three departments × two series, in each chart
    by_x: dict[float, list[float]] = {}
    for x, _, _, h in bars:
        by_x.setdefault(x, []).append(h)
    grouped = [h for hs in by_x.values() if len(hs) == 1 for h in hs]
    stacked = {x: hs for x, hs in by_x.items() if len(hs) == 2}
    assert len(grouped) == 6 and len(stacked) == 3  # stacked: both bands of a department at one x
    # heights are proportional to the values: grouped 10, 20, 5, 30, 20, 5; stacked totals 40, 40, 10
    # (the stream writes coordinates to a few decimals: proportional to about one part in a thousand)
    unit = min(grouped) / 5
    assert sorted(h / unit for h in grouped) == pytest.approx([5, 5, 10, 20, 20, 30], rel=1e-3)
    totals = sorted(sum(hs) for hs in stacked.values())
    assert [h / (totals[0] / 10) for h in totals] == pytest.approx([10, 40, 40], rel=1e-3)


def test_chart_without_values_says_so() -> None:
    tab = Table("Departments", [Column("department"), Column("tce", TONNES)], [["Assembly", None]],
                [Chart("Standard coal by department", 0, [1])])
    assert "Standard coal by department: no data to chart" in _lines(to_pdf([tab], "r"))


def test_empty_table_says_no_rows() -> None:
    empty = Table("Notes", [Column("note")], [])
    lines = _lines(to_pdf([SUMMARY, empty], "Report"))
    assert {"Summary", "Notes", "no rows"} <= lines
    assert {"说明", "无数据行"} <= _lines(to_pdf([empty], "Report", lang="zh"))  # "Notes" in Chinese


def test_wide_table_goes_landscape_in_parts_that_repeat_the_row_names() -> None:
    cols = [Column("rank", "0"), Column("department")] + [Column(f"band {i} kWh", AMOUNT) for i in range(30)]
    rows: list[list[Cell]] = [[1, "Assembly", *(1000.0 * i + 0.5 for i in range(30))]]
    pdf = to_pdf([Table("Departments", cols, rows)], "Wide")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert all(p.mediabox.width > p.mediabox.height for p in reader.pages)
    every = [ln.strip() for p in reader.pages for ln in p.extract_text().splitlines()]
    parts = [ln for ln in every if ln.startswith("Departments (part ")]
    assert len(parts) >= 2 and parts[0] == f"Departments (part 1 of {len(parts)})"
    assert every.count("Assembly") == len(parts)  # each part names its row
    assert all(f"band {i} kWh" in every for i in range(30))
    assert {"0.50", "29,000.50"} <= set(every)


def test_same_tables_same_bytes() -> None:
    assert to_pdf([SUMMARY, DEPARTMENTS], "r", "s") == to_pdf([SUMMARY, DEPARTMENTS], "r", "s")


def test_render_pdf_and_bad_input_names_the_field() -> None:
    body, media_type = render([SUMMARY], "pdf", title="GHG inventory", subtitle="demo-plant")
    assert media_type == PDF_TYPE == "application/pdf"
    assert {"GHG inventory", "demo-plant", "1,234.57"} <= _lines(body)
    assert render([SUMMARY], "csv")[0].startswith(b"\xef\xbb\xbf")  # the other writers as before
    with pytest.raises(ValueError, match="fmt"):
        render([SUMMARY], "odt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lang"):
        to_pdf([SUMMARY], "r", lang="fr")  # type: ignore[arg-type]
    short = Table("Summary", [Column("item"), Column("value")], [["Scope 1"]])
    with pytest.raises(ValueError, match=r"tables\['Summary'\]\.rows\[0\]"):
        to_pdf([short], "r")
