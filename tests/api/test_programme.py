"""The zero-carbon programme against hand-worked numbers: a base year and three entered years,
targets on track, at risk and off track, offsets of two vintages and the net balance; and the
register's refusals (a certificate is never an offset, a credit counts for one period only).

Hand-worked figures (docs/domain.md, "Zero-carbon programme"), North-East China grid, set mee-2023:

2020 (base; the library starts at 2021, so the site enters overrides: grid 0.6000, residual 0.6500)
    bought 10,000,000 kWh, no PV, diesel 100 t × 3.145 = 314.5 t
    location 10,000,000 × 0.6000 / 1000 = 6000.0 t; market × 0.6500 = 6500.0 t
    Scope 1 + 2 market = 6814.5 t; green share 0
2021: bought 9,000,000, PV 1,000,000 (all used), 1000 GEC = 1,000,000 kWh, diesel 100 t
    market (9,000,000 − 1,000,000) × 0.5942 / 1000 = 4753.6 → 5068.1 t; location 9e6 × 0.6012 = 5410.8
    → 5725.3 t; green share (1e6 + 1e6) / 10e6 = 0.2
2022: bought 8,000,000, PV 2,000,000, 2000 GEC, diesel 100 t
    market (8e6 − 2e6) × 0.5856 / 1000 = 3513.6 → 3828.1 t; green share (2e6 + 2e6) / 10e6 = 0.4
    instruments took off 2,000,000 × 0.5856 / 1000 = 1171.2 t; before them 4999.3 t

Now is 10 January 2023 (site time): no metered data, so 2022 (entered) stands for the last 12
months, at its midpoint 2022.5; the base year sits at 2020.5.

emissions −60 % by 2023: target 6814.5 × 0.4 = 2725.8 t
    projection 6814.5 + (3828.1 − 6814.5) × (2023 − 2020) / (2022.5 − 2020.5) = 2334.9 → on track
    straight line at 2022.5: 6814.5 + (2725.8 − 6814.5) × 2 / 3 = 4088.7
green share 0.85 by 2024 (margin 0.1): projection 0 + 0.4 × 4 / 2 = 0.8; short 0.05 of 0.85 = 5.9 % → at risk
green share 0.9 by 2024 (margin 0.05): projection 0.8; short 0.1 of 0.9 = 11.1 % → off track

Net balance 2022 (ISO 14068-1, market): gross 3828.1; offsets CCER vintage 2021 2000 t + forestry
sink vintage 2022 1000 t = 3000 t; net 828.1 t, not neutral. 2021: VER vintage 2020 1000 t → net 4068.1.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lingtan.core.site_file import SiteFileError, parse_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading

TZ = "Asia/Shanghai"
NOW = datetime(2023, 1, 10, 9, 0, tzinfo=ZoneInfo(TZ))
SITE = "/api/v1/sites/zc-plant"
REL = 1e-9


def diesel(t: float) -> list[dict[str, Any]]:
    return [{"carrier": "diesel", "amount": t, "unit": "t"}]


SITE_FILE: dict[str, Any] = {
    "site": {"id": "zc-plant", "name": "Zero-carbon plant", "timezone": TZ, "grid_region": "north_east"},
    "meters": [{"id": "grid", "role": "grid_import"}],
    "green_power": [{"kind": "gec", "period_start": "2022-01-01", "period_end": "2023-01-01",
                     "certificates": 10, "reference": "GEC-2022-LN-0001"}],
    "factor_overrides": [
        {"kind": "grid", "subject": "north_east", "value": 0.6, "unit": "kgCO2/kWh",
         "source": "test: 2020 regional factor entered by the site", "valid_from": "2020-01-01",
         "valid_to": "2020-12-31"},
        {"kind": "grid_residual", "subject": "national", "value": 0.65, "unit": "kgCO2/kWh",
         "source": "test: 2020 residual mix entered by the site", "valid_from": "2020-01-01",
         "valid_to": "2020-12-31"},
    ],
    "programme": {
        "base_year": 2020,
        "history": [
            {"year": 2020, "electricity_bought_kwh": 10_000_000, "fuels": diesel(100),
             "evidence": "2020 能源利用状况报告"},
            {"year": 2021, "electricity_bought_kwh": 9_000_000, "pv_generation_kwh": 1_000_000,
             "green_certificates": 1000, "fuels": diesel(100), "evidence": "2021 能源利用状况报告"},
            {"year": 2022, "electricity_bought_kwh": 8_000_000, "pv_generation_kwh": 2_000_000,
             "green_certificates": 2000, "fuels": diesel(100), "evidence": "2022 能源利用状况报告"},
        ],
    },
    "targets": [
        {"id": "emissions-2023", "kind": "emissions", "reduction": 0.6, "target_year": 2023},
        {"id": "green-85", "kind": "green_power_share", "value": 0.85, "target_year": 2024,
         "at_risk_margin": 0.1},
        {"id": "green-90", "kind": "green_power_share", "value": 0.9, "target_year": 2024,
         "at_risk_margin": 0.05},
    ],
    "offsets": [
        {"id": "ccer-1", "type": "ccer", "project": "Liaoning wind farm", "vintage": 2021, "quantity_t": 2000,
         "serial_from": "CCER-2021-LN-000001", "serial_to": "CCER-2021-LN-002000", "retired_on": "2023-01-05",
         "reference": "RET-2023-001", "period": 2022},
        {"id": "sink-1", "type": "forestry_sink", "project": "Fushun afforestation", "vintage": 2022,
         "quantity_t": 1000, "serial_from": "FS-2022-00001", "serial_to": "FS-2022-01000",
         "retired_on": "2023-01-06", "reference": "RET-2023-002", "period": 2022},
        {"id": "ver-1", "type": "ver", "project": "Cookstoves", "vintage": 2020, "quantity_t": 1000,
         "serial_from": "VCS-2020-0001", "serial_to": "VCS-2020-1000", "retired_on": "2022-01-20",
         "reference": "RET-2022-009", "period": 2021},
    ],
    "evaluations": {
        "zero_carbon": {"checklist": [
            {"item": "carbon accounting to GB/T 32150", "pathway": "carbon accounting", "status": "met",
             "evidence": "2022 inventory report", "from_stars": 3},
            {"item": "product carbon footprint of the main product", "status": "not_met", "from_stars": 4}]},
        "green_factory": {"indicators": [
            {"indicator": "green_power_share", "baseline": 0.2, "leading": 0.6, "weight": 0.5,
             "source": "test entry"},
            {"indicator": "carbon_per_tce", "baseline": 3.0, "leading": 2.0, "weight": 0.5,
             "source": "test entry"}]},
        "cloud": {"grades": ["A", "B"], "period": "year", "periods": 3, "he": 0.0, "source": "test entry",
                  "indicators": [{"indicator": "green_power_share", "weight": 1.0,
                                  "intervals": [[0.3, 0.6], [0.0, 0.3]]}]},
    },
}


@pytest.fixture
def zc(api_db: str) -> str:
    from lingtan.core.site_model import import_site_file

    with get_engine(api_db).begin() as conn:
        import_site_file(conn, copy.deepcopy(SITE_FILE))
    return api_db


@pytest.fixture
def viewer(auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers("viewer")


def close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= 1e-6 * max(1.0, abs(b))


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in items}


def test_targets_follow_the_hand_worked_projection_and_status(zc: str, api_client: TestClient,
                                                              viewer: dict[str, str]) -> None:
    with clock.frozen(NOW):
        r = api_client.get(f"{SITE}/targets", headers=viewer)
    assert r.status_code == 200, r.text
    t = by_id(r.json()["targets"])
    em = t["emissions-2023"]
    assert close(em["base"]["value"], 6814.5) and em["base"]["source"] == "entered"
    assert close(em["target_value"], 2725.8)
    assert em["last_12_months"]["label"].startswith("2022") and close(em["last_12_months"]["value"], 3828.1)
    assert close(em["trajectory_now"], 4088.7)
    assert [p["year"] for p in em["trajectory"]] == [2020, 2021, 2022, 2023]
    assert close(em["trajectory"][1]["value"], 6814.5 - 4088.7 / 3)
    assert close(em["projection"]["value"], 2334.9) and em["projection"]["year"] == 2023
    assert em["status"] == "on_track"
    assert em["latest_year"]["label"] == "2022" and em["latest_year"]["source"] == "entered"
    assert [(y["label"], round(y["value"], 6)) for y in em["years"]] == [
        ("2020", 6814.5), ("2021", 5068.1), ("2022", 3828.1)]
    g85, g90 = t["green-85"], t["green-90"]
    assert close(g85["base"]["value"], 0.0) and close(g85["last_12_months"]["value"], 0.4)
    assert close(g85["projection"]["value"], 0.8) and close(g90["projection"]["value"], 0.8)
    assert g85["status"] == "at_risk" and "6%" in g85["reason"]
    assert g90["status"] == "off_track" and "11%" in g90["reason"]


def test_net_balance_of_two_years_equals_the_hand_worked_numbers(zc: str, api_client: TestClient,
                                                                 viewer: dict[str, str]) -> None:
    with clock.frozen(NOW):
        y22 = api_client.get(f"{SITE}/neutrality", params={"period": "year", "date": "2022-06-30"},
                             headers=viewer).json()
        y21 = api_client.get(f"{SITE}/neutrality", params={"period": "year", "date": "2021-01-01"},
                             headers=viewer).json()
    assert close(y22["gross_t"], 3828.1) and close(y22["instruments_t"], 1171.2)
    assert close(y22["before_instruments_t"], 4999.3)
    assert y22["offsets_by_type"] == {"ccer": 2000.0, "forestry_sink": 1000.0}
    assert close(y22["offsets_t"], 3000.0) and close(y22["net_t"], 828.1) and y22["neutral"] is False
    assert y22["rule"] == "iso14068_market" and "ISO 14068-1" in y22["rule_text"]
    assert close(y21["gross_t"], 5068.1) and close(y21["net_t"], 4068.1)
    assert [o["id"] for o in y21["offsets"]] == ["ver-1"]


def _refused(change: Callable[[dict[str, Any]], None], marker: str = "") -> str:
    """The error of the site file changed by ``change``; with ``marker``, it must name the line
    the marker is on."""
    import yaml

    data = copy.deepcopy(SITE_FILE)
    change(data)
    text = yaml.safe_dump(data, allow_unicode=True)
    with pytest.raises(SiteFileError) as exc:
        parse_site_file(text, "site.yaml")
    if marker:
        line = next(i for i, ln in enumerate(text.splitlines(), start=1) if marker in ln)
        assert str(exc.value).startswith(f"site.yaml:{line}: ")
    return str(exc.value)


def test_a_certificate_is_never_an_offset() -> None:
    def as_type(d: dict[str, Any]) -> None:
        d["offsets"][0]["type"] = "gec"
    msg = _refused(as_type, "type: gec")
    assert "offsets[0].type:" in msg and "Scope 2 instrument, never an offset" in msg

    def same_reference(d: dict[str, Any]) -> None:
        d["offsets"][1]["reference"] = "GEC-2022-LN-0001"
    msg = _refused(same_reference)
    assert "offsets[1].reference" in msg and "cannot also reduce the net as an offset" in msg


def test_a_retired_credit_counts_for_one_period_only() -> None:
    def claimed_twice(d: dict[str, Any]) -> None:
        d["offsets"].append({**d["offsets"][0], "id": "ccer-again", "serial_from": "CCER-2021-LN-001500",
                             "serial_to": "CCER-2021-LN-001599", "quantity_t": 100, "period": 2021})
    msg = _refused(claimed_twice)
    assert "offsets[3].serial_from" in msg and "ccer-1, claimed for 2022" in msg
    assert "counts for one period only" in msg


def test_evaluations_of_an_entered_year_equal_the_hand_worked_numbers(zc: str, api_client: TestClient,
                                                                      viewer: dict[str, str]) -> None:
    """2022: tce = 10,000,000 kWh × 0.1229 kgce/kWh + 100 t diesel × 1.4571 = 1229 + 145.71 = 1374.71;
    carbon per tce 3828.1 ÷ 1374.71 = 2.784660; offset share 3000 ÷ 3828.1 = 0.783679.
    Shipped 3★ (stand-in, unverified): renewable ≥ 35 % met (40 %), carbon per tce ≤ 1.25 not met → no level.
    Green factory: share (0.4 − 0.2) ÷ (0.6 − 0.2) = 0.5; per tce (2.784660 − 3) ÷ (2 − 3) = 0.215340;
    score 100 × (0.5 × 0.5 + 0.5 × 0.215340) = 35.7670."""
    with clock.frozen(NOW):
        r = api_client.get(f"{SITE}/evaluations", params={"year": 2022}, headers=viewer)
    assert r.status_code == 200, r.text
    zc_ = r.json()["zero_carbon"]
    assert close(zc_["renewable_share"], 0.4) and close(zc_["offset_share"], 3000 / 3828.1)
    assert close(zc_["carbon_per_tce"], 3828.1 / 1374.71)
    assert zc_["stars"] is None and zc_["next_stars"] == 3
    assert any("carbon_per_tce" in b and "1.25" in b for b in zc_["blockers"])
    assert not any(b.startswith("renewable_share") for b in zc_["blockers"])
    six = next(lv for lv in zc_["levels"] if lv["stars"] == 6)
    assert six["verified"] and "T/CECA-G 0171" in six["source"]
    four = next(lv for lv in zc_["levels"] if lv["stars"] == 4)
    assert four["checklist_open"] == ["product carbon footprint of the main product"]
    gf = r.json()["green_factory"]
    lines = {ln["indicator"]: ln for ln in gf["indicators"]}
    assert close(lines["green_power_share"]["score"], 0.5)
    assert close(lines["carbon_per_tce"]["score"], 3 - 3828.1 / 1374.71)  # (v − 3) ÷ (2 − 3)
    assert round(lines["carbon_per_tce"]["score"], 6) == 0.21534
    assert close(gf["score"], 100 * (0.25 + 0.5 * (3 - 3828.1 / 1374.71)))
    assert round(gf["score"], 4) == 35.767
    # Cloud over 2020–2022, green share 0, 0.2, 0.4: Ex 0.2; En = √(π/2) × (0.2 + 0 + 0.2) ÷ 3 = 0.16710855;
    # S² = 0.08 ÷ 2 = 0.04, He = √(0.04 − 0.16710855²) = 0.10988509. Grade clouds: A Ex 0.45, En 0.05;
    # B Ex 0.15, En 0.05 (He 0). μ_A = exp(−0.25² ÷ 0.005) = exp(−12.5) = 3.726653e-6;
    # μ_B = exp(−0.05² ÷ 0.005) = exp(−0.5) = 0.6065307 → grade B.
    c = r.json()["cloud"]
    assert c["period"] == "year" and c["periods"] == ["2020", "2021", "2022"]
    ind = c["indicators"][0]
    assert close(ind["ex"], 0.2) and round(ind["en"], 8) == 0.16710855 and round(ind["he"], 8) == 0.10988509
    assert abs(ind["certainty"][0] - 3.726653172e-6) < 1e-15 and round(ind["certainty"][1], 7) == 0.6065307
    assert c["grade"] == "B" and close(c["u"][1], ind["certainty"][1])


def test_bad_requests_name_the_field(zc: str, api_client: TestClient, viewer: dict[str, str],
                                     auth_headers: Callable[..., dict[str, str]]) -> None:
    with clock.frozen(NOW):
        future = api_client.get(f"{SITE}/neutrality", params={"period": "year", "date": "2031-01-01"},
                                headers=viewer)
        month = api_client.get(f"{SITE}/neutrality", params={"period": "month", "date": "2022-01-01"},
                               headers=viewer)
        no_year = api_client.get(f"{SITE}/evaluations", headers=viewer)
        bad_put = api_client.put(f"{SITE}/programme", headers=auth_headers("engineer"), json={
            "targets": [{"id": "t", "kind": "intensity", "reduction": 0.3, "target_year": 2030}]})
    assert future.status_code == 422 and "date" in future.text and "has not begun" in future.text
    assert month.status_code == 422 and "period" in month.text
    assert no_year.status_code == 422 and "year" in no_year.text
    assert bad_put.status_code == 422 and "per" in bad_put.text and "intensity" in bad_put.text


def test_an_entered_year_without_a_factor_is_refused_at_its_line(api_db: str, tmp_path: Path) -> None:
    """The library starts at 2021: 2020 without the site's overrides cannot be computed."""
    import yaml

    from lingtan.core.site_model import apply_site_file

    data = copy.deepcopy(SITE_FILE)
    data["factor_overrides"] = []
    path = tmp_path / "site.yaml"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SiteFileError) as exc:
        apply_site_file(api_db, path)
    line = next(i for i, ln in enumerate(text.splitlines(), start=1) if "- year: 2020" in ln)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}: programme.history[0].year: 2020 cannot be computed"), msg
    assert "factor_override" in msg
    with get_engine(api_db).connect() as conn:  # nothing of the refused file was written
        assert conn.execute(sa.text("SELECT count(*) FROM sites WHERE id = 'zc-plant'")).scalar_one() == 0


def ramp(meter: str, start: datetime, hours: int, first: float, per_hour: float) -> list[Reading]:
    """A counter read every 15 minutes, rising ``per_hour`` kWh an hour."""
    return [Reading(start + timedelta(minutes=15 * i), meter, "active_energy_import",
                    first + per_hour * i / 4) for i in range(hours * 4 + 1)]


def test_metered_years_use_closed_figures_and_the_year_to_date(zc: str, api_client: TestClient,
                                                               viewer: dict[str, str],
                                                               auth_headers: Callable[..., dict[str, str]]
                                                               ) -> None:
    """2023 is metered: 10 hours in December at 1000 kWh/h; the year is closed in January 2024, then
    late readings arrive for 2023. The target's latest year keeps the closed figure (market-based:
    10,000 kWh × the 2023 residual mix 0.6096 / 1000 = 6.096 t; no fuel is metered), while the year
    to date 2024 (5 hours at 1000 kWh/h on 2 January) and the last 12 months come from the engine now."""
    from tests.pipeline import store_readings

    dec = datetime(2023, 12, 10, 8, 0, tzinfo=ZoneInfo(TZ)).astimezone(UTC)
    store_readings(zc, ramp("grid", dec, 10, 0.0, 1000.0))
    with clock.frozen(datetime(2024, 1, 2, 9, 0, tzinfo=ZoneInfo(TZ))):
        closed = api_client.post(f"{SITE}/periods/year/2023-01-01/close", headers=auth_headers("engineer"),
                                 json={"note": "year end"})
        assert closed.status_code in (200, 201), closed.text
    # late data for 2023, and 2024 so far
    store_readings(zc, ramp("grid", dec + timedelta(days=5), 2, 10_000.0, 1000.0))
    jan = datetime(2024, 1, 2, 8, 0, tzinfo=ZoneInfo(TZ)).astimezone(UTC)
    store_readings(zc, ramp("grid", jan, 5, 12_000.0, 1000.0))  # the counter goes on from 12,000
    with clock.frozen(datetime(2024, 1, 3, 9, 0, tzinfo=ZoneInfo(TZ))):
        em = by_id(api_client.get(f"{SITE}/targets", headers=viewer).json()["targets"])["emissions-2023"]
        kpis_2023 = api_client.get(f"{SITE}/kpis", params={"period": "year", "date": "2023-06-01"},
                                   headers=viewer).json()
    assert em["latest_year"]["label"] == "2023" and em["latest_year"]["source"] == "closed"
    assert close(em["latest_year"]["value"], 10_000 * 0.6096 / 1000)
    # the same year recomputed now has the late readings; the closed figure does not move
    assert close(kpis_2023["carbon"]["scope12_market_t"]["value"], 12_000 * 0.6096 / 1000)
    assert em["year_to_date"]["label"] == "2024 to date" and em["year_to_date"]["source"] == "running"
    assert close(em["year_to_date"]["value"], 5_000 * 0.6096 / 1000)
    # the target year 2023 is over: its own (closed) value decides, 6.096 t against 2725.8 t
    assert em["status"] == "on_track" and "the target year 2023 is over" in em["reason"]
    assert "(met)" in em["reason"]
    # 12 metered hours are not a year: the newest complete year, entered 2022, stands in
    assert em["last_12_months"]["label"] == (
        "2022 (latest complete year; the last 12 months have data for 0.1% of their time)")
    assert close(em["last_12_months"]["value"], 3828.1)


def test_the_year_ends_at_local_midnight_not_utc(zc: str, api_client: TestClient, viewer: dict[str, str]
                                                 ) -> None:
    """1000 kWh from 22:00 to 23:00 on 31 December (Shanghai), nothing around midnight, 500 kWh from
    00:30 to 01:30 on 1 January: in UTC all of it is on 31 December (14:00–17:30). 2023 holds
    1000 kWh × 0.6096 / 1000 = 0.6096 t; 2024 to date 500 kWh = 0.3048 t."""
    from tests.pipeline import store_readings

    at = datetime(2023, 12, 31, 22, 0, tzinfo=ZoneInfo(TZ)).astimezone(UTC)
    quiet = [Reading(at + timedelta(minutes=15 * i), "grid", "active_energy_import", 1000.0)
             for i in range(5, 10)]  # 23:15 … 00:15 local: the counter stands still
    store_readings(zc, [*ramp("grid", at, 1, 0.0, 1000.0), *quiet,
                        *ramp("grid", at + timedelta(hours=2, minutes=30), 1, 1000.0, 500.0)])
    with clock.frozen(datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo(TZ))):  # 1 January 01:00 UTC
        em = by_id(api_client.get(f"{SITE}/targets", headers=viewer).json()["targets"])["emissions-2023"]
        y23 = api_client.get(f"{SITE}/neutrality", params={"date": "2023-12-31"}, headers=viewer).json()
    assert em["year_to_date"]["label"] == "2024 to date"
    assert close(em["year_to_date"]["value"], 0.3048)
    assert y23["source"] == "provisional" and close(y23["gross_t"], 0.6096)


def test_the_programme_is_replaced_whole_over_the_api(zc: str, api_client: TestClient, viewer: dict[str, str],
                                                      auth_headers: Callable[..., dict[str, str]]) -> None:
    engineer = auth_headers("engineer")
    z = api_client.get(f"{SITE}/programme", headers=viewer).json()
    assert [t["id"] for t in z["targets"]] == ["emissions-2023", "green-85", "green-90"]
    z["targets"] = z["targets"][:1]
    z["offsets"].append({**z["offsets"][0], "id": "ccer-2", "serial_from": "CCER-2021-LN-001999",
                         "serial_to": "CCER-2021-LN-002001", "quantity_t": 3, "period": 2021})
    refused = api_client.put(f"{SITE}/programme", headers=engineer, json=z)
    assert refused.status_code == 422 and "body.offsets.3.serial_from" in refused.text
    assert "counts for one period only" in refused.text
    assert len(api_client.get(f"{SITE}/programme", headers=viewer).json()["targets"]) == 3  # unchanged
    z["offsets"].pop()
    assert api_client.put(f"{SITE}/programme", headers=viewer, json=z).status_code == 403
    ok = api_client.put(f"{SITE}/programme", headers=engineer, json=z)
    assert ok.status_code == 200, ok.text
    assert [t["id"] for t in api_client.get(f"{SITE}/programme", headers=viewer).json()["targets"]] == [
        "emissions-2023"]
