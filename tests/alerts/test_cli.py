"""`lingtan alerts test RULE` prints what the rule would send now and changes nothing;
`lingtan alerts list` shows rules and their states."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from lingtan.core import latest
from lingtan.core.alerts import store
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine

ROOT = Path(__file__).parents[2]


def lingtan(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINGTAN_DATABASE_URL": db}
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def test_alerts_test_and_list(db):
    engine = get_engine(db)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name) VALUES ('m', 's', 'm')"))
        conn.execute(sa.text("INSERT INTO readings VALUES (:t, 'm', 'active_power', 3, 0)"),
                     {"t": an_hour_ago})
        latest.catch_up(conn.connection.driver_connection, an_hour_ago)
        rule_id = store.create_rule(conn, parse_rule({
            "kind": "offline", "name": "m online", "scope": {"site_id": "s", "meter_id": "m"},
            "after_s": 600, "recipients": [{"email": "ops@example.com", "language": "en"}]}))

    out = lingtan(db, "alerts", "test", str(rule_id))
    assert out.returncode == 0, out.stderr
    assert "meter:m: 60" in out.stdout and "(> 10 min); ok -> firing" in out.stdout
    assert "would send to ops@example.com (en):" in out.stdout
    assert "[Lingtan FIRING] m online — meter:m" in out.stdout
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alert_outbox")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM alert_states")).scalar_one() == 0

    listed = lingtan(db, "alerts", "list")
    assert listed.returncode == 0
    assert f"{rule_id:>5}  offline" in listed.stdout and "m online" in listed.stdout

    missing = lingtan(db, "alerts", "test", "999999")
    assert missing.returncode == 1 and "alert rule 999999 not found" in missing.stderr
