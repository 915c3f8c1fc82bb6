"""Gateway rules from the heartbeats the real writer stores: "gateway_offline" (no heartbeat for T)
and the "dead_letters" data-quality check (the dead-letter count rose since the previous
evaluation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.health import HealthRegistry, HeartbeatWriter
from lingtan.core.alerts import store
from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.settings import Settings

SITE = "gw-site"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def site(db: str) -> Iterator[str]:
    # gateway_heartbeats is not emptied between tests (the gateway tests share it): clear this
    # site's rows so that site-scoped rules see only the gateways written here.
    def clear() -> None:
        with get_engine(db).begin() as conn:
            conn.execute(sa.text("DELETE FROM gateway_heartbeats WHERE site_id = :s"), {"s": SITE})

    clear()
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES (:s, 'G')"), {"s": SITE})
        conn.execute(sa.text(
            "INSERT INTO meters (id, site_id, name, role, gateway_id) VALUES"
            " ('m-a', :s, 'a', 'load', 'gwr-a'), ('m-b', :s, 'b', 'compressor', 'gwr-b'),"
            " ('m-x', :s, 'x', 'load', NULL)"), {"s": SITE})
    yield db
    clear()


class Gateway:
    """A gateway's health registry and heartbeat writer; each beat's time is then pinned, so that
    rules can be evaluated at fixed times after it."""

    def __init__(self, db: str, gateway_id: str) -> None:
        self.db, self.id = db, gateway_id
        self.dead = 0
        self.health = HealthRegistry(["m"], gateway_id=gateway_id, site_id=SITE, heartbeat_s=30)
        self.health.bind(dead_letters=lambda: self.dead)

    def beat(self, at: datetime, running: bool = True) -> None:
        assert HeartbeatWriter(self.db, self.health, 30).beat(running=running)
        with get_engine(self.db).begin() as conn:
            conn.execute(sa.text("UPDATE gateway_heartbeats SET time = :t WHERE gateway_id = :g"),
                         {"t": at, "g": self.id})


def rule_of(definition: dict) -> object:
    return parse_rule({"name": "gw", "scope": {"site_id": SITE},
                       "recipients": [{"email": "ops@example.com", "language": "en"},
                                      {"email": "zh@example.com", "language": "zh"}], **definition})


def run(db: str, rule_id: int, rule: object, at: datetime) -> dict:
    with get_engine(db).begin() as conn:
        out = evaluate_rule(conn, rule_id, rule, Settings(database_url=db), at)  # type: ignore[arg-type]
    return {o.subject.key: o for o in out}


def create(db: str, rule: object) -> int:
    with get_engine(db).begin() as conn:
        return store.create_rule(conn, rule)  # type: ignore[arg-type]


def test_gateway_without_heartbeat_for_t_fires(site):
    a, c = Gateway(site, "gwr-a"), Gateway(site, "gwr-c")  # gwr-b (named by m-b) never beats
    a.beat(T0)
    c.beat(T0 + timedelta(minutes=2))
    rule = rule_of({"kind": "gateway_offline", "after_s": 300})
    rule_id = create(site, rule)

    # The site's gateways: those its meters name and those beating for it.
    out = run(site, rule_id, rule, T0 + timedelta(minutes=4))
    assert sorted(out) == ["gateway:gwr-a", "gateway:gwr-b", "gateway:gwr-c"]
    assert {k: o.step.state.state for k, o in out.items()} == {
        "gateway:gwr-a": "ok", "gateway:gwr-b": "ok", "gateway:gwr-c": "ok"}
    # Never heard from and only implied by a meter: left alone rather than guessed offline.
    assert out["gateway:gwr-b"].measurement.observation.value is None

    # 6 minutes after gwr-a's last beat (> 5): it fires; gwr-c (4 minutes) does not yet.
    out = run(site, rule_id, rule, T0 + timedelta(minutes=6))
    assert out["gateway:gwr-a"].measurement.observation.value == pytest.approx(6.0)
    assert out["gateway:gwr-a"].step.notice == "firing"
    assert out["gateway:gwr-c"].measurement.observation.value == pytest.approx(4.0)
    assert out["gateway:gwr-c"].step.state.state == "ok"
    en = out["gateway:gwr-a"].messages[0].mail.text
    zh = out["gateway:gwr-a"].messages[1].mail.text
    assert "Metric: time without a gateway heartbeat" in en and "Current value: 6 min" in en
    assert "gateway state: running" in en
    assert "指标: 网关无心跳时长" in zh and "网关状态: 运行中" in zh

    # A beat brings it back: resolved. A clean stop is judged by the same clock, and says so.
    a.beat(T0 + timedelta(minutes=7))
    c.beat(T0 + timedelta(minutes=3), running=False)
    out = run(site, rule_id, rule, T0 + timedelta(minutes=9))
    assert out["gateway:gwr-a"].step.notice == "resolved"
    assert out["gateway:gwr-c"].measurement.observation.value == pytest.approx(6.0)
    assert out["gateway:gwr-c"].step.state.state == "firing"
    assert ((("网关状态", "gateway state"), ("已正常停止", "stopped cleanly"))
            in out["gateway:gwr-c"].measurement.details)


def test_named_gateway_that_never_beat_is_offline_and_meter_scope_watches_its_gateway(site):
    Gateway(site, "gwr-a").beat(T0)
    named = rule_of({"kind": "gateway_offline", "gateway_id": "gwr-b"})
    out = run(site, create(site, named), named, T0)
    assert list(out) == ["gateway:gwr-b"] and out["gateway:gwr-b"].step.state.state == "firing"

    by_role = rule_of({"kind": "gateway_offline", "scope": {"site_id": SITE, "role": "load"}})
    out = run(site, create(site, by_role), by_role, T0 + timedelta(minutes=1))
    # m-a is on gwr-a; m-x names no gateway.
    assert list(out) == ["gateway:gwr-a"] and out["gateway:gwr-a"].step.state.state == "ok"


def test_dead_letters_fire_when_the_count_rises_between_evaluations(site):
    gw = Gateway(site, "gwr-a")
    gw.dead = 3  # dead letters from before the rule existed
    gw.beat(T0)
    rule = rule_of({"kind": "data_quality", "check": "dead_letters", "gateway_id": "gwr-a",
                    "interval_s": 900})
    rule_id = create(site, rule)

    # The first evaluation records the count; nothing is new yet.
    [o] = run(site, rule_id, rule, T0).values()
    assert o.subject.key == "gateway:gwr-a"
    assert o.measurement.observation.value == 3 and o.step.state.state == "ok"
    gw.beat(T0 + timedelta(minutes=14))
    [o] = run(site, rule_id, rule, T0 + timedelta(minutes=15)).values()
    assert o.step.state.state == "ok" and not o.measurement.observation.breached

    # Two payloads dead-lettered: 5 > 3, fires and says how many are new and since when.
    gw.dead = 5
    gw.beat(T0 + timedelta(minutes=20))
    [o] = run(site, rule_id, rule, T0 + timedelta(minutes=30)).values()
    assert (o.measurement.observation.value, o.measurement.condition.threshold) == (5, 3)
    assert o.step.notice == "firing"
    assert ((("新增死信", "new dead letters"), "2") in o.measurement.details)
    en, zh = (m.mail.text for m in o.messages)
    assert "Metric: dead-lettered payloads (total)" in en and "new dead letters: 2" in en
    assert "since the previous evaluation (2026-06-01T08:15:00+00:00)" in en
    assert "指标: 死信报文累计数" in zh and "自上次评估" in zh

    # None new since: resolved.
    [o] = run(site, rule_id, rule, T0 + timedelta(minutes=45)).values()
    assert o.step.notice == "resolved"
    # A cleared store (count down to 0) is the new reference, not an alert.
    gw.dead = 0
    gw.beat(T0 + timedelta(minutes=50))
    [o] = run(site, rule_id, rule, T0 + timedelta(minutes=60)).values()
    assert o.step.state.state == "resolved" and o.measurement.observation.value == 0
    gw.dead = 1
    gw.beat(T0 + timedelta(minutes=70))
    [o] = run(site, rule_id, rule, T0 + timedelta(minutes=75)).values()
    assert o.step.notice == "firing" and o.measurement.condition.threshold == 0
