"""Site files: line-precise errors, the demo plant's file, and `lingtan site import` / `show`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from lingtan.core.site_file import SiteFile, SiteFileError, parse_site_file
from lingtan.core.site_model import apply_site_file, load_site_model
from lingtan.kernel.db import get_engine, libpq_url

ROOT = Path(__file__).resolve().parents[1]
DEMO_FILE = ROOT / "deploy" / "site-demo-plant.yaml"

SMALL = """\
site:
  id: plant-y
  name: Plant Y
  grid_region: east
meters:
  - {id: y-grid, role: grid_import}
  - id: y-boiler
    role: boiler_fuel
    params: {fuel: natural_gas}
  - id: y-comp
    role: compressor
    params:
      compressor:
        rated_kw: {rated_kw}
        pressure_mpa: 0.7
green_power:
  - {kind: trade, period_start: 2026-11-01, period_end: 2026-12-01, kwh: 5000}
"""


def small(rated_kw: str = "37") -> str:
    return SMALL.replace("{rated_kw}", rated_kw)


@pytest.fixture
def site_db(database_url: str) -> Iterator[str]:
    """The session database without sites (meters, purchases and overrides go with them)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("TRUNCATE sites CASCADE")
    yield database_url


def lingtan(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINGTAN_DATABASE_URL": db}
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_schema_errors_name_file_line_and_field():
    with pytest.raises(SiteFileError) as err:
        parse_site_file(small("-5"), "plant-y.yaml")
    assert str(err.value) == (
        "plant-y.yaml:14: meters[2].params.compressor.rated_kw: Input should be greater than 0")

    text = small().replace("grid_region: east", "grid_region: east\n  timezone: Asia/Shenyang") \
                  .replace("kwh: 5000", "certificates: 5")
    with pytest.raises(SiteFileError) as err:
        parse_site_file(text, "plant-y.yaml")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("plant-y.yaml:5: site.timezone: unknown time zone 'Asia/Shenyang'")
    assert lines[1].startswith("plant-y.yaml:18: green_power[0]: a trade gives kwh")

    with pytest.raises(SiteFileError, match=r"plant-y.yaml:4: site.colour: Extra inputs"):
        parse_site_file(small().replace("name: Plant Y", "name: Plant Y\n  colour: red"), "plant-y.yaml")
    with pytest.raises(SiteFileError, match="not valid YAML"):
        parse_site_file("site: [", "plant-y.yaml")


def test_model_errors_found_on_import_name_the_line_too(site_db: str, tmp_path: Path):
    bad = tmp_path / "plant-y.yaml"
    bad.write_text(small().replace("role: boiler_fuel", "role: load"))
    with pytest.raises(SiteFileError) as err:
        apply_site_file(site_db, bad)
    assert str(err.value).startswith(
        f"{bad}:9: meters[1].params.fuel: applies to meters with role boiler_fuel")

    bad.write_text(small() + "factor_overrides:\n"
                   "  - {kind: grid, subject: east, value: 540, unit: gCO2/kWh, source: utility}\n")
    expected = r"plant-y.yaml:19: factor_overrides\[0\].unit: must be kgCO2/kWh"
    with pytest.raises(SiteFileError, match=expected):
        apply_site_file(site_db, bad)
    with get_engine(site_db).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sites").scalar() == 0  # nothing applied


def test_the_demo_plant_file_matches_the_simulated_plant_and_its_gateway(site_db: str):
    from lingtan.cli.demo import DEMO_SITE, DEMO_SITE_FILE, gateway_config
    from lingtan.kernel.settings import Settings
    from simulators.models.boiler import EFFICIENCY
    from simulators.site import COMPRESSORS, DEVICE_IDS

    assert DEMO_SITE_FILE == DEMO_FILE
    result = apply_site_file(site_db, DEMO_FILE)
    assert result.site_created and sorted(result.meters_created) == sorted(DEVICE_IDS)
    with get_engine(site_db).connect() as conn:
        model = load_site_model(conn, "demo-plant")
    assert (model.site.id, model.site.timezone, model.site.grid_region) == (
        DEMO_SITE["id"], DEMO_SITE["timezone"], DEMO_SITE["grid_region"])
    assert model.factor_set == "mee-2023" and model.params.boiler_efficiency == EFFICIENCY
    # Same roles as the demo gateway registers, so a gateway start does not change the model.
    gateway_roles = {d["id"]: d.get("role") for d in gateway_config(Settings(), Path("/tmp"))["devices"]}
    assert {m.id: m.role for m in model.meters} == gateway_roles
    specs = {m.id: m.params.compressor for m in model.meters_with_role("compressor")}
    assert {k: v.rated_kw for k, v in specs.items() if v} == {c.device_id: c.rated_kw for c in COMPRESSORS}
    [boiler] = model.meters_with_role("boiler_fuel")
    assert boiler.params.fuel == "natural_gas" and boiler.params.boiler_output is not None
    assert {p.kind for p in model.purchases} == {"gec", "trade"}
    assert model.params.gas_price_cny_per_m3 == 3.6
    assert [b.name for b in model.params.tariff.bands] == ["valley", "flat", "peak", "flat", "peak", "flat"]
    assert [b.name for b in model.params.tariffs[1].bands] == [
        "valley", "flat", "peak", "flat", "sharp_peak", "peak", "flat"]
    # the docker-compose demo's gateway reads the same meters the same way
    compose = yaml.safe_load((ROOT / "deploy" / "gateway.yaml").read_text())
    demo = gateway_config(Settings(), Path("/tmp"))

    def reading(d: dict) -> tuple:
        points = [(p["quantity"], p.get("address"), p.get("path"), p.get("unit"))
                  for p in d.get("points") or []]
        return d["id"], d.get("role"), d["protocol"], d.get("unit"), d.get("topic"), d.get("profile"), points

    assert sorted(map(reading, compose["devices"])) == sorted(map(reading, demo["devices"]))


# The demo's first start on 5 December 2026 (noon in Shenyang): an hour metered, the history entered.
DEMO_NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def test_the_demo_programme_has_a_status_for_every_target_and_a_net_balance(db: str):
    """Hand-worked from the file (set mee-2023; 2020 on the site's overrides 0.6012 and 0.5942):

    2020 market: gas 960,000 Nm³ × 21.62 t/10⁴ Nm³ = 2075.52 t; diesel 42 t × 3.145 = 132.09 t;
        grid 3,180,000 kWh × 0.5942 / 1000 = 1889.556 t (no green instruments); 4097.166 t
    2025 market: gas 870,000 × 21.62 / 10⁴ = 1880.94 t; diesel 26 × 3.145 = 81.77 t; grid
        (2,560,000 − 430 GEC × 1000 − 400,000 traded) × 0.6096 / 1000 = 1054.608 t; 3017.318 t
        offsets claimed for 2025: CCER 800 t + forestry sink 300 t; net 1917.318 t
    """
    from lingtan.core import programme_service
    from lingtan.kernel.reading import Reading
    from tests.pipeline import store_readings

    apply_site_file(db, DEMO_FILE)
    # The running year has metered data; it must not stand in for a complete year.
    store_readings(db, [r for i in range(61) for r in (
        Reading(DEMO_NOW - timedelta(minutes=60 - i), "grid-incomer", "active_energy_import", 5000 + 5.8 * i),
        Reading(DEMO_NOW - timedelta(minutes=60 - i), "grid-incomer", "active_energy_export", 10.0),
        Reading(DEMO_NOW - timedelta(minutes=60 - i), "pv-inverter", "active_energy_export", 800 + 0.4 * i))])
    with get_engine(db).connect() as conn:
        _, targets = programme_service.targets(conn, "demo-plant", DEMO_NOW)
        net = programme_service.neutrality(conn, "demo-plant", 2025, DEMO_NOW)
        ev = programme_service.evaluate(conn, "demo-plant", 2025, DEMO_NOW)
    # every evaluation panel has something on first start: the cloud grade over the entered years
    assert ev.cloud is not None and ev.cloud.periods == ["2022", "2023", "2024", "2025"]
    assert ev.cloud.grade in ev.cloud.grades and not ev.cloud.notes
    assert ev.green_factory.score is not None and ev.zero_carbon.levels and ev.zero_carbon.checklist
    by_id = {t.id: t for t in targets}
    assert set(by_id) == {"emissions-2027", "green-power-2027", "pv-self-use-2028", "intensity-2030",
                          "energy-per-unit-2027"}
    for t in targets:
        assert t.base is not None and t.base.value is not None, t.id
        assert t.latest_year is not None
        assert (t.latest_year.label, t.latest_year.source) == ("2025", "entered"), t.id
        assert t.latest_year.value is not None and t.projection is not None, t.id
        # no whole month metered yet: the newest complete year stands for the last 12 months
        assert t.last_12_months is not None
        assert t.last_12_months.label.startswith("2025 (latest complete year")
        assert t.years[-1].label == "2026" and t.years[-1].source == "running", t.id
    em = by_id["emissions-2027"]
    assert em.base.value == pytest.approx(4097.166) and em.latest_year.value == pytest.approx(3017.318)
    # the demo shows progress of each kind
    statuses = {t.status for t in targets}
    assert "on_track" in statuses and statuses & {"at_risk", "off_track"}
    assert net.source == "entered" and net.gross_t == pytest.approx(3017.318)
    assert net.offsets_by_type == {"ccer": 800.0, "forestry_sink": 300.0}
    assert net.net_t == pytest.approx(1917.318) and net.neutral is False


def test_cli_imports_shows_and_reimports(site_db: str, tmp_path: Path):
    out = lingtan(site_db, "site", "import", str(DEMO_FILE))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "site demo-plant: created"
    assert lines[1].startswith("  43 meter(s) (43 created: grid-incomer, pv-inverter, compressor-1,"
                               " compressor-2, boiler, heat-recovery, line-1, wsa-main,")
    assert lines[2:] == [
        "  2 green-power purchase(s) (2 added, 0 removed)",
        "  2 factor override(s) (2 added, 0 removed)",
        "  0 activity data entries (0 added, 0 removed)",
        "  structure: 41 node(s), changed",
        "  zero-carbon programme: changed",
    ]
    again = lingtan(site_db, "site", "import", str(DEMO_FILE))
    assert again.returncode == 0 and again.stdout.splitlines()[0] == "site demo-plant: updated"
    assert again.stdout.splitlines()[-2:] == ["  structure: 41 node(s), unchanged",
                                              "  zero-carbon programme: unchanged"]
    assert "(0 added, 0 removed)" in again.stdout.splitlines()[2]

    shown = lingtan(site_db, "site", "show", "demo-plant")
    assert shown.returncode == 0, shown.stderr
    exported = SiteFile.model_validate(yaml.safe_load(shown.stdout))
    original = parse_site_file(DEMO_FILE.read_text())[0]
    original.meters.sort(key=lambda m: m.id)  # the database keeps no order: `show` lists by id
    assert exported.model_dump() == original.model_dump()
    # `show` output is a site file: importing it changes nothing.
    (tmp_path / "shown.yaml").write_text(shown.stdout)
    third = lingtan(site_db, "site", "import", str(tmp_path / "shown.yaml"))
    assert third.returncode == 0 and third.stdout.count("(0 added, 0 removed)") == 3


def test_cli_reports_a_bad_file_by_line_and_an_unknown_site(site_db: str, tmp_path: Path):
    bad = tmp_path / "plant-y.yaml"
    bad.write_text(small("0"))
    out = lingtan(site_db, "site", "import", str(bad))
    assert out.returncode == 2
    assert f"{bad}:14: meters[2].params.compressor.rated_kw: Input should be greater than 0" in out.stderr
    missing = lingtan(site_db, "site", "show", "nowhere")
    assert missing.returncode == 1 and "nowhere" in missing.stderr


ACTIVITY = """\
activity_data:
  - date: 2026-03-05
    carrier: diesel
    amount: 1000
    unit: L
    density_kg_per_l: 0.84
    evidence: INV-0305
    note: forklifts
  - {period_start: 2026-03-25, period_end: 2026-04-04, carrier: lpg, amount: 1, unit: t,
     evidence: "ledger 2026-Q1 #12"}
  - {date: 2026-03-20, carrier: refrigerant, gas: hfc-410a, amount: 6.5, unit: kg, evidence: SR-3321}
  - {period_start: 2026-04-10, period_end: 2026-04-11, carrier: natural_gas, amount: 30, unit: Nm³,
     evidence: bottle 7}
"""


def test_activity_data_errors_name_file_line_and_field():
    text = small() + ACTIVITY.replace("    density_kg_per_l: 0.84\n", "")
    with pytest.raises(SiteFileError) as err:
        parse_site_file(text, "plant-y.yaml")
    assert str(err.value).startswith("plant-y.yaml:19: activity_data[0].density_kg_per_l: required: diesel "
                                     "given by volume (L) needs its density in kg/L")
    with pytest.raises(SiteFileError, match=r"plant-y.yaml:28: activity_data\[2\].gas: R-22 is a CFC/HCFC"):
        parse_site_file(small() + ACTIVITY.replace("hfc-410a", "R22"), "plant-y.yaml")
    with pytest.raises(SiteFileError, match=r"plant-y.yaml:22: activity_data\[0\].unit: 'kWh' does not"):
        parse_site_file(small() + ACTIVITY.replace("unit: L", "unit: kWh"), "plant-y.yaml")


def test_an_entry_listed_twice_is_refused_by_line(site_db: str, tmp_path: Path):
    bad = tmp_path / "plant-y.yaml"
    refrigerant = ACTIVITY.splitlines(keepends=True)[10]
    assert "SR-3321" in refrigerant
    bad.write_text(small() + ACTIVITY + refrigerant)
    with pytest.raises(SiteFileError, match=r"plant-y.yaml:31: activity_data\[4\]: the same entry as "
                                            r"activity_data\[2\]"):
        apply_site_file(site_db, bad)
    with get_engine(site_db).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM activity_data").scalar() == 0


def test_cli_round_trips_activity_data(site_db: str, tmp_path: Path):
    path = tmp_path / "plant-y.yaml"
    path.write_text(small() + ACTIVITY)
    out = lingtan(site_db, "site", "import", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "  4 activity data entries (4 added, 0 removed)"
    with get_engine(site_db).connect() as conn:
        who = {r[0] for r in conn.exec_driver_sql("SELECT entered_by FROM activity_data")}
    assert len(who) == 1 and who.pop().startswith("site file plant-y.yaml (")

    shown = lingtan(site_db, "site", "show", "plant-y")
    assert shown.returncode == 0, shown.stderr
    # `show` lists entries by their first day (the database keeps no order)
    exported = {e["carrier"]: e for e in yaml.safe_load(shown.stdout)["activity_data"]}
    assert list(exported) == ["diesel", "refrigerant", "lpg", "natural_gas"]
    # the library's spelling and GWP are written out, and a one-day period reads as its day
    assert exported["refrigerant"]["gas"] == "R-410A" and exported["refrigerant"]["gwp"] == 1923.5
    assert "AR5" in exported["refrigerant"]["gwp_source"]
    assert exported["natural_gas"]["date"] == "2026-04-10" and "period_start" not in exported["natural_gas"]
    assert exported["diesel"]["density_kg_per_l"] == 0.84 and exported["diesel"]["note"] == "forklifts"
    original = parse_site_file(path.read_text())[0].activity_data
    shown_entries = SiteFile.model_validate(yaml.safe_load(shown.stdout)).activity_data
    assert sorted(shown_entries, key=lambda e: e.first_day) == sorted(original, key=lambda e: e.first_day)

    (tmp_path / "shown.yaml").write_text(shown.stdout)
    again = lingtan(site_db, "site", "import", str(tmp_path / "shown.yaml"))
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == (
        "  4 activity data entries (0 added, 0 removed)")
    # a file without the LPG line removes exactly that entry
    lines = ACTIVITY.splitlines(keepends=True)
    assert "lpg" in lines[8] and "ledger" in lines[9]
    path.write_text(small() + "".join(lines[:8] + lines[10:]))
    fewer = lingtan(site_db, "site", "import", str(path))
    assert fewer.stdout.splitlines()[-1] == "  3 activity data entries (0 added, 1 removed)", fewer.stdout
