"""The Savings page through the one refresh, on the synthetic plant of tests/api/test_savings.py
(energy = 400 + 2·production + 15·HDD + noise, a step saving of 120 kWh/day from 19 June 2026,
now = 28 August 2026, Shanghai): what the page shows is what GET /projects/{id}/savings and GET
/baselines/{id} answer, and the cumulative savings it draws is the service's CUSUM turned over.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard.controls import view_of
from dashboard.data import make_reader
from dashboard.formatting import format_number
from dashboard.page import PageQuery
from dashboard.pages import BY_PATH
from dashboard.refresh import refresh
from lingtan.core.site_model import import_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from tests.api.test_savings import (
    DAYS,
    NOW,
    SITE,
    SITE_FILE,
    STEP,
    day,
    seed_plant,
    )
from tests.dashboard.tree import by_id, text, walk

PAGE = BY_PATH["/savings"]
BODY = ("sv-body", "children")


@pytest.fixture
def plant(api_db: str) -> str:
    return seed_plant(api_db)


@pytest.fixture
def api(api_client: TestClient, auth_headers: Callable[..., dict[str, str]]) -> Callable[..., Any]:
    viewer = auth_headers("viewer")

    def get(path: str, **params: Any) -> Any:
        with clock.frozen(NOW):
            r = api_client.get(f"{SITE}/{path}", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        return r.json()

    return get


def _refresh(url: str, lang: str = "en", project: Any = None, site: str = "mv-plant") -> dict:
    view = view_of(site, "today", None, None, None, site)
    with clock.frozen(NOW):
        out = refresh(PAGE, make_reader(url), PageQuery(view, NOW, inputs=(project,)), lang)
    assert ("sv-db-banner", "children") not in out or out[("sv-db-banner", "children")] == "", out
    return out


def _traces(body: Any, graph_id: str) -> dict[str, dict]:
    graph = next(n for n in walk(by_id(body, graph_id)) if "figure" in n.get("props", {}))
    return {tr["name"]: tr for tr in graph["props"]["figure"]["data"]}


def test_the_page_shows_the_api_savings_of_the_project(plant: str, api: Callable) -> None:
    out = _refresh(plant)
    assert out[("sv-project", "options")] == [{"label": "Compressor 1 VFD", "value": "vfd"}]
    assert out[("sv-project", "value")] == "vfd"
    body = out[BODY]
    s = api("projects/vfd/savings")
    assert len(s["points"]) == 70
    labels = [p["label"] for p in s["points"]]
    # baseline against actual: the very per-point figures of the API
    per_point = _traces(body, "sv-actual")
    assert per_point["Actual"]["type"] == "bar" and per_point["Actual"]["x"] == labels
    assert per_point["Actual"]["y"] == [p["actual"] for p in s["points"]]
    assert per_point["Adjusted baseline"]["y"] == [p["expected"] for p in s["points"]]
    # cumulative savings Σ(expected − actual) = −CUSUM; no adjustments, so it ends at the avoided energy
    cumulative = _traces(body, "sv-cumulative")
    assert cumulative["Cumulative savings"]["y"] == [-p["cusum"] for p in s["points"]]
    assert s["adjustments"] == 0.0
    assert cumulative["Cumulative savings"]["y"][-1] == pytest.approx(s["avoided"], rel=1e-9)
    total = cumulative["Avoided energy ± uncertainty (90 % confidence)"]
    assert total["x"] == [labels[-1]] and total["y"] == [s["avoided"]]
    assert total["error_y"]["array"] == [s["uncertainty"]]
    assert cumulative["Claimed for the period"]["y"] == [s["claimed_for_period"]] == [pytest.approx(7000.0)]
    # the true saving, 70 × 120 kWh, lies inside the band the page draws
    assert abs(total["y"][0] - 70 * STEP) <= total["error_y"]["array"][0]
    assert _traces(body, "sv-cusum")["CUSUM"]["y"] == [p["cusum"] for p in s["points"]]
    assert "falling = savings" in text(by_id(body, "sv-cusum-card"))
    # the totals card words the API's numbers
    assert by_id(body, "sv-avoided")["props"]["children"] == \
        f"{format_number(s['avoided'], 0)} kWh ± {format_number(s['uncertainty'], 0)}"
    c = s["converted"]
    assert by_id(body, "sv-tce")["props"]["children"] == format_number(c["tce"], 2)
    assert by_id(body, "sv-co2-location")["props"]["children"] == format_number(c["tco2e_location"], 2)
    assert by_id(body, "sv-co2-market")["props"]["children"] == format_number(c["tco2e_market"], 2)
    assert by_id(body, "sv-cny")["props"]["children"] == format_number(c["cny"], 0)
    assert by_id(body, "sv-claimed")["props"]["children"] == "7,000 kWh"
    assert by_id(body, "sv-vs-claimed")["props"]["children"] == \
        f"{format_number(s['measured_vs_claimed'] * 100, 1)} %"
    adjusted = f"{format_number(s['adjusted_baseline'], 0)} kWh"
    assert by_id(body, "sv-adjusted")["props"]["children"] == adjusted
    assert "Adequate: every rule passed" in text(by_id(body, "sv-adequacy"))
    rules = text(by_id(body, "sv-adequacy-rules"))
    assert all(c["name"] in rules for c in s["fit"]["criteria"])
    assert "static factor: discharge pressure 0.7 MPa" in text(by_id(body, "sv-notes"))
    assert "reporting days 2026-06-19 – 2026-08-27" in text(by_id(body, "sv-project-section"))


def test_the_enpi_is_the_api_baseline(plant: str, api: Callable) -> None:
    body = _refresh(plant)[BODY]
    b = api("baselines/air")
    assert by_id(body, "sv-enpi-ratio")["props"]["children"] == format_number(b["enpi_ratio"], 3)
    assert b["enpi_ratio"] < 1
    traces = _traces(body, "sv-enpi")
    assert traces["Actual"]["x"] == [p["label"] for p in b["since"]] and len(b["since"]) == 80
    assert traces["Actual"]["y"] == [p["actual"] for p in b["since"]]
    assert traces["Adjusted baseline"]["y"] == [p["expected"] for p in b["since"]]


def test_a_model_that_fails_names_the_rules_and_states_no_saving(plant: str, api: Callable) -> None:
    """The project's energy regressed on seeded noise (as in tests/api/test_savings.py) fails the
    F-test and R² rules: the page says so, names them, and shows no avoided energy."""
    import numpy as np

    from lingtan.core import savings_service
    from lingtan.core.savings_schema import Savings

    noise = np.random.default_rng(7).uniform(0, 1, 100)
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    doc["projects"][0]["variables"] = [{"name": "lunar", "source": "entered", "values": [
        {"date": day(i).isoformat(), "value": float(noise[i % 100])} for i in range(DAYS)]}]
    with get_engine(plant).begin() as conn:
        savings_service.save_savings(conn, "mv-plant", Savings.model_validate(doc), "test", NOW)
    s = api("projects/vfd/savings")
    assert s["fit"]["adequate"] is False and s["avoided"] is None
    body = _refresh(plant)[BODY]
    verdict = text(by_id(body, "sv-adequacy"))
    assert "Not adequate" in verdict and all(f in verdict for f in s["fit"]["failed"])
    assert by_id(body, "sv-avoided")["props"]["children"] == "—"
    # no point is stated from a model that fails: the charts say there is nothing to draw, the notes why
    assert s["points"] == [] and by_id(body, "sv-cumulative")["props"]["children"] == "no data"
    assert any(n in text(by_id(body, "sv-notes")) for n in s["notes"] if "fails" in n)


def test_the_chinese_page_keeps_the_numbers(plant: str, api: Callable) -> None:
    body = _refresh(plant, "zh")[BODY]
    s = api("projects/vfd/savings")
    cumulative = _traces(body, "sv-cumulative")
    assert cumulative["累计节能量"]["y"] == [-p["cusum"] for p in s["points"]]
    assert cumulative["避免能耗 ± 不确定度（置信度 90 %）"]["error_y"]["array"] == [s["uncertainty"]]
    assert by_id(body, "sv-tce")["props"]["children"] == format_number(s["converted"]["tce"], 2, "zh")
    assert "下降为节能" in text(by_id(body, "sv-cusum-card"))
    assert "合格" in text(by_id(body, "sv-adequacy"))
    # the core's rule names and factor basis in Chinese, with the core's own numbers
    rules = text(by_id(body, "sv-adequacy-rules"))
    assert "F 检验 p < 0.10" in rules and "CV(RMSE) ≤ 20 %（报告期数据不足 12 个月）" in rules
    english = " reporting mean within the baseline's range or mean ± 3σ"
    ranges = [c["name"] for c in s["fit"]["criteria"] if english in c["name"]]
    chinese = " 报告期均值在基准期范围或均值 ± 3σ"
    assert len(ranges) == 2 and all(r.replace(english, chinese) + " 之内" in rules for r in ranges)
    basis = by_id(body, "sv-basis")["props"]["children"]
    assert basis.startswith("2026 年因子") and "0.1229 kgce/kWh" in basis and "平均电网电价" in basis


def test_a_site_without_baselines_or_projects_says_how_to_add_them(api_db: str) -> None:
    bare = {k: v for k, v in copy.deepcopy(SITE_FILE).items() if k not in ("energy_baselines", "projects")}
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, bare)
    out = _refresh(api_db)
    shown = text(by_id(out[BODY], "sv-none"))
    assert "No energy baseline or savings project" in shown
    assert "energy_baselines:" in shown and "projects:" in shown and "/api/v1/sites/mv-plant/savings" in shown
    assert out[("sv-project", "options")] == [] and out[("sv-project", "value")] is None
    assert "energy_baselines:" in text(by_id(_refresh(api_db, "zh")[BODY], "sv-none"))
