"""The site model owns meter names, roles and sites; a gateway start only registers meters nobody
has described yet — whichever of the two comes first (the demo: site file vs gateway start)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from gateway.config import parse_config
from gateway.runtime import Gateway
from gateway.sinks.postgres import register_devices
from lingtan.cli.demo import DEMO_SITE_FILE, gateway_config
from lingtan.core.site_model import apply_site_file
from lingtan.kernel.db import get_engine
from lingtan.kernel.settings import Settings
from tests.gateway.test_postgres_sink import fetch


def start_demo_gateway(db: str, tmp_path: Path) -> None:
    """What the demo's gateway does at its first write: register the meters of its config."""
    config = gateway_config(Settings(database_url=db), tmp_path)
    cfg = parse_config(yaml.safe_dump(config), "demo gateway config")
    # an unreachable broker: nothing connects before start(), and start() is not called
    gw = Gateway(cfg, db, mqtt_url="mqtt://127.0.0.1:1")
    try:
        gw._register()
    finally:
        gw.sink.close()
        gw.buffer.close()
        gw.dead_letters.close()


def meters(db: str) -> dict[str, tuple[str, str | None, str, str | None, str | None]]:
    rows = fetch(db, "SELECT id, name, role, site_id, protocol, gateway_id FROM meters")
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize("gateway_first", [True, False], ids=["gateway-then-import", "import-then-gateway"])
def test_demo_site_file_names_survive_a_gateway_start(db: str, tmp_path: Path, gateway_first: bool) -> None:
    if gateway_first:
        start_demo_gateway(db, tmp_path)
        # nobody had described the meters: the gateway's ids stand in for names
        assert meters(db)["compressor-1"][:2] == ("compressor-1", "compressor")
    apply_site_file(db, DEMO_SITE_FILE)
    structure = fetch(db, "SELECT structure, updated_at FROM site_structures WHERE site_id = 'demo-plant'")
    assert structure and len(structure[0][0]["nodes"]) > 30
    start_demo_gateway(db, tmp_path)
    start_demo_gateway(db, tmp_path)  # a restart changes nothing either
    # the metering structure survives gateway starts untouched, and so does every meter it counts
    after = fetch(db, "SELECT structure, updated_at FROM site_structures WHERE site_id = 'demo-plant'")
    assert after == structure
    assert {m for m, row in meters(db).items() if row[2] == "demo-plant"} >= {
        c["meter"] for n in structure[0][0]["nodes"] for c in n.get("meters", [])} - {"wsa-net"}
    m = meters(db)
    assert m["compressor-1"] == ("Screw compressor 1 (75 kW, lead)", "compressor", "demo-plant", "modbus-tcp",
                                 "demo-gw-1")
    assert m["compressor-2"][:2] == ("Screw compressor 2 (37 kW, lag)", "compressor")
    assert m["pv-inverter"][:2] == ("Rooftop PV inverter", "pv_generation")
    assert m["line-1"] == ("Production line 1", "production", "demo-plant", "mqtt", "demo-gw-1")
    assert fetch(db, "SELECT name FROM sites WHERE id = 'demo-plant'") == [("Demo plant, Shenyang",)]


def test_a_meter_described_through_the_api_keeps_its_name_and_role(
        api_client: TestClient, auth_headers: Callable[..., dict[str, str]], api_db: str,
        caplog: pytest.LogCaptureFixture) -> None:
    register_devices(api_db, "gw-1", "plant", "Plant", [("m1", "m1", "load", "modbus-tcp")])
    r = api_client.patch("/api/v1/meters/m1", headers=auth_headers("engineer"),
                         json={"name": "Paint line feeder", "role": "compressor"})
    assert r.status_code == 200, r.text
    with get_engine(api_db).begin() as conn:
        conn.exec_driver_sql("UPDATE sites SET name = 'Plant, Suzhou' WHERE id = 'plant'")

    # the gateway starts again with other names and roles, and carries a meter nobody described
    register_devices(api_db, "gw-2", "plant", "plant", [
        ("m1", "Meter 1", "grid_import", "mqtt"),
        ("m2", "Boiler gas meter", "boiler_fuel", "modbus-rtu"),
    ])
    m = meters(api_db)
    # name, role and site are the site model's; protocol and carrier are the gateway's facts
    assert m["m1"] == ("Paint line feeder", "compressor", "plant", "mqtt", "gw-2")
    # a brand-new meter takes what the gateway says
    assert m["m2"] == ("Boiler gas meter", "boiler_fuel", "plant", "modbus-rtu", "gw-2")
    assert fetch(api_db, "SELECT name FROM sites") == [("Plant, Suzhou",)]

    # a gateway of another site naming the same meter id moves nothing, and says so
    with caplog.at_level(logging.WARNING, logger="gateway.sinks.postgres"):
        register_devices(api_db, "gw-9", "elsewhere", "Elsewhere", [("m1", "m1", "load", "modbus-tcp")])
    assert meters(api_db)["m1"] == ("Paint line feeder", "compressor", "plant", "mqtt", "gw-2")
    assert "'m1' belongs to site 'plant'" in caplog.text
