"""Reports as a PDF (ReportLab): the same ``Table``s as the CSV and XLSX, laid out to be read and printed.

Each table is a section: its name as a heading, a table whose header row repeats on every page, and
its charts drawn as vector bar charts. Numbers are shown as the XLSX shows them (the column's or the
``Num``'s Excel format); the fixed English words are given in ``lang`` as the dashboard gives them
(the catalog's "report" context), while values, notes and sources stay as published.

Fonts: Chinese (and any character Helvetica lacks) is set in ``STSong-Light``, Adobe's Simplified
Chinese CID font, which PDF viewers supply, so nothing is embedded and the file stays small;
everything else is Helvetica, one of the PDF's standard fonts, so numbers and Latin text are plain
text that any PDF reader extracts. Wrapped text switches font run by run ("车间 2": the digit is
Helvetica); a short string drawn whole (a chart label, a legend) takes STSong-Light when it holds
any Chinese.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.textlabels import Label
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from lingtan.core.report_formats import Cell, Chart, Num, Table
from lingtan.kernel.i18n import LANGS, Lang, t, term

LATIN, LATIN_BOLD, CJK_FONT = "Helvetica", "Helvetica-Bold", "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))

MARGIN = 36.0  # pt, half an inch
FOOTER = 18.0  # pt below the frame for the page number
SIZE = 7.5  # pt, table text
PAD = 3.0  # pt, a cell's left and right padding
TEXT_MAX = 160.0  # pt, the widest a text column grows before its cells wrap
HEADER_MAX = 80.0  # pt, the widest a header alone makes its column (longer headers wrap)
COL_MIN = 24.0  # pt
CHART_HEIGHT = 230.0  # pt
LABEL_MAX = 24  # characters of a chart's category label
PALETTE = [colors.HexColor(c) for c in ("#2f6f9f", "#e0863a", "#4f9a57", "#c4453d", "#7d62a8", "#8c6d4f",
                                         "#d07bb4", "#7f7f7f", "#b8b23a", "#3ab0c2")]
GRID = colors.HexColor("#9aa4ae")
HEAD_BG = colors.HexColor("#e6ebf0")
STRIPE = colors.HexColor("#f5f7f9")

_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
# Excel number formats of the reports: optional grouping, fixed then optional decimals, percent.
_EXCEL = re.compile(r"(?P<int>[#,0]*0)(?:\.(?P<fixed>0*)(?P<optional>#*))?(?P<pct>%?)")
# Enough digits for any float written out in full (the largest has 309), so quantize never rounds twice.
_DECIMAL = Context(prec=400, rounding=ROUND_HALF_UP)


# --- numbers ---------------------------------------------------------------------------------


def format_number(value: float | int, fmt: str | None) -> str:
    """``value`` as the XLSX shows it under ``fmt``: ``0.0%`` → ``12.3%``, ``#,##0.00`` → ``1,234.57``,
    ``#,##0.000`` → ``1,234.568``, ``0`` → ``2025``, ``0.0000####`` → four to eight decimals.

    Halves round away from zero on the shortest decimal of the float, as Excel rounds, so 0.125 is
    ``0.13`` and never ``0.12``. No format, ``General`` or one this does not read: integers in full,
    floats to six significant digits without cutting the integer part.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    m = _EXCEL.fullmatch(fmt) if fmt else None
    if m is None:
        return _general(value)
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if m["pct"]:
        d = _DECIMAL.multiply(d, Decimal(100))
    fixed, optional = len(m["fixed"] or ""), len(m["optional"] or "")
    text = _fixed(d, fixed + optional, grouped="," in m["int"])
    if optional:
        whole, _, decimals = text.partition(".")
        decimals = decimals[:fixed] + decimals[fixed:].rstrip("0")
        text = f"{whole}.{decimals}" if decimals else whole
    return text + m["pct"]


def _fixed(d: Decimal, places: int, grouped: bool = False) -> str:
    q = d.quantize(Decimal(1).scaleb(-places), context=_DECIMAL)
    if q.is_zero():
        q = abs(q)  # -0.0001 shown with two decimals is 0.00, not -0.00
    return format(q, ",f" if grouped else "f")


def _general(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    d = Decimal(repr(value))
    if d.is_zero():
        return "0"
    text = _fixed(d, max(0, 5 - d.adjusted()))  # adjusted(): the exponent of the leading digit
    return text.rstrip("0").rstrip(".") if "." in text else text


def _tick(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else _general(value)


# --- text ------------------------------------------------------------------------------------


def _needs_cjk_font(text: str) -> bool:
    if _CJK.search(text):
        return True
    try:  # Helvetica is set in WinAnsi encoding: a character outside it would show as nothing
        text.encode("cp1252")
    except UnicodeEncodeError:
        return True
    return False


def _font(text: str, bold: bool = False) -> str:
    return CJK_FONT if _needs_cjk_font(text) else LATIN_BOLD if bold else LATIN


def _runs(text: str) -> list[tuple[str, bool]]:
    """(run, needs the CJK font) for the maximal runs of ``text`` set in one font."""
    out: list[tuple[str, bool]] = []
    for ch in text:
        cjk = _needs_cjk_font(ch)
        if out and out[-1][1] == cjk:
            out[-1] = (out[-1][0] + ch, cjk)
        else:
            out.append((ch, cjk))
    return out


def _width(text: str, size: float = SIZE, bold: bool = False) -> float:
    """The widest line of ``text`` as a Paragraph sets it, run by run."""
    latin = LATIN_BOLD if bold else LATIN
    return max((sum(pdfmetrics.stringWidth(run, CJK_FONT if cjk else latin, size) for run, cjk in _runs(line))
                for line in text.split("\n")), default=0.0)


def _style(name: str, size: float, bold: bool = False, align: int = TA_LEFT,
           color: colors.Color = colors.black, space_after: float = 0.0) -> dict[bool, ParagraphStyle]:
    """The style for Latin text and the one for text with Chinese, which wraps between any two
    characters (Chinese has no spaces to wrap at)."""
    return {cjk: ParagraphStyle(f"{name}-{'cjk' if cjk else 'latin'}", fontName=LATIN_BOLD if bold else LATIN,
                                fontSize=size, leading=size * 1.25, alignment=align, textColor=color,
                                spaceAfter=space_after, wordWrap="CJK" if cjk else None)
            for cjk in (False, True)}


TITLE = _style("title", 18, bold=True, space_after=6)
SUBTITLE = _style("subtitle", 10, color=colors.HexColor("#4a5560"), space_after=14)
HEADING = _style("heading", 12, bold=True, space_after=5)
BODY = _style("body", SIZE)
HEAD = _style("head", SIZE, bold=True)
HEAD_RIGHT = _style("head-right", SIZE, bold=True, align=TA_RIGHT)
NOTE = _style("note", 8.5, color=colors.HexColor("#4a5560"), space_after=8)


def _para(text: str, styles: dict[bool, ParagraphStyle]) -> Paragraph:
    markup = "".join(f'<font name="{CJK_FONT}">{escape(run)}</font>' if cjk else escape(run)
                     for run, cjk in _runs(text))
    return Paragraph(markup.replace("\n", "<br/>"), styles[_needs_cjk_font(text)])


# --- tables ----------------------------------------------------------------------------------


def _shown(v: Cell, fmt: str | None, lang: Lang) -> tuple[str, bool]:
    """(text, is a number)."""
    if isinstance(v, Num):
        v, fmt = v.value, v.fmt
    if v is None:
        return "", False
    if isinstance(v, int | float) and not isinstance(v, bool):
        return format_number(v, fmt), True
    return term("report", str(v), lang), False


def _prepared(tab: Table, lang: Lang) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    rows = []
    for i, row in enumerate(tab.rows):
        if len(row) != len(tab.columns):
            raise ValueError(f"tables[{tab.name!r}].rows[{i}]: {len(row)} cells for "
                             f"{len(tab.columns)} columns")
        rows.append([_shown(v, c.fmt, lang) for v, c in zip(row, tab.columns, strict=True)])
    return [term("report", c.header, lang) for c in tab.columns], rows


def _column_width(header: str, cells: list[tuple[str, bool]]) -> tuple[float, float]:
    """(width, the width its text would take unwrapped)."""
    numbers = max((_width(s) for s, num in cells if num), default=0.0)
    text = max((_width(s) for s, num in cells if not num), default=0.0)
    words = max((_width(w, bold=True) for w in header.split()), default=0.0)
    head = max(min(_width(header, bold=True), HEADER_MAX), min(words, TEXT_MAX))
    width = max(numbers + 1, min(text, TEXT_MAX), head, COL_MIN - 2 * PAD) + 2 * PAD
    return width, max(width, text + 2 * PAD)


def _parts(widths: list[float], text_cols: list[bool], room: float) -> list[list[int]]:
    """Column groups that each fit ``room``: a table too wide for a landscape page is cut into
    parts side by side, each repeating the leading columns up to the first text column, which
    name the row (the department ranks and their name; a factor's label)."""
    if sum(widths) <= room:
        return [list(range(len(widths)))]
    first_text = next((i for i, text in enumerate(text_cols) if text), 0)
    key = list(range(first_text + 1)) if first_text < 3 else [0]
    if sum(widths[i] for i in key) > room / 2:
        key = [0]
    parts: list[list[int]] = []
    part = list(key)
    for i in range(len(widths)):
        if i in key:
            continue
        if len(part) > len(key) and sum(widths[j] for j in part) + widths[i] > room:
            parts.append(part)
            part = list(key)
        part.append(i)
    parts.append(part)
    return parts


def _fit(widths: list[float], full: list[float], text_cols: list[bool], room: float) -> list[float]:
    """Widths for a part that fill at most ``room``: wrapped text columns widen into spare room
    (fewer lines to a row), and narrow when the part is still too wide; numbers keep their width,
    so a number is never cut."""
    spare = room - sum(widths)
    want = sum(f - w for w, f in zip(widths, full, strict=True))
    if spare >= 0:
        k = min(1.0, spare / want) if want > 0 else 0.0
        return [w + (f - w) * k for w, f in zip(widths, full, strict=True)]
    text = sum(w for w, is_text in zip(widths, text_cols, strict=True) if is_text)
    if text <= 0:
        return widths
    k = max(0.3, (text + spare) / text)
    return [max(w * k, COL_MIN) if is_text else w for w, is_text in zip(widths, text_cols, strict=True)]


def _pdf_table(headers: list[str], rows: list[list[tuple[str, bool]]], cols: list[int], widths: list[float],
               text_cols: list[bool]) -> PdfTable:
    data: list[list[object]] = [[_para(headers[c], HEAD if text_cols[c] else HEAD_RIGHT) for c in cols]]
    style: list[tuple[object, ...]] = [
        ("FONT", (0, 0), (-1, -1), LATIN, SIZE, SIZE * 1.25),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD), ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("GRID", (0, 0), (-1, -1), 0.25, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, STRIPE]),
    ]
    for row in rows:
        line: list[object] = []
        for k, c in enumerate(cols):
            text, number = row[c]
            # A number stays a plain string in Helvetica: never wrapped, extracted as printed.
            fits = not _needs_cjk_font(text) and _width(text) <= widths[k] - 2 * PAD
            line.append(text if number or fits else _para(text, BODY))
        data.append(line)
    for k, c in enumerate(cols):  # right-align the numbers, one command per run of number cells
        start = None
        for r in range(1, len(rows) + 2):
            number = r <= len(rows) and rows[r - 1][c][1]
            if number and start is None:
                start = r
            elif not number and start is not None:
                style.append(("ALIGN", (k, start), (k, r - 1), "RIGHT"))
                start = None
    # splitInRow: a note longer than a page still flows on, rather than failing the layout
    return PdfTable(data, colWidths=widths, repeatRows=1, splitInRow=1, hAlign="LEFT",
                    style=TableStyle(style))


# --- charts ----------------------------------------------------------------------------------


def _value(v: Cell) -> float | None:
    if isinstance(v, Num):
        v = v.value
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _label(v: Cell, lang: Lang) -> str:
    text, _ = _shown(v, None, lang)
    return text if len(text) <= LABEL_MAX else text[:LABEL_MAX - 1] + "…"


def _fonts(texts: Sequence[str]) -> str:
    """One font for strings drawn together (a legend's names)."""
    return CJK_FONT if any(_needs_cjk_font(s) for s in texts) else LATIN


def _chart(tab: Table, spec: Chart, width: float, lang: Lang) -> Flowable:
    title = term("report", spec.title, lang)
    series = [[_value(row[c]) for row in tab.rows] for c in spec.values]
    values = [v for s in series for v in s if v is not None]
    if not values:
        return _para(f"{title}: {t('reports.pdf.no_chart_data', lang)}", NOTE)
    names = [term("report", tab.columns[c].header, lang) for c in spec.values]
    labels = [_label(row[spec.categories], lang) for row in tab.rows]
    d = Drawing(width, CHART_HEIGHT)
    d.add(String(0, CHART_HEIGHT - 12, title, fontName=_font(title, bold=True), fontSize=10))

    legend = Legend()
    legend.x, legend.y = 0, CHART_HEIGHT - 24
    legend.columnMaximum, legend.variColumn = 1, 1  # the series side by side under the title
    legend.alignment = "right"
    legend.fontName, legend.fontSize = _fonts(names), 7
    legend.dx, legend.dy, legend.autoXPadding = 7, 7, 12
    legend.colorNamePairs = [(PALETTE[i % len(PALETTE)], n) for i, n in enumerate(names)]
    d.add(legend)

    bc = VerticalBarChart()
    left, bottom = 52.0, 62.0
    bc.x, bc.y = left, bottom
    bc.width, bc.height = width - left - 4, CHART_HEIGHT - bottom - 44
    bc.data = series
    if spec.stacked:
        bc.categoryAxis.style = "stacked"
        lows = [sum(v for v in col if v is not None and v < 0) for col in zip(*series, strict=True)]
    else:
        lows = values
    bc.valueAxis.valueMin = min(0.0, *lows)  # bars stand on zero, as in the XLSX
    bc.valueAxis.labelTextFormat = _tick
    bc.valueAxis.labels.fontName, bc.valueAxis.labels.fontSize = LATIN, 6.5
    bc.valueAxis.visibleGrid = True
    bc.valueAxis.gridStrokeColor, bc.valueAxis.gridStrokeWidth = colors.HexColor("#dde2e7"), 0.4
    bc.categoryAxis.categoryNames = labels
    bc.categoryAxis.labels.fontName, bc.categoryAxis.labels.fontSize = LATIN, 6.5
    for i, label in enumerate(labels):
        bc.categoryAxis.labels[i].fontName = _font(label)
    bc.categoryAxis.labels.boxAnchor, bc.categoryAxis.labels.angle = "ne", 30
    bc.categoryAxis.labels.dx, bc.categoryAxis.labels.dy = 3, -3
    bc.barSpacing, bc.groupSpacing = 1, 6
    for i in range(len(series)):
        bc.bars[i].fillColor = PALETTE[i % len(PALETTE)]
        bc.bars[i].strokeColor = None
    d.add(bc)

    if spec.y_title:
        y_title = term("report", spec.y_title, lang)
        axis = Label()
        axis.setOrigin(10, bottom + bc.height / 2)
        axis.angle, axis.boxAnchor = 90, "c"
        axis.fontName, axis.fontSize = _font(y_title), 7
        axis.setText(y_title)
        d.add(axis)
    return d


# --- document --------------------------------------------------------------------------------


def _section(tab: Table, lang: Lang, room: dict[str, float]) -> tuple[str, list[Flowable]]:
    """(page orientation, flowables) of one table."""
    name = term("report", tab.name, lang)
    headers, rows = _prepared(tab, lang)
    if not rows or not tab.columns:
        no_rows = _para(t("reports.pdf.no_rows", lang), NOTE)
        return "portrait", [CondPageBreak(72), _para(name, HEADING), no_rows]
    text_cols = [not all(num or not s for s, num in (r[c] for r in rows)) for c in range(len(headers))]
    widths, full = map(list, zip(*(_column_width(h, [r[c] for r in rows]) for c, h in enumerate(headers)),
                                 strict=True))
    page = "portrait" if sum(widths) <= room["portrait"] else "landscape"
    parts = _parts(widths, text_cols, room[page])
    out: list[Flowable] = []
    for n, cols in enumerate(parts, start=1):
        heading = name if len(parts) == 1 else t("reports.pdf.part", lang, name=name, part=n,
                                                 parts=len(parts))
        part_widths = _fit([widths[c] for c in cols], [full[c] for c in cols], [text_cols[c] for c in cols],
                           room[page])
        out += [CondPageBreak(96), _para(heading, HEADING),
                _pdf_table(headers, rows, cols, part_widths, text_cols), Spacer(1, 12)]
    for spec in tab.charts:
        out += [CondPageBreak(CHART_HEIGHT + 12), _chart(tab, spec, room[page], lang), Spacer(1, 14)]
    return page, out


def to_pdf(tables: list[Table], title: str, subtitle: str = "", lang: Lang = "en") -> bytes:
    """The report as an A4 PDF: the title and subtitle, then one section per table (portrait, or
    landscape for a table too wide for it), "page N" in every footer.

    The same tables give the same bytes: the creation date and document id are fixed (ReportLab's
    invariant mode), as nothing in the file depends on when it was written.
    """
    if lang not in LANGS:
        raise ValueError(f"lang: {lang!r} is none of {', '.join(LANGS)}")
    sizes = {"portrait": A4, "landscape": landscape(A4)}
    room = {k: w - 2 * MARGIN for k, (w, _) in sizes.items()}

    def footer(canvas: Canvas, doc: BaseDocTemplate) -> None:
        text = t("reports.pdf.page", lang, n=canvas.getPageNumber())
        canvas.saveState()
        canvas.setFont(_font(text), 8)
        canvas.setFillColor(colors.HexColor("#4a5560"))
        canvas.drawCentredString(doc.pageTemplate.pagesize[0] / 2, MARGIN - FOOTER + 4, text)
        canvas.restoreState()

    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=A4, title=title, subject=subtitle, author="Lingtan",
                          creator="Lingtan", invariant=1, lang="zh-CN" if lang == "zh" else "en",
                          leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN)
    sections = [_section(tab, lang, room) for tab in tables]
    # the first page takes the first section's orientation, so the title never stands alone
    current = sections[0][0] if sections else "portrait"
    doc.addPageTemplates([
        PageTemplate(id=k, pagesize=size, onPage=footer,
                     frames=[Frame(MARGIN, MARGIN, size[0] - 2 * MARGIN, size[1] - 2 * MARGIN, id=k,
                                   leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)])
        for k, size in sorted(sizes.items(), key=lambda kv: kv[0] != current)])
    story: list[Flowable] = []
    if title:
        story.append(_para(title, TITLE))
    if subtitle:
        story.append(_para(subtitle, SUBTITLE))
    for page, flowables in sections:
        if page != current:
            story += [NextPageTemplate(page), PageBreak()]
            current = page
        story += flowables
    if not story:
        story.append(_para(t("reports.pdf.no_rows", lang), NOTE))
    doc.build(story)
    return buf.getvalue()
