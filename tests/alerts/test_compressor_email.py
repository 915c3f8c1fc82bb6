"""Acceptance: the simulated plant drives compressor-1 into over-consumption (worn airend: free air
delivery 13 → 9 m³/min at the same power) and back; the rule evaluated every minute sends exactly
one "firing" and one "resolved" e-mail through a real SMTP server, with the right numbers."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

import simulators.site as plant
from lingtan.core.alerts import outbox, store
from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from simulators.history import sample
from simulators.site import SiteModel
from tests.pipeline import store_readings

SITE_FILE = Path(__file__).parents[2] / "deploy" / "site-demo-plant.yaml"
# Tuesday 2026-03-03 10:00 in Shenyang: both shifts' line is running, compressor-1 loaded.
T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
WORN_FROM, WORN_UNTIL = T0 + timedelta(minutes=30), T0 + timedelta(minutes=75)
END = T0 + timedelta(minutes=120)
LIMIT = 7.5  # GB 19153-2019 grade 3, 75 kW at 0.8 MPa (lingtan/core/compressors.py; docs/domain.md)


def simulate(url: str, monkeypatch: pytest.MonkeyPatch) -> list[Reading]:
    model = SiteModel(5, T0 - timedelta(hours=1))
    healthy = plant.COMPRESSORS
    worn = (dataclasses.replace(healthy[0], fad_m3min=9.0), healthy[1])
    rows: list[Reading] = []
    for until, specs in ((WORN_FROM, healthy), (WORN_UNTIL, worn), (END, healthy)):
        # The model steps through the module's compressor table: swapping it is the fault.
        monkeypatch.setattr(plant, "COMPRESSORS", specs)
        start = model.now
        rows += [Reading(t, d, q, v) for t, d, q, v in sample(model, until, 60) if t > start or not rows]
    store_readings(url, rows)
    return rows


def loaded_specific_power(rows: list[Reading], a: datetime, b: datetime) -> float:
    """The reference: mean power ÷ mean flow over the minutes compressor-1 was loaded (state 2)."""
    by_t: dict[datetime, dict[str, float]] = {}
    for r in rows:
        if r.meter_id == plant.COMPRESSOR_1 and a <= r.time < b:
            by_t.setdefault(r.time, {})[r.quantity] = r.value
    loaded = [v for v in by_t.values() if v["state"] == 2]
    return sum(v["active_power"] for v in loaded) / sum(v["air_flow"] for v in loaded)


def test_worn_compressor_fires_once_and_resolves_once(db, settings, smtp, monkeypatch):
    engine = get_engine(db)
    with engine.begin() as conn:
        import_site_file(conn, {**yaml.safe_load(SITE_FILE.read_text()), "green_power": []})
    rows = simulate(db, monkeypatch)
    rule = parse_rule({
        "kind": "compressor_specific_power", "name": "Compressor 1 efficiency",
        "scope": {"site_id": "demo-plant", "meter_id": "compressor-1"}, "severity": "critical",
        "window_s": 900, "for_s": 300, "hysteresis": 0.2,
        "recipients": [{"email": "energy@example.com", "language": "en"},
                       {"email": "nengyuan@example.com", "language": "zh"}],
    })
    with engine.begin() as conn:
        rule_id = store.create_rule(conn, rule)

    fired_at = None
    t = T0 + timedelta(minutes=16)
    while t <= END:
        with engine.begin() as conn:
            for o in evaluate_rule(conn, rule_id, rule, settings, t):
                if o.step.notice == "firing":
                    fired_at, fired_value = t, o.measurement.observation.value
        outbox.deliver(engine, settings, t)
        t += timedelta(minutes=1)

    english = [m for m in smtp.inbox.messages if m["To"] == "energy@example.com"]
    chinese = [m for m in smtp.inbox.messages if m["To"] == "nengyuan@example.com"]
    assert [m["Subject"].split("]")[0] for m in english] == ["[Lingtan FIRING", "[Lingtan RESOLVED"]
    assert [m["Subject"].split("]")[0] for m in chinese] == ["[Lingtan 告警触发", "[Lingtan 告警恢复"]
    assert smtp.inbox.logins  # the mailer authenticated with the configured user

    # Fired once the worn machine's window was over the limit for the rule's 5 minutes, not before.
    assert fired_at is not None and WORN_FROM + timedelta(minutes=5) < fired_at < WORN_UNTIL
    expected = loaded_specific_power(rows, fired_at - timedelta(minutes=15), fired_at)
    assert fired_value == pytest.approx(expected, rel=1e-9)
    assert expected > LIMIT  # ~75 kW / 9 m³/min
    body = smtp.inbox.text(english[0])
    assert f"Current value: {fired_value:,.3f}".rstrip("0").rstrip(".") in body
    assert "Threshold: > 7.5 kW/(m³/min)" in body
    assert "Window: 15 min, fully loaded minutes" in body
    assert "http://dashboard.example/" in body
    assert "limit source: GB 19153-2019 grade 3" in body and "loaded power: " in body
    zh = smtp.inbox.text(chinese[0])
    assert "当前值" in zh and "窗口: 15 分钟, 满载分钟" in zh
    assert "依据: GB 19153-2019 3 级" in zh and "满载功率: " in zh
    # HTML alternative with the chart inline.
    html = english[0].get_body(preferencelist=("html",))
    assert html is not None and "cid:chart" in html.get_content()
    images = [p for p in english[0].walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content().startswith(b"\x89PNG")

    # The resolution came after the healthy machine was back, and once: the outbox holds four sent rows.
    resolved = re.search(r"Current value: ([\d.]+)", smtp.inbox.text(english[1]))
    assert resolved and float(resolved.group(1)) <= LIMIT - 0.2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status, count(*) FROM alert_outbox GROUP BY status")).all() == [
            ("sent", 4)]
        kinds = conn.execute(sa.text("SELECT kind FROM alert_events ORDER BY id")).scalars().all()
    assert kinds == ["pending", "firing", "resolved"]
