"""The Structure page through the one refresh, on the hand-worked plant of
tests/api/test_structure_kpis.py: 10–11 March 2026 in Shenyang hold every reading (780 one-minute
steps), so ws1 = 702 kWh, ws2 = 576 kWh and the incomer 1590 kWh, 312 kWh of it unmetered."""

from __future__ import annotations

import json

import pytest
from plotly.utils import PlotlyJSONEncoder

from dashboard.controls import view_of
from dashboard.data import make_reader
from dashboard.page import PageQuery
from dashboard.pages import BY_PATH
from dashboard.refresh import refresh
from tests.api.test_accounting import local, seed
from tests.api.test_structure_kpis import ramps, site_file

PAGE = BY_PATH["/structure"]


@pytest.fixture
def plant(db: str) -> str:
    seed(db, site_file(), ramps())
    return db


def _refresh(url: str, lang: str, inputs: tuple[str, str, str] = ("energy", "electricity", "treemap")):
    view = view_of("tree", "custom", None, "2026-03-10", "2026-03-11", "tree")
    now = local("2026-03-12T12:00:00")
    out = refresh(PAGE, make_reader(url), PageQuery(view, now, inputs=inputs), lang)
    return out[("structure-body", "children")]


def _figures(body) -> list[dict]:
    data = json.loads(json.dumps(body, cls=PlotlyJSONEncoder))
    found: list[dict] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "figure" in node.get("props", {}):
                found.append(node["props"]["figure"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return found


def test_the_tree_the_sankey_and_the_bands_show_the_engine_figures(plant: str) -> None:
    tree, sankey, bands = _figures(_refresh(plant, "en"))
    t = tree["data"][0]
    area = dict(zip(t["ids"], t["values"], strict=True))
    # what a parent's children do not account for is a box of its own: the unmetered remainder
    assert area == {"plant": 0.0, "plant/unmetered": pytest.approx(312.0), "ws1": pytest.approx(702.0),
                    "ws2": pytest.approx(576.0)}
    s = sankey["data"][0]
    labels = s["node"]["label"]
    assert "Unmetered" in labels and "Grid" in labels and "Production process" in labels
    into = {labels[b]: v for a, b, v in zip(s["link"]["source"], s["link"]["target"], s["link"]["value"],
                                              strict=True)}
    assert into["Unmetered"] == pytest.approx(312.0)
    assert into["Plant"] == pytest.approx(1590.0)  # all of it from the grid
    stacked = {b["name"]: sum(b["y"]) for b in bands["data"]}
    assert stacked["Valley"] == pytest.approx(480 * (0.9 + 0.7 + 2.0))  # 23:00–07:00 on every node
    assert sum(stacked.values()) == pytest.approx(702.0 + 576.0 + 1590.0)


def test_the_ranking_and_the_chinese_page(plant: str) -> None:
    body = json.dumps(_refresh(plant, "zh", ("tce", "electricity", "sunburst")), cls=PlotlyJSONEncoder,
                      ensure_ascii=False)
    assert body.index("structure-rank-ws1") < body.index("structure-rank-ws2")  # ws1 used more
    assert "部门排名" in body and "未计量" in body and '"type": "sunburst"' in body
    assert "超过 5% 阈值" in body  # 312 of 1590 kWh is far above the 5 % threshold


def test_a_site_without_a_structure_says_how_to_add_one(db: str) -> None:
    sf = site_file()
    sf.pop("structure")
    sf["meters"] = [{"id": "inc", "role": "grid_import"}]
    seed(db, sf, [])
    body = json.dumps(_refresh(db, "en"), cls=PlotlyJSONEncoder)
    assert "structure-none" in body and "structure:" in body


def test_by_end_use_the_leaves_gather_under_their_end_use(plant: str) -> None:
    (tree, *_) = _figures(_refresh(plant, "en", ("energy", "electricity", "end_use")))
    t = tree["data"][0]
    parent = dict(zip(t["ids"], t["parents"], strict=True))
    area = dict(zip(t["ids"], t["values"], strict=True))
    assert parent["ws1"] == "use:production_process" and parent["ws2"] == "use:unassigned"
    assert parent["plant/unmetered"] == "use:unmetered" and area["plant/unmetered"] == pytest.approx(312.0)
    assert sum(area.values()) == pytest.approx(1590.0)  # everything the incomer counted, once


def test_the_unmetered_table_keeps_the_flagged_and_the_largest() -> None:
    from types import SimpleNamespace

    from dashboard.pages.structure import UNMETERED_ROWS, unmetered
    from lingtan.core.figures import Figure
    from lingtan.core.structure_kpis import Unmetered

    def node(i: int, share: float, flagged: bool):
        u = Unmetered("electricity", 100.0, 100.0 * (1 - share), Figure(100.0 * share, "kWh", 1.0), share,
                      flagged)
        return SimpleNamespace(name=f"n{i}", unmetered=[u])

    nodes = [node(i, 0.001 * i, False) for i in range(40)] + [node(99, 0.2, True)]
    tree = SimpleNamespace(nodes=nodes, unmetered_threshold_pct=5.0)
    body = json.dumps(unmetered(SimpleNamespace(tree=tree), "en"), cls=PlotlyJSONEncoder)
    assert body.count('"type": "Tr"') == 1 + 1 + UNMETERED_ROWS - 1  # header, the flagged, the largest
    assert '"n99"' in body and '"n39"' in body and '"n0"' not in body
    assert f"{41 - UNMETERED_ROWS} more parents" in body
