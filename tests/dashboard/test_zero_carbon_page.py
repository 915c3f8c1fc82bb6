"""The Zero carbon page through the one refresh, on the hand-worked programme of
tests/api/test_programme.py (now = 10 January 2023, Shanghai): what the page shows is what the API
answers — the waterfall's net is GET /neutrality's net, a badge is GET /targets' status — and the
Chinese page words the core's sentences without changing a number.

Hand-worked (tests/api/test_programme.py): 2022 gross before instruments 4999.3 t, certificates
−1171.2 t, residual 3828.1 t, CCER −2000 t, forestry sink −1000 t, net 828.1 t, not neutral;
2021 residual 5068.1 t, VER −1000 t, net 4068.1 t. Green factory 2022: 35.767.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard.controls import view_of
from dashboard.data import make_reader
from dashboard.page import PageQuery
from dashboard.pages import BY_PATH
from dashboard.refresh import refresh
from dashboard.sentences import match, says
from lingtan.core.evaluations import SCORING
from lingtan.core.programme_schema import NEUTRALITY_RULES
from lingtan.core.site_model import import_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.i18n import catalog
from tests.api.test_programme import NOW, SITE, SITE_FILE
from tests.dashboard.tree import by_id, text, walk

PAGE = BY_PATH["/zero-carbon"]
BODY = ("zc-body", "children")


@pytest.fixture
def plant(api_db: str) -> str:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, copy.deepcopy(SITE_FILE))
    return api_db


@pytest.fixture
def api(api_client: TestClient, auth_headers: Callable[..., dict[str, str]]) -> Callable[..., Any]:
    viewer = auth_headers("viewer")

    def get(path: str, **params: Any) -> Any:
        with clock.frozen(NOW):
            r = api_client.get(f"{SITE}/{path}", params=params, headers=viewer)
        assert r.status_code == 200, r.text
        return r.json()

    return get


def _refresh(url: str, lang: str = "en", year: Any = None, site: str = "zc-plant") -> dict:
    view = view_of(site, "today", None, None, None, site)
    with clock.frozen(NOW):
        out = refresh(PAGE, make_reader(url), PageQuery(view, NOW, inputs=(year,)), lang)
    assert ("zc-db-banner", "children") not in out or out[("zc-db-banner", "children")] == "", out
    return out


def _waterfall(body: Any) -> dict[str, float]:
    graph = next(n for n in walk(by_id(body, "zc-waterfall")) if "figure" in n.get("props", {}))
    (trace,) = graph["props"]["figure"]["data"]
    assert trace["type"] == "waterfall"
    return dict(zip(trace["x"], trace["y"], strict=True))


def test_the_waterfall_shows_the_api_net_balance_of_the_latest_complete_year(plant: str, api: Callable
                                                                             ) -> None:
    out = _refresh(plant)
    # 2023 has begun but holds no data: 2022 is the latest complete year, and the default
    assert out[("zc-year", "value")] == 2022
    assert [o["value"] for o in out[("zc-year", "options")]] == [2022, 2021, 2020]
    shown = _waterfall(out[BODY])
    nb = api("neutrality", period="year", date="2022-06-30")
    assert shown["Net"] == nb["net_t"] == pytest.approx(828.1)  # one truth: the very figure, not a re-sum
    assert shown["Scope 1 + 2 before instruments"] == nb["before_instruments_t"]
    assert shown["Green certificates"] == -nb["instruments"][0]["tco2e"] == pytest.approx(-1171.2)
    assert shown["Residual"] == nb["gross_t"]
    assert shown["CCER"] == -nb["offsets_by_type"]["ccer"] and shown["Forestry sink"] == -1000.0
    neutral = text(by_id(out[BODY], "zc-neutral"))
    assert "2022 is not carbon-neutral under ISO 14068-1, Scope 1 + 2 market-based" in neutral
    assert nb["reason"] in neutral


def test_a_chosen_year_and_a_year_without_data(plant: str, api: Callable) -> None:
    out = _refresh(plant, year=2021)
    assert out[("zc-year", "value")] == 2021
    net = api("neutrality", date="2021-01-01")["net_t"]
    assert _waterfall(out[BODY])["Net"] == net == pytest.approx(4068.1)
    # a year the site has no data for (another site's choice, say) falls back to the default
    assert _refresh(plant, year="2031")[("zc-year", "value")] == 2022


def test_each_target_shows_the_api_status_trajectory_and_projection(plant: str, api: Callable) -> None:
    body = _refresh(plant)[BODY]
    for target in api("targets")["targets"]:
        card = by_id(body, f"zc-target-{target['id']}")
        badge = by_id(card, f"zc-status-{target['id']}")
        assert badge["props"]["className"] == f"zc-badge zc-badge-{target['status']}"
        assert by_id(card, f"zc-reason-{target['id']}")["props"]["children"] == target["reason"]
        (graph,) = [n for n in walk(card) if "figure" in n.get("props", {})]
        traces = {tr["name"]: tr for tr in graph["props"]["figure"]["data"]}
        line = traces["Straight line"]
        assert line["x"] == [p["year"] for p in target["trajectory"]]
        assert line["y"] == [p["value"] for p in target["trajectory"]]
        assert traces["Entered"]["y"] == [y["value"] for y in target["years"]]  # every year entered
        assert traces["Projection"]["x"] == [2022.0, target["target_year"]]  # the last 12 months: 2022
        assert traces["Projection"]["y"] == [target["last_12_months"]["value"], target["projection"]["value"]]
        assert traces["Target"]["y"] == [target["target_value"]]
    statuses = [by_id(body, f"zc-status-{i}")["props"]["children"] for i in ("emissions-2023", "green-85",
                                                                              "green-90")]
    assert statuses == ["On track", "At risk", "Off track"]


def test_the_evaluations_are_the_api_evaluations(plant: str, api: Callable) -> None:
    body = _refresh(plant)[BODY]
    ev = api("evaluations", year=2022)
    assert by_id(body, "zc-level")["props"]["children"] == "No level reached"
    blockers = by_id(body, "zc-blockers")["props"]["children"]
    assert [b["props"]["children"] for b in blockers] == ev["zero_carbon"]["blockers"]
    # the 3★ stand-in thresholds are flagged as unverified
    assert [b["props"]["className"] for b in blockers] == ["", "zc-unverified"]
    assert by_id(body, "zc-gf-score")["props"]["children"] == "35.8"
    assert round(ev["green_factory"]["score"], 1) == 35.8
    # the cloud grade over the entered years 2020–2022, as the API answers it (hand-worked in
    # tests/api/test_programme.py: grade B)
    assert by_id(body, "zc-cloud-grade")["props"]["children"] == ev["cloud"]["grade"] == "B"
    checklists = text(by_id(body, "zc-checklists"))
    assert "2 items · met 1 · not met 1" in checklists and "no items" in checklists


def test_the_chinese_page_words_every_core_sentence_and_keeps_its_numbers(plant: str, api: Callable) -> None:
    out = _refresh(plant, "zh")
    body = out[BODY]
    assert by_id(body, "zc-status-green-85")["props"]["children"] == "有风险"
    reason = by_id(body, "zc-reason-green-85")["props"]["children"]
    assert reason == ("2022 年（最近的完整年份；最近 12 个月没有计量数据）：40.0%，直线轨迹上应为 42.5%；"
                      "按此速度 2024 年将达到 80.0%，目标 85.0%：差距为所需变化的 6%（10% 以内为有风险）")
    assert "按ISO 14068-1（范围一和二，基于市场），2022 年未实现碳中和" in text(by_id(body, "zc-neutral"))
    assert _waterfall(body)["净排放"] == api("neutrality", date="2022-06-30")["net_t"]
    # every sentence the core wrote for this site has its Chinese: none is left in English
    targets = api("targets")["targets"]
    ev = api("evaluations", year=2022)
    nb = api("neutrality", date="2022-06-30")
    sentences = [*(t["reason"] for t in targets), *(t["last_12_months"]["label"] for t in targets),
                 nb["reason"], nb["rule_text"], *ev["zero_carbon"]["blockers"],
                 ev["green_factory"]["scoring"]]
    assert all(match(s) for s in sentences), [s for s in sentences if not match(s)]
    assert all(says(s, "zh") != s for s in sentences)


def test_a_site_without_a_programme_says_how_to_add_one(api_db: str) -> None:
    bare = {k: v for k, v in copy.deepcopy(SITE_FILE).items()
            if k not in ("programme", "targets", "offsets", "evaluations")}
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, bare)
    out = _refresh(api_db)
    shown = text(by_id(out[BODY], "zc-none"))
    assert "No zero-carbon programme" in shown and "targets:" in shown and "offsets:" in shown
    assert out[("zc-year", "options")] == [] and out[("zc-year", "value")] is None


def test_the_fixed_sentences_of_the_core_are_in_the_catalog() -> None:
    """The rule texts and the scoring are the core's constants: the catalog holds them verbatim."""
    programme = {msgid for ctx, msgid in catalog("en") if ctx == "programme"}
    assert set(NEUTRALITY_RULES.values()) <= programme and SCORING in programme
    assert says("an engine sentence no template knows", "zh") == "an engine sentence no template knows"


def test_a_cloud_grade_without_enough_months_shows_the_core_note(api_db: str, api: Callable) -> None:
    """No metered month before 10 January 2023: the grade has no month with a value, and the page
    says so with the core's note (in Chinese on the Chinese page)."""
    sf = copy.deepcopy(SITE_FILE)
    sf["evaluations"]["cloud"] = {"grades": ["I", "II"], "periods": 6, "indicators": [
        {"indicator": "green_power_share", "weight": 1.0, "intervals": [[0.5, None], [None, 0.5]]}]}
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, sf)
    cloud = api("evaluations", year=2022)["cloud"]
    assert cloud["grade"] is None and cloud["notes"] == [
        "green_power_share: 0 month(s) with a value; at least 2 are needed"]
    en, zh = _refresh(api_db)[BODY], _refresh(api_db, "zh")[BODY]
    assert by_id(en, "zc-cloud-grade")["props"]["children"] == "Not enough data for a grade"
    assert cloud["notes"][0] in text(by_id(en, "zc-cloud"))
    assert "绿电占比：仅 0 个月有数值，至少需要 2 个月" in text(by_id(zh, "zc-cloud"))
    assert "6 months: 2022-07 – 2022-12" in text(by_id(en, "zc-cloud"))


def test_a_cloud_grade_shows_u_per_grade_and_the_weights() -> None:
    from dashboard.pages.zero_carbon import cloud_card
    from lingtan.core.evaluations import CloudIndicatorResult, CloudResult

    share = CloudIndicatorResult("green_power_share", "ratio", 0.7, [0.61, 0.63], 0.62, 0.01, 0.002, False,
                                 [0.81, 0.02])
    per_tce = CloudIndicatorResult("carbon_per_tce", "tCO2e/tce", 0.3, [1.1, 1.3], 1.2, 0.1, 0.0, True,
                                   [0.1, 0.6])
    method = ("backward cloud of each indicator over 2 months; certainty against grade clouds (Ex = "
              "mid-interval, En = width ÷ 6, He = 0.02) averaged over 2000 seeded drops; U = Σ weight × "
              "certainty; grade = the largest U")
    cr = CloudResult("month", ["2022-11", "2022-12"], ["I", "II"], [share, per_tce], [0.597, 0.194],
                     [0.7547, 0.2453], "I", [], method, "test")
    en = cloud_card(cr, "en")
    assert by_id(en, "zc-cloud-grade")["props"]["children"] == "I"
    u = text(by_id(en, "zc-cloud-u"))
    assert "0.597" in u and "0.194" in u and "75.5 %" in u
    weights = text(by_id(en, "zc-cloud-weights"))
    assert "Green power share 0.70 62.0 %" in weights and "Carbon per tce 0.30 1.200 tCO2e/tce" in weights
    assert "每项指标以 2 个月的数据生成逆向云" in text(cloud_card(cr, "zh"))


def test_a_programme_the_engine_cannot_compute_names_the_field(plant: str) -> None:
    """An entered year whose factor is gone (2019: the override covers 2020 only) is refused by the
    engine; the page says which field, as the API's 422 does, instead of failing the refresh."""
    import sqlalchemy as sa

    with get_engine(plant).begin() as conn:
        conn.execute(sa.text("UPDATE site_programmes SET programme = jsonb_set(programme,"
                             " '{programme,history,0,year}', '2019')"))
    problem = text(by_id(_refresh(plant)[BODY], "zc-problem"))
    assert problem.startswith("The programme cannot be computed: programme.history.0.year: 2019 cannot be")
