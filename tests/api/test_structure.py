"""The metering structure through the real app, the site file and a real database: named errors
for every kind of bad input, nothing half-applied, and a structure that survives re-import."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from lingtan.core.site_file import SiteFileError, dump_site_file, parse_site_file
from lingtan.core.site_model import ModelError, export_site_file, import_site_file
from lingtan.kernel.db import get_engine
from lingtan.kernel.yamlmarks import dotted
from tests.api.test_structure_kpis import site_file

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def client(auth_headers: Callable[..., dict[str, str]]) -> TestClient:
    return TestClient(create_app(), headers=auth_headers("engineer"))


def stored(db: str) -> Any:
    with get_engine(db).connect() as conn:
        return conn.execute(sa.text("SELECT structure FROM site_structures WHERE site_id = 'tree'")).scalar()


def imported(db: str) -> dict[str, Any]:
    sf = site_file()
    with get_engine(db).begin() as conn:
        import_site_file(conn, sf, now=NOW)
    return sf


# Each bad structure, the field its error must name, and words the message must contain.
def _cycle(s: dict[str, Any]) -> None:
    s["nodes"][1]["parent"], s["nodes"][2]["parent"] = "ws2", "ws1"


def _twice(s: dict[str, Any]) -> None:
    s["nodes"][2]["meters"].append({"meter": "f1"})


def _unknown(s: dict[str, Any]) -> None:
    s["nodes"][2]["meters"][0]["meter"] = "f9"


def _formula(s: dict[str, Any]) -> None:
    s["virtual_meters"][0]["formula"] = "f1 * f2a"


def _parent(s: dict[str, Any]) -> None:
    s["nodes"][1]["parent"] = "nowhere"


BAD = [
    (_cycle, "nodes.1.parent", "cycle"),
    (_twice, "nodes.2.meters.3.meter", "counted twice"),
    (_unknown, "nodes.2.meters.0.meter", "unknown meter 'f9'"),
    (_formula, "virtual_meters.0.formula", "not linear"),
    (_parent, "nodes.1.parent", "'nowhere' is not a node"),
]


@pytest.mark.parametrize(("spoil", "field", "words"), BAD, ids=[b[1] for b in BAD])
def test_put_refuses_bad_structures_naming_the_field_and_keeps_the_old_one(
        client: TestClient, api_db: str, spoil, field: str, words: str) -> None:
    good = imported(api_db)["structure"]
    before = stored(api_db)
    bad = copy.deepcopy(good)
    spoil(bad)
    r = client.put("/api/v1/sites/tree/structure", json=bad)
    assert r.status_code == 422, r.text
    assert words in r.text, r.text
    detail = r.json()["detail"]
    flat = detail if isinstance(detail, str) else " ".join(".".join(map(str, e["loc"])) + ": " + e["msg"]
                                                           for e in detail)
    assert f"body.{field}" in flat, flat
    assert stored(api_db) == before  # nothing half-applied


@pytest.mark.parametrize(("spoil", "field", "words"), BAD, ids=[b[1] for b in BAD])
def test_a_site_file_with_a_bad_structure_is_refused_whole_with_its_line(
        api_db: str, spoil, field: str, words: str) -> None:
    imported(api_db)
    before = stored(api_db)
    sf = site_file()
    spoil(sf["structure"])
    sf["meters"].append({"id": "brand-new"})  # would be created if anything were applied
    text = dump_site_file_dict(sf)
    with pytest.raises((SiteFileError, ModelError)) as err:
        parsed, _ = parse_site_file(text, "plant.yaml")
        with get_engine(api_db).begin() as conn:
            import_site_file(conn, parsed, now=NOW)
    message = str(err.value)
    assert words in message
    path = tuple(int(p) if p.isdigit() else p for p in ("structure." + field).split("."))
    assert dotted(path) in message, message
    assert stored(api_db) == before
    with get_engine(api_db).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM meters WHERE id = 'brand-new'")).scalar() == 0


def dump_site_file_dict(sf: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(sf, sort_keys=False, allow_unicode=True)


def test_a_yaml_error_names_the_line_of_the_field() -> None:
    sf = site_file()
    _cycle(sf["structure"])
    text = dump_site_file_dict(sf)
    with pytest.raises(SiteFileError) as err:
        parse_site_file(text, "plant.yaml")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "parent: ws2" in t)
    assert str(err.value).startswith(f"plant.yaml:{line}: structure.nodes[1].parent: ")


def test_get_put_round_trip_and_reimport_change_nothing(client: TestClient, api_db: str) -> None:
    sf = imported(api_db)
    got = client.get("/api/v1/sites/tree/structure")
    assert got.status_code == 200
    assert [n["id"] for n in got.json()["nodes"]] == ["plant", "ws1", "ws2"]
    again = client.put("/api/v1/sites/tree/structure", json=got.json())
    assert again.status_code == 200 and again.json() == got.json()
    before = stored(api_db)
    with get_engine(api_db).begin() as conn:
        result = import_site_file(conn, sf, now=NOW)
        assert result.structure_changed is False
        exported = export_site_file(conn, "tree")
    assert stored(api_db) == before
    # what `lingtan site show` writes imports to the same structure
    parsed, _ = parse_site_file(dump_site_file(exported), "shown.yaml")
    with get_engine(api_db).begin() as conn:
        assert import_site_file(conn, parsed, now=NOW).structure_changed is False
    assert stored(api_db) == before


def test_the_structure_kpis_route_returns_the_whole_tree(client: TestClient, api_db: str) -> None:
    imported(api_db)
    r = client.get("/api/v1/sites/tree/structure/kpis", params={"period": "month", "date": "2026-03-10"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [n["id"] for n in body["nodes"]] == ["plant", "ws1", "ws2"]
    assert body["start"].startswith("2026-02-28T16:00:00")
    assert body["nodes"][1]["energy"]["electricity"]["coverage"] == 0.0  # no readings: coverage says so
    bad = client.get("/api/v1/sites/tree/structure/kpis", params={"period": "fortnight"})
    assert bad.status_code == 422 and "period" in bad.text
    assert client.get("/api/v1/sites/nowhere/structure/kpis").status_code == 404


def test_a_viewer_cannot_replace_the_structure(auth_headers, api_db: str) -> None:
    imported(api_db)
    viewer = TestClient(create_app(), headers=auth_headers("viewer"))
    assert viewer.put("/api/v1/sites/tree/structure", json={"nodes": []}).status_code == 403


def test_three_hundred_meters_import_from_one_site_file(api_db: str) -> None:
    root = {"id": "site", "name": "Site", "kind": "site", "meters": [{"meter": "m-000"}]}
    nodes: list[dict[str, Any]] = [root]
    meters = [{"id": f"m-{i:03d}"} for i in range(300)]
    for w in range(10):
        nodes.append({"id": f"w{w}", "name": f"W{w}", "kind": "workshop", "parent": "site",
                      "meters": [{"meter": f"m-{1 + w * 30:03d}"}]})
        for k in range(2, 31):
            i = 1 + w * 30 + k - 1
            if i < 300:
                nodes.append({"id": f"e{i}", "name": f"E{i}", "kind": "equipment", "parent": f"w{w}",
                              "meters": [{"meter": f"m-{i:03d}"}]})
    sf = {"site": {"id": "big", "name": "big"}, "meters": meters, "structure": {"nodes": nodes}}
    with get_engine(api_db).begin() as conn:
        result = import_site_file(conn, sf, now=NOW)
    assert result.meters == 300 and len(result.meters_created) == 300
    assert result.structure_nodes == len(nodes) and result.structure_changed
