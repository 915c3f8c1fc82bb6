"""Languages: the catalog is complete, the browser's preference is honoured, and a page rendered
in one language carries no label of the other."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Any

import pytest

from dashboard.formatting import date_time, factor_caption, format_number
from dashboard.i18n import CATALOG, DEFAULT, negotiate, pick, request_lang, t
from dashboard.pages import BY_PATH, render
from lingtan.core.factors import grid_factor

CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# what stays the same in both languages: unit symbols, the product's Latin name, the
# switch's target-language name, the environment variable in an error
SHARED_WORDS = {"kW", "kWh", "kgCO", "tCO", "tce", "GB", "CNY", "Lingtan", "English", "LINGTAN_DATABASE_URL",
                "PV"}


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_label_has_both_languages_with_the_same_placeholders(key: str) -> None:
    en, zh = CATALOG[key]
    assert en.strip() and zh.strip()
    assert _fields(en) == _fields(zh)
    if key not in ("product", "chart.kw", "lang.switch.title") and not key.startswith("lang."):
        assert CJK.search(zh) or set(LATIN_WORD.findall(zh)) <= SHARED_WORDS, (key, zh)
    if key != "product" and not key.startswith("lang."):  # the switch speaks the other language
        assert not CJK.search(en), (key, en)


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, DEFAULT),
        ("", DEFAULT),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("de-DE,de;q=0.9,en;q=0.5,zh;q=0.3", "en"),   # first language we speak, by quality
        ("en;q=0.2, zh-TW;q=0.8", "zh"),
        ("fr, de", DEFAULT),
        ("en;q=0, zh;q=0.1", "zh"),                    # q=0 means "not this one"
        ("en;q=abc, zh", "zh"),                        # a broken quality is ignored, not fatal
    ],
)
def test_accept_language(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


def test_switch_beats_cookie_beats_browser() -> None:
    assert request_lang({"lang": "en"}, {"lingtan_lang": "zh"}, "zh-CN") == "en"
    assert request_lang({}, {"lingtan_lang": "en"}, "zh-CN") == "en"
    assert request_lang({"lang": "xx"}, {}, "en-GB") == "en"   # an unknown choice falls through
    assert pick("zh_Hans_CN") == "zh" and pick("EN") == "en" and pick("ja") is None


def test_numbers_and_dates_per_language() -> None:
    assert format_number(1234567.891, 1, "zh") == "1,234,567.9"
    assert format_number(-0.04, 1, "zh") == "0.0"
    when = datetime(2026, 11, 21, 6, 30, 5, tzinfo=UTC)
    assert date_time(when, "Asia/Shanghai", "zh") == "2026年11月21日 14:30:05"
    assert date_time(when, "Asia/Shanghai", "en") == "21 Nov 2026, 14:30:05"


def test_factor_caption_in_chinese_keeps_value_and_publisher() -> None:
    caption = factor_caption(grid_factor("north_east"), "zh")
    assert caption == "东北电网 0.5122 kgCO₂/kWh，MEE/NBS 2023"


def _texts(node: Any) -> list[str]:
    """Every string a Dash component tree would show (children and titles)."""
    out: list[str] = []
    if isinstance(node, str):
        return [node]
    if isinstance(node, list | tuple):
        for child in node:
            out += _texts(child)
        return out
    if hasattr(node, "to_plotly_json"):
        props = node.to_plotly_json()["props"]
        for name in ("children", "title"):
            if name in props and props[name] is not None:
                out += _texts(props[name])
        figure = props.get("figure")
        if figure is not None:
            data = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure
            out += [trace.get("name", "") for trace in data.get("data", [])]
            out += [a.get("text", "") for a in data.get("layout", {}).get("annotations", [])]
    return out


def _no_database(work: Any) -> Any:
    raise OSError("no database in this test")


def _page(path: str, lang: str) -> list[str]:
    return [s for s in _texts(render(path, lang, 5000, _no_database, "demo-plant")) if s.strip()]


@pytest.mark.parametrize("path", sorted(BY_PATH))
def test_chinese_page_has_no_english_label(path: str) -> None:
    switch = {t("lang.switch", "zh"), t("lang.switch.title", "zh")}  # speaks the other language
    texts = [s for s in _page(path, "zh") if s not in switch and s != "demo-plant"]
    assert any(t("nav.overview", "zh") == s for s in texts)
    for s in texts:
        assert CJK.search(s) or set(LATIN_WORD.findall(s)) <= SHARED_WORDS, s


@pytest.mark.parametrize("path", sorted(BY_PATH))
def test_english_page_has_no_chinese_label(path: str) -> None:
    texts = _page(path, "en")
    assert any(s == t("nav.overview", "en") for s in texts)
    for s in texts:
        assert not CJK.search(s) or s in ("零碳", t("lang.switch", "en"), t("lang.switch.title", "en")), s


def test_report_words_have_chinese_and_the_page_uses_them() -> None:
    from dashboard.pages.reports import html_tables
    from lingtan.core.report_formats import Column, Num, Table
    from lingtan.kernel.i18n import catalog

    report = {en: zh for (ctx, en), zh in catalog("zh").items() if ctx == "report"}
    assert len(report) > 70
    for en, zh in report.items():
        assert CJK.search(zh) or zh in ("tce",), (en, zh)
    table = Table("Summary", [Column("item"), Column("value"), Column("coverage", "0.0%")],
                  [["Scope 1", Num(12.5, "#,##0.000"), 0.875]])
    zh_texts = _texts(html_tables([table], "zh"))
    assert {"摘要", "项目", "数值", "数据覆盖率", "范围一", "12.500", "87.5 %"} <= set(zh_texts)
    assert {"Summary", "item", "Scope 1"} <= set(_texts(html_tables([table], "en")))


def test_both_catalogs_hold_the_same_keys_and_placeholders() -> None:
    from lingtan.kernel.i18n import catalog

    en, zh = catalog("en"), catalog("zh")
    assert set(en) == set(zh), set(en) ^ set(zh)
    for key in en:
        assert _fields(en[key]) == _fields(zh[key]), key


def test_every_key_the_code_asks_for_is_in_the_catalog() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    asked: set[str] = set()
    for path in [*root.joinpath("dashboard").rglob("*.py"), *root.joinpath("lingtan").rglob("*.py")]:
        asked |= set(re.findall(r"\bt\(\s*\"([a-z][\w.]*)\"", path.read_text()))
    assert len(asked) > 70
    assert asked <= set(CATALOG), asked - set(CATALOG)
