"""Evaluate a rule now: measure each subject through the public services, step its state, record
events and queue notifications, all inside the caller's transaction.

Measurements read rollups (1-minute buckets for windows up to a day, counter energy tiled over
the coarsest rollups for budgets) or, for "offline", the newest reading of one meter, which the
unique (meter, quantity, time) index answers without a scan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from api.alerts import outbox
from api.alerts.mail import Notification, Rendered, render
from api.alerts.rules import BudgetRule, CompressorRule, OfflineRule, ThresholdRule, parse_rule
from api.alerts.state import AlertState, Condition, Observation, Step, Timing, step
from api.services import amounts, compressors, kpi, periods, queries
from api.services.site_model import load_site_model
from lingtan.settings import Settings

AnyRule = ThresholdRule | OfflineRule | CompressorRule | BudgetRule
# A chart in the e-mail shows at least this much history, so the breach is seen in context.
CHART_SPAN = timedelta(hours=1)


@dataclass(frozen=True)
class Subject:
    key: str  # "site:<id>" or "meter:<id>": the alert_states key
    site_id: str
    meter_id: str | None = None


@dataclass
class Measurement:
    observation: Observation
    condition: Condition
    metric: str
    unit: str
    window: tuple[str, str]
    series: list[float] = field(default_factory=list)
    details: tuple[tuple[tuple[str, str], str], ...] = ()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"


def subjects(conn: sa.Connection, rule: AnyRule) -> list[Subject]:
    """The scope's subjects: the site itself, one meter, or each meter of a role (or of the site)."""
    sc = rule.scope
    if sc.meter_id is not None:
        return [Subject(f"meter:{sc.meter_id}", sc.site_id, sc.meter_id)]
    role = sc.role
    if role is None and isinstance(rule, CompressorRule):
        role = "compressor"
    if role is not None:
        ids = queries.meters_by_role(conn, sc.site_id, role)
    elif isinstance(rule, OfflineRule):
        ids = [m.id for m in queries.list_meters(conn, sc.site_id)]
    else:
        return [Subject(f"site:{sc.site_id}", sc.site_id)]
    return [Subject(f"meter:{m}", sc.site_id, m) for m in ids]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _power(conn: sa.Connection, rule: ThresholdRule, s: Subject, now: datetime) -> Measurement:
    start = now - timedelta(seconds=rule.window_s)
    span = max(CHART_SPAN, timedelta(seconds=rule.window_s))
    if s.meter_id is None:
        series = kpi.power_series(conn, s.site_id, now - span, now, "1m")
        points = [(t, v) for t, v in zip(series.time, series.load_kw, strict=True) if v is not None]
    else:
        rows = queries.readings_series(conn, s.meter_id, "active_power", now - span, now, "1m")
        points = [(r[0], r[1]) for r in rows]
    # The mean of minute means: each minute weighs the same, however many readings it had.
    value = _mean([v for t, v in points if t >= start])
    cond = Condition(rule.op, rule.threshold, rule.hysteresis)
    m = _minutes(rule.window_s)
    return Measurement(cond.observe(value), cond, "power_kw", "kW", (f"{m} 分钟平均", f"{m} min average"),
                       [v for _, v in points])


def _intensity(conn: sa.Connection, rule: ThresholdRule, s: Subject, now: datetime) -> Measurement:
    e = kpi.energy_between(conn, s.site_id, now - timedelta(seconds=rule.window_s), now)
    cond = Condition(rule.op, rule.threshold, rule.hysteresis)
    m = _minutes(rule.window_s)
    return Measurement(cond.observe(e.carbon_intensity_kg_per_kwh), cond, "carbon_intensity", "kgCO2e/kWh",
                       (f"{m} 分钟", f"{m} min"),
                       details=((("电网因子", "grid factor"), f"{e.factor.value} ({e.factor.source})"),))


def _offline(conn: sa.Connection, rule: OfflineRule, s: Subject, now: datetime) -> Measurement:
    assert s.meter_id is not None
    cond = Condition(">", rule.after_s / 60.0)
    window = (f"{rule.quantity}, 超过 {_minutes(rule.after_s)} 分钟", f"{rule.quantity}, over "
              f"{_minutes(rule.after_s)} min")
    newest = queries.latest(conn, s.meter_id, rule.quantity)
    if newest is None:
        # A meter named on its own that never reported is offline; in a site or role scope it may
        # simply not measure this quantity, so it is left alone.
        never = rule.scope.meter_id is not None
        return Measurement(Observation(None, never, False), cond, "offline", "min", window,
                           details=((("最后数据", "last data"), "—"),))
    age_min = max(0.0, (now - newest[0]).total_seconds() / 60.0)
    return Measurement(cond.observe(age_min), cond, "offline", "min", window,
                       details=((("最后数据", "last data"), newest[0].isoformat()),))


def _compressor(conn: sa.Connection, rule: CompressorRule, s: Subject, now: datetime) -> Measurement:
    assert s.meter_id is not None
    model = load_site_model(conn, s.site_id)
    meter = next((m for m in model.meters if m.id == s.meter_id), None)
    spec = meter.params.compressor if meter is not None else None
    limits = compressors.grade_limits(spec) if spec is not None else None
    m = _minutes(rule.window_s)
    window = (f"{m} 分钟, 满载分钟", f"{m} min, fully loaded minutes")
    if limits is None:
        # No nameplate or no GB 19153 row: nothing to compare with, so never a breach.
        return Measurement(Observation(None, False, False), Condition(">", float("inf")),
                           "compressor_specific_power", "kW/(m³/min)", window,
                           details=((("说明", "note"), "no GB 19153-2019 limit for this machine"),))
    cond = Condition(">", limits[rule.grade - 1], rule.hysteresis)
    air = amounts.compressor_air(conn, [s.meter_id], now - timedelta(seconds=rule.window_s), now)
    _, kw, flow = air.get(s.meter_id, (None, None, None))
    sp = kw / flow if kw is not None and flow else None
    rows = queries.readings_series(conn, s.meter_id, "active_power", now - CHART_SPAN, now, "1m")
    return Measurement(cond.observe(sp), cond, "compressor_specific_power", "kW/(m³/min)", window,
                       [r[1] for r in rows], details=(
                           (("满载功率", "loaded power"), "—" if kw is None else f"{kw:.1f} kW"),
                           (("满载流量", "loaded flow"), "—" if flow is None else f"{flow:.2f} m³/min"),
                           (("依据", "limit source"), f"GB 19153-2019 grade {rule.grade}"),
                       ))


def _budget(conn: sa.Connection, rule: BudgetRule, s: Subject, now: datetime) -> Measurement:
    site = queries.get_site(conn, s.site_id)
    local_day = now.astimezone(ZoneInfo(site.timezone)).date()
    start, end = periods.calendar(rule.period, local_day, site.timezone)
    e = kpi.energy_between(conn, s.site_id, start, now)
    so_far = e.consumption_kwh if rule.metric == "energy_kwh" else e.co2_t
    elapsed = (now - start).total_seconds()
    projected = so_far * (end - start).total_seconds() / elapsed if elapsed > 0 else so_far
    value = projected if rule.projection and elapsed >= rule.min_elapsed_s else so_far
    cond = Condition(">", rule.budget * rule.warn_at)
    unit = "kWh" if rule.metric == "energy_kwh" else "tCO2"
    label = ("本日", "this day") if rule.period == "day" else ("本月", "this month")
    kind = ("预计全期", "projected for the period") if value is projected else ("截至目前", "so far")
    return Measurement(cond.observe(value), cond, rule.metric, unit,
                       (f"{label[0]}, {kind[0]}", f"{label[1]}, {kind[1]}"), details=(
                           (("截至目前", "so far"), f"{so_far:,.1f} {unit}"),
                           (("预计", "projected"), f"{projected:,.1f} {unit}"),
                           (("预算", "budget"), f"{rule.budget:,.1f} {unit}"),
                       ))


def measure(conn: sa.Connection, rule: AnyRule, s: Subject, now: datetime) -> Measurement:
    if isinstance(rule, ThresholdRule):
        return _power(conn, rule, s, now) if rule.metric == "power_kw" else _intensity(conn, rule, s, now)
    if isinstance(rule, OfflineRule):
        return _offline(conn, rule, s, now)
    if isinstance(rule, CompressorRule):
        return _compressor(conn, rule, s, now)
    return _budget(conn, rule, s, now)


# --- state, events, notifications -------------------------------------------------------------

@dataclass
class Message:
    key: str
    recipient: str
    language: str
    mail: Rendered
    queued: bool


@dataclass
class Outcome:
    subject: Subject
    measurement: Measurement
    previous: AlertState
    step: Step
    muted: bool
    messages: list[Message]


_STATE = ("SELECT state, since, last_value, notified, last_notified_at, acked_by, acked_at"
          " FROM alert_states WHERE rule_id = :r AND subject = :s FOR UPDATE")


def muted(conn: sa.Connection, rule_id: int, s: Subject, now: datetime) -> bool:
    """A silence in force that matches the rule, site and meter (each where it names one)."""
    return conn.execute(sa.text(
        "SELECT EXISTS (SELECT 1 FROM alert_silences WHERE starts_at <= :now AND ends_at > :now"
        " AND (rule_id IS NULL OR rule_id = :r) AND (site_id IS NULL OR site_id = :site)"
        " AND (meter_id IS NULL OR meter_id = :meter))"
    ), {"now": now, "r": rule_id, "site": s.site_id, "meter": s.meter_id}).scalar_one()


def evaluate_rule(conn: sa.Connection, rule_id: int, rule: AnyRule, settings: Settings,
                  now: datetime | None = None) -> list[Outcome]:
    """Evaluate every subject of the rule at ``now`` and store the result (the caller commits).

    The state row is locked while it is stepped, so two evaluators running at once (there should
    be one, see scheduler) serialise here and the second sees the first's result.
    """
    now = now or datetime.now(UTC)
    timing = Timing(rule.for_s, rule.renotify_s)
    tz = queries.get_site(conn, rule.scope.site_id).timezone
    outcomes = []
    for s in subjects(conn, rule):
        m = measure(conn, rule, s, now)
        conn.execute(sa.text("INSERT INTO alert_states (rule_id, subject, state, since)"
                             " VALUES (:r, :s, 'ok', :t) ON CONFLICT DO NOTHING"),
                     {"r": rule_id, "s": s.key, "t": now})
        row = conn.execute(sa.text(_STATE), {"r": rule_id, "s": s.key}).one()
        prev = AlertState(*row)
        mute = muted(conn, rule_id, s, now)
        st = step(prev, m.observation, now, timing, mute)
        n = st.state
        conn.execute(sa.text(
            "UPDATE alert_states SET state = :state, since = :since, last_value = :v,"
            " last_evaluated_at = :now, notified = :notified, last_notified_at = :ln,"
            " acked_by = :ab, acked_at = :aa"
            " WHERE rule_id = :r AND subject = :s"
        ), {"state": n.state, "since": n.since, "v": n.last_value, "now": now, "notified": n.notified,
            "ln": n.last_notified_at, "ab": n.acked_by, "aa": n.acked_at, "r": rule_id, "s": s.key})
        event_id = None
        kind = st.notice if st.notice == "renotify" else st.transition
        if kind is not None:
            event_id = record_event(conn, rule_id, rule, s.key, "cancelled" if kind == "ok" else kind, now,
                                    m.observation.value, m.condition.threshold,
                                    {"muted": mute, "notified": st.notice is not None})
        messages = []
        if st.notice is not None:
            # The episode is named by when it started firing: the resolution belongs to it too.
            episode = (prev.since if st.notice == "resolved" else n.since) or now
            note = Notification(
                notice=st.notice, rule_id=rule_id, rule_name=rule.name, severity=rule.severity, subject=s.key,
                metric=m.metric, unit=m.unit, value=m.observation.value, threshold=m.condition.threshold,
                op=m.condition.op, window=m.window, time=now, timezone=tz,
                dashboard_url=settings.dashboard_url, details=m.details, series=m.series)
            for r in rule.recipients:
                suffix = f"/{now.isoformat()}" if st.notice == "renotify" else ""
                key = f"rule:{rule_id}/{s.key}/{episode.isoformat()}/{st.notice}{suffix}/{r.email}"
                mail = render(note, r.language)
                queued = outbox.enqueue(conn, key, r.email, r.language, mail, event_id, now)
                messages.append(Message(key, r.email, r.language, mail, queued))
        outcomes.append(Outcome(s, m, prev, st, mute, messages))
    return outcomes


def record_event(conn: sa.Connection, rule_id: int, rule: AnyRule, subject: str, kind: str, now: datetime,
                 value: float | None, threshold: float | None, details: dict[str, Any]) -> int:
    return conn.execute(sa.text(
        "INSERT INTO alert_events (rule_id, rule_name, subject, kind, severity, time, value, threshold,"
        " details) VALUES (:r, :n, :s, :k, :sev, :t, :v, :th, CAST(:d AS jsonb)) RETURNING id"
    ), {"r": rule_id, "n": rule.name, "s": subject, "k": kind, "sev": rule.severity, "t": now, "v": value,
        "th": threshold if threshold is not None and threshold != float("inf") else None,
        "d": json.dumps(details)}).scalar_one()


def load_rule(conn: sa.Connection, rule_id: int) -> tuple[AnyRule, bool]:
    """A stored rule and whether it is enabled; queries.NotFound if there is none."""
    row = conn.execute(sa.text("SELECT definition, enabled FROM alert_rules WHERE id = :id"),
                       {"id": rule_id}).first()
    if row is None:
        raise queries.NotFound(f"alert rule {rule_id} not found")
    return parse_rule(row[0]), bool(row[1])
