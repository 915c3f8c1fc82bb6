"""Evaluate a rule now: measure each subject through the public services, step its state, record
events and queue notifications, all inside the caller's transaction.

Measurements read rollups (1-minute buckets for windows up to a day, counter energy tiled over
the coarsest rollups for budgets and baselines) or, for "offline", the newest reading of one meter,
which the unique (meter, quantity, time) index answers without a scan; gateway rules read the
gateway's latest heartbeat; the target rule reads the statuses of the programme's one engine
(``programme_service.targets``), the EnPI drift rule the daily points of an energy baseline
(``savings_service.baseline``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from lingtan.core import (
    amounts,
    compressors,
    frozen,
    gateways,
    kpi,
    programme_service,
    queries,
    savings_service,
)
from lingtan.core.alerts import outbox
from lingtan.core.alerts.mail import Notification, Rendered, render, words
from lingtan.core.alerts.rules import (
    AnyRule,
    BudgetRule,
    CompressorRule,
    CounterResetRule,
    DeadLetterRule,
    DeviationRule,
    EnpiDriftRule,
    FrozenRule,
    GatewayOfflineRule,
    OfflineRule,
    TargetRule,
    ThresholdRule,
    parse_rule,
)
from lingtan.core.alerts.state import AlertState, Condition, Observation, Step, Timing, step
from lingtan.core.counters import counter_energy
from lingtan.core.energy import counter_step
from lingtan.core.rollups import RESOLUTIONS
from lingtan.core.site_model import load_site_model
from lingtan.core.targets import TargetStatus
from lingtan.kernel import clock, periods
from lingtan.kernel.i18n import Lang
from lingtan.kernel.i18n import t as text_of
from lingtan.kernel.settings import Settings

MINUTE = timedelta(minutes=1)
Text = str | tuple[str, str]  # a detail's value: language-neutral text, or (zh, en) words
# A chart in the e-mail shows at least this much history, so the breach is seen in context.
CHART_SPAN = timedelta(hours=1)


@dataclass(frozen=True)
class Subject:
    key: str  # "site:<id>", "meter:<id>" or "gateway:<id>": the alert_states key
    site_id: str
    meter_id: str | None = None
    gateway_id: str | None = None


@dataclass
class Measurement:
    observation: Observation
    condition: Condition
    metric: str
    unit: str
    window: tuple[str, str]
    series: list[float] = field(default_factory=list)
    details: tuple[tuple[tuple[str, str], Text], ...] = ()
    # what the e-mail's subject says after the rule's name, as (zh, en); none: "<subject>: <value>"
    headline: tuple[str, str] | None = None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"


# An alert's words, from the catalog (lingtan/kernel/locale, keys mail.window.*, mail.detail.*,
# mail.note.*, mail.state.*), as (zh, en).
def _window(key: str, **values: object) -> tuple[str, str]:
    return words(f"mail.window.{key}", **values)


def _detail(key: str) -> tuple[str, str]:
    return words(f"mail.detail.{key}")


def _note(key: str, **values: object) -> tuple[str, str]:
    return words(f"mail.note.{key}", **values)


def _gateways(conn: sa.Connection, rule: GatewayOfflineRule | DeadLetterRule) -> list[str]:
    """The gateway named, the gateways of the scope's meters, or for a site every gateway that
    reports for it (heartbeat) or carries one of its meters."""
    sc = rule.scope
    if rule.gateway_id is not None:
        return [rule.gateway_id]
    named = {r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT gateway_id FROM meters WHERE site_id = :s AND gateway_id IS NOT NULL"
        " AND (CAST(:m AS text) IS NULL OR id = :m) AND (CAST(:r AS text) IS NULL OR role = :r)"),
        {"s": sc.site_id, "m": sc.meter_id, "r": sc.role})}
    if sc.level == "site":
        named |= {g.id for g in gateways.list_gateways(conn) if g.site_id == sc.site_id}
    return sorted(named)


def subjects(conn: sa.Connection, rule: AnyRule) -> list[Subject]:
    """The scope's subjects: the site itself, one meter, each meter of a role (or of the site), or
    for gateway rules each gateway of the scope."""
    sc = rule.scope
    if isinstance(rule, GatewayOfflineRule | DeadLetterRule):
        return [Subject(f"gateway:{g}", sc.site_id, gateway_id=g) for g in _gateways(conn, rule)]
    if sc.meter_id is not None:
        return [Subject(f"meter:{sc.meter_id}", sc.site_id, sc.meter_id)]
    role = sc.role
    if role is None and isinstance(rule, CompressorRule):
        role = "compressor"
    if role is not None:
        ids = queries.meters_by_role(conn, sc.site_id, role)
    elif isinstance(rule, OfflineRule | CounterResetRule | FrozenRule):
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
    return Measurement(cond.observe(value), cond, "power_kw", "kW", _window("average", minutes=m),
                       [v for _, v in points])


def _carbon_factor(k: kpi.WindowKpis, basis: str) -> str:
    f = next((f for f in k.factors if f.kind == ("grid_residual" if basis == "market" else "grid")), None)
    return "—" if f is None else f"{f.value} ({f.source})"


def _intensity(conn: sa.Connection, rule: ThresholdRule, s: Subject, now: datetime) -> Measurement:
    # The KPI engine's window, so the alert reads the number the intensity tile shows.
    k = kpi.window_kpis(conn, s.site_id, now - timedelta(seconds=rule.window_s), now, now)
    c = k.carbon
    figure = c.intensity_market_kg_per_kwh if rule.basis == "market" else c.intensity_location_kg_per_kwh
    value = figure.value
    cond = Condition(rule.op, rule.threshold, rule.hysteresis)
    m = _minutes(rule.window_s)
    return Measurement(cond.observe(value), cond, "carbon_intensity", "kgCO2e/kWh",
                       _window("minutes", minutes=m),
                       details=((_detail("grid_factor"), _carbon_factor(k, rule.basis)),))


def _offline(conn: sa.Connection, rule: OfflineRule, s: Subject, now: datetime) -> Measurement:
    assert s.meter_id is not None
    cond = Condition(">", rule.after_s / 60.0)
    window = _window("offline", quantity=rule.quantity, minutes=_minutes(rule.after_s))
    newest = queries.latest(conn, s.meter_id, rule.quantity)
    if newest is None:
        # A meter named on its own that never reported is offline; in a site or role scope it may
        # simply not measure this quantity, so it is left alone.
        never = rule.scope.meter_id is not None
        return Measurement(Observation(None, never, False), cond, "offline", "min", window,
                           details=((_detail("last_data"), "—"),))
    age_min = max(0.0, (now - newest[0]).total_seconds() / 60.0)
    return Measurement(cond.observe(age_min), cond, "offline", "min", window,
                       details=((_detail("last_data"), newest[0].isoformat()),))


def _compressor(conn: sa.Connection, rule: CompressorRule, s: Subject, now: datetime) -> Measurement:
    assert s.meter_id is not None
    model = load_site_model(conn, s.site_id)
    meter = next((m for m in model.meters if m.id == s.meter_id), None)
    spec = meter.params.compressor if meter is not None else None
    limits = compressors.grade_limits(spec) if spec is not None else None
    m = _minutes(rule.window_s)
    window = _window("loaded_minutes", minutes=m)
    if limits is None:
        # No nameplate or no GB 19153 row: nothing to compare with, so never a breach.
        return Measurement(Observation(None, False, False), Condition(">", float("inf")),
                           "compressor_specific_power", "kW/(m³/min)", window,
                           details=((_detail("note"), _note("no_grade_limit")),))
    cond = Condition(">", limits[rule.grade - 1], rule.hysteresis)
    air = amounts.compressor_air(conn, [s.meter_id], now - timedelta(seconds=rule.window_s), now)
    _, kw, flow = air.get(s.meter_id, (None, None, None))
    sp = kw / flow if kw is not None and flow else None
    rows = queries.readings_series(conn, s.meter_id, "active_power", now - CHART_SPAN, now, "1m")
    return Measurement(cond.observe(sp), cond, "compressor_specific_power", "kW/(m³/min)", window,
                       [r[1] for r in rows], details=(
                           (_detail("loaded_power"), "—" if kw is None else f"{kw:.1f} kW"),
                           (_detail("loaded_flow"), "—" if flow is None else f"{flow:.2f} m³/min"),
                           (_detail("limit_source"), _note("grade", grade=rule.grade)),
                       ))


def budget_figure(k: kpi.WindowKpis, metric: str, basis: str = "location") -> float:
    """What a budget counts in a KPI window: site electricity consumption, or Scope 1 + Scope 2
    carbon of the basis — the dashboard's "today" tiles for the same window."""
    if metric == "energy_kwh":
        return k.electricity.consumption_kwh.value or 0.0
    c = k.carbon
    scope2 = c.scope2_market_t if basis == "market" else c.scope2_location_t
    return (c.scope1_t.value or 0.0) + (scope2.value or 0.0)


def _budget(conn: sa.Connection, rule: BudgetRule, s: Subject, now: datetime) -> Measurement:
    site = queries.get_site(conn, s.site_id)
    start, end = periods.calendar(rule.period, clock.site_today(site.timezone, now), site.timezone)
    so_far = budget_figure(kpi.window_kpis(conn, s.site_id, start, now, now), rule.metric, rule.basis)
    elapsed = (now - start).total_seconds()
    projected = so_far * (end - start).total_seconds() / elapsed if elapsed > 0 else so_far
    value = projected if rule.projection and elapsed >= rule.min_elapsed_s else so_far
    cond = Condition(">", rule.budget * rule.warn_at)
    unit = "kWh" if rule.metric == "energy_kwh" else "tCO2"
    window = _window(f"{rule.period}_{'projected' if value is projected else 'so_far'}")
    return Measurement(cond.observe(value), cond, rule.metric, unit, window, details=(
        (_detail("so_far"), f"{so_far:,.1f} {unit}"),
        (_detail("projected"), f"{projected:,.1f} {unit}"),
        (_detail("budget"), f"{rule.budget:,.1f} {unit}"),
    ))


def weeks_back(t: datetime, k: int, timezone: str) -> datetime:
    """The same local wall time k weeks earlier: the same weekday and time of day in the site's
    zone, also across a daylight-saving change (aware arithmetic in one zone is wall-clock)."""
    return (t.astimezone(ZoneInfo(timezone)) - timedelta(weeks=k)).astimezone(UTC)


def _deviation(conn: sa.Connection, rule: DeviationRule, s: Subject, now: datetime) -> Measurement:
    site = queries.get_site(conn, s.site_id)
    tz = site.timezone
    day = rule.window == "day_so_far"
    start = kpi.local_midnight(now, tz) if day else now - timedelta(seconds=rule.window_s)

    def kwh(a: datetime, b: datetime) -> tuple[float, float]:
        # Counter energy from the rollups (value + gap_value: a gap's energy is real, only its timing
        # is unknown), with the share of the window the counters cover.
        if s.meter_id is None:
            # the site's consumption as the KPI engine counts it for the window
            e = kpi.window_kpis(conn, s.site_id, a, b, now).electricity.consumption_kwh
            return e.value or 0.0, e.coverage
        c = counter_energy(conn, [s.meter_id], "active_energy_import", a, b)
        return c.value + c.gap_value, c.coverage

    def usable(coverage: float) -> bool:
        # No data at all is never a zero, whatever min_coverage says.
        return coverage > 0 and coverage >= rule.min_coverage

    value, coverage = kwh(start, now)
    current = value if usable(coverage) else None
    weeks: list[tuple[str, float | None]] = []  # oldest first
    for k in range(rule.weeks, 0, -1):
        a, b = weeks_back(start, k, tz), weeks_back(now, k, tz)
        v, c = kwh(a, b)
        weeks.append((a.astimezone(ZoneInfo(tz)).date().isoformat(), v if usable(c) else None))
    used = [v for _, v in weeks if v is not None]
    baseline = _mean(used)
    n = rule.weeks
    window = (_window("deviation_day", weeks=n) if day
              else _window("deviation_rolling", minutes=_minutes(rule.window_s), weeks=n))
    history = "; ".join(f"{d}: {'—' if v is None else f'{v:,.1f} kWh'}" for d, v in weeks)
    common: tuple[tuple[tuple[str, str], Text], ...] = (
        (_detail("margin"), f"{rule.margin * 100:g} %"),
        (_detail("earlier_weeks"), history),
        (_detail("coverage"), f"{coverage:.0%}"),
    )
    series = [*used, *([] if current is None else [current])]
    if baseline is None:
        # Nothing to compare with: neither a breach nor a recovery, so a firing alert holds too.
        note = _note("no_baseline", weeks=n)
        return Measurement(Observation(current, False, False), Condition(">", float("inf")), "deviation_kwh",
                           "kWh", window, series, details=((_detail("baseline"), note), *common))
    cond = Condition(">", baseline * (1 + rule.margin))
    return Measurement(cond.observe(current), cond, "deviation_kwh", "kWh", window, series, details=(
        (_detail("baseline"), f"{baseline:,.1f} kWh ({len(used)}/{n})"), *common))


def _heartbeat(conn: sa.Connection, s: Subject) -> gateways.Gateway | None:
    assert s.gateway_id is not None
    try:
        return gateways.get_gateway(conn, s.gateway_id)
    except queries.NotFound:
        return None


def _gateway_offline(conn: sa.Connection, rule: GatewayOfflineRule, s: Subject, now: datetime) -> Measurement:
    cond = Condition(">", rule.after_s / 60.0)
    m = _minutes(rule.after_s)
    window = _window("no_heartbeat", minutes=m)
    g = _heartbeat(conn, s)
    if g is None:
        # A gateway named on its own that never sent a heartbeat is offline; one only implied by a
        # meter's gateway_id may be a name from an older configuration, so it is left alone.
        never = rule.gateway_id is not None
        return Measurement(Observation(None, never, False), cond, "gateway_offline", "min", window,
                           details=((_detail("last_heartbeat"), "—"),))
    # A cleanly stopped gateway is judged the same way: a restart shorter than after_s pages nobody.
    running = bool(g.status.get("running", True))
    age_min = max(0.0, (now - g.last_heartbeat).total_seconds() / 60.0)
    return Measurement(cond.observe(age_min), cond, "gateway_offline", "min", window, details=(
        (_detail("last_heartbeat"), g.last_heartbeat.isoformat()),
        (_detail("gateway_state"), words("mail.state.running" if running else "mail.state.stopped")),
    ))


_ROLLUP_1M = RESOLUTIONS["1m"]


def _counter_reset(conn: sa.Connection, rule: CounterResetRule, s: Subject, now: datetime) -> Measurement:
    """Resets read from the 1-minute rollups' first and last values, by lingtan.core.energy's rule: the
    counter fell to half or less of the value before. It must still be low at the next minute
    with data, so a read error returning 0 for a sample or two (a dip) is not a reset."""
    assert s.meter_id is not None
    start = now - timedelta(seconds=rule.window_s)
    m = _minutes(rule.window_s)
    window = _window("last_minutes", minutes=m, quantity=rule.quantity)
    cond = Condition(">", 0.0)
    rows = conn.execute(sa.text(
        f"(SELECT bucket, first, last FROM {_ROLLUP_1M} WHERE meter_id = :m AND quantity = :q AND bucket < :a"
        " ORDER BY bucket DESC LIMIT 1) UNION ALL"
        f" (SELECT bucket, first, last FROM {_ROLLUP_1M} WHERE meter_id = :m AND quantity = :q"
        " AND bucket >= :a AND bucket < :b) ORDER BY bucket"
    ), {"m": s.meter_id, "q": rule.quantity, "a": start, "b": now}).all()
    if not any(r[0] >= start for r in rows):
        return Measurement(Observation(None, False, False), cond, "counter_reset", "", window,
                           details=((_detail("note"), _note("no_data_in_window")),))
    model = load_site_model(conn, s.site_id)
    meter = next((x for x in model.meters if x.id == s.meter_id), None)
    wrap = meter.params.counter_wrap if meter is not None else None
    # a replacement recorded on the meter is a planned swap whose energy is known, not a reset
    exchanges = meter.params.exchanges if meter is not None else []
    swaps = [x.time for x in exchanges if x.quantity == rule.quantity]
    tz = ZoneInfo(model.site.timezone)
    resets: list[str] = []
    for i, (bucket, first, last) in enumerate(rows):
        if bucket < start or i + 1 == len(rows):
            continue  # the newest minute waits for the next one to confirm
        since = rows[i - 1][0] if i > 0 else bucket
        if any(since <= t < bucket + timedelta(minutes=1) for t in swaps):
            continue
        ref = max(first, rows[i - 1][2]) if i > 0 else first
        # lingtan.core.energy's reading of the step, confirmed by the next minute with data
        confirmed = counter_step(ref, rows[i + 1][1], wrap)[0] == "reset"
        if ref > 0 and counter_step(ref, last, wrap)[0] == "reset" and confirmed:
            resets.append(f"{bucket.astimezone(tz):%Y-%m-%d %H:%M}: {ref:,.2f} → {last:,.2f}")
    return Measurement(cond.observe(float(len(resets))), cond, "counter_reset", "", window,
                       details=((_detail("resets"), "; ".join(resets) or "—"),))


def _frozen(conn: sa.Connection, rule: FrozenRule, s: Subject, now: datetime) -> Measurement:
    """How long the value has been exactly the same, from the 1-minute rollups' min and max: the
    newest minute that held any other value ends the frozen stretch."""
    assert s.meter_id is not None
    cond = Condition(">", rule.window_s / 60.0)
    m = _minutes(rule.window_s)
    window = _window("unchanged", quantity=rule.quantity, minutes=m)
    # One minute more than the window: a value unchanged since before it is then seen as such.
    # Looking further back would only refine a figure already past the limit.
    start = now - timedelta(seconds=rule.window_s) - MINUTE
    rows = conn.execute(sa.text(
        f"SELECT bucket, min, max, last FROM {_ROLLUP_1M} WHERE meter_id = :m AND quantity = :q"
        " AND bucket >= :a AND bucket < :b ORDER BY bucket DESC"
    ), {"m": s.meter_id, "q": rule.quantity, "a": start, "b": now}).all()

    def hold(note: str) -> Measurement:
        return Measurement(Observation(None, False, False), cond, "frozen", "min", window,
                           details=((_detail("note"), _note(note)),))

    if not rows:
        return hold("no_data_in_window")
    newest, _, _, value = rows[0]
    if newest + MINUTE < now - timedelta(seconds=rule.fresh_s):
        # A meter that stopped reporting is not frozen: that is the offline rule's alert.
        return hold("meter_stopped")
    since = rows[-1][0]  # unchanged as far back as the data in the window goes
    changed = False
    for bucket, lo, hi, _ in rows:
        if lo != value or hi != value:
            since, changed = bucket + MINUTE, True
            break
    unchanged_s = max(0.0, (now - since).total_seconds())
    # Unchanged back to the start of the look-back: it may have been frozen for longer.
    at_most = "" if changed or since >= start + MINUTE else "≤ "
    details: tuple[tuple[tuple[str, str], Text], ...] = (
        (_detail("frozen_value"), f"{value:g}"), (_detail("unchanged_since"), at_most + since.isoformat()))
    if frozen.idle(value):
        return Measurement(Observation(0.0, False, True), cond, "frozen", "min", window, details=(
            *details, (_detail("note"), _note("idle"))))
    # lingtan.core.frozen decides, with the gateway's STALE flag; the minutes are what the e-mail shows
    breached = frozen.live_frozen(rule.quantity, value, unchanged_s, rule.window_s)
    return Measurement(Observation(unchanged_s / 60.0, breached, not breached), cond, "frozen", "min",
                       window, details=details)


def _dead_letters(conn: sa.Connection, rule: DeadLetterRule, s: Subject, now: datetime,
                  last: tuple[float | None, datetime | None]) -> Measurement:
    """The gateway's dead-letter count against the count this rule saw at its previous evaluation
    (alert_states.last_value): the heartbeat row holds only the latest count, no history."""
    g = _heartbeat(conn, s)
    count = g.status.get("dead_letters") if g is not None else None
    prev, prev_at = last
    since = "—" if prev_at is None else prev_at.isoformat()
    window = _window("since_evaluation", since=since)
    if count is None:
        note = _note("no_heartbeat" if g is None else "no_dead_letter_count")
        return Measurement(Observation(None, False, False), Condition(">", prev if prev is not None else 0.0),
                           "dead_letters", "", window, details=((_detail("note"), note),))
    count = float(count)
    if prev is None:
        # The first look only records the count: letters dead before the rule existed are old news.
        return Measurement(Observation(count, False, False), Condition(">", count), "dead_letters", "",
                           window, details=((_detail("note"), _note("first_look")),))
    cond = Condition(">", prev)
    # A count below the last one (the gateway's store was cleared) is simply the new reference.
    return Measurement(cond.observe(count), cond, "dead_letters", "", window, details=(
        (_detail("new_dead_letters"), f"{max(0.0, count - prev):g}"),
        (_detail("gateway"), g.id if g is not None else "—"),
    ))


def _both(text: Callable[[Lang], str]) -> tuple[str, str]:
    """(zh, en) of a text built per language."""
    return text("zh"), text("en")


_LIST = {"zh": "、", "en": ", "}
_OR = {"zh": "或", "en": " or "}
_THEN = {"zh": "；", "en": "; "}


def _status(status: str, lang: Lang) -> str:
    return text_of(f"mail.status.{status}", lang)


def _target_figure(v: float | None, unit: str) -> str:
    # as the programme states it: a share in per cent, anything else with its unit
    if v is None:
        return "—"
    if unit == "ratio":
        return f"{v:.1%}"
    text = f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    return f"{text} {unit}"


def _target_line(ts: TargetStatus, lang: Lang) -> str:
    """Status, projection against the target value, and the engine's reason (in its own words)."""
    target = _target_figure(ts.target_value, ts.unit)
    if ts.projection is not None:
        figures = text_of("mail.note.target_projected", lang, year=ts.projection.year, target=target,
                          projection=_target_figure(ts.projection.value, ts.unit))
    else:
        figures = text_of("mail.note.target_unprojected", lang, year=ts.target_year, target=target)
    line = text_of("mail.note.target_line", lang, status=_status(ts.status, lang), figures=figures)
    return f"{line}{_THEN[lang]}{ts.reason}" if ts.reason else line


def _target_label(ts: TargetStatus) -> tuple[str, str]:
    label = ts.name if ts.name == ts.id else f"{ts.name} ({ts.id})"
    return label, label


def _targets(conn: sa.Connection, rule: TargetRule, s: Subject, now: datetime) -> Measurement:
    """The count of watched targets in a firing status, read from the programme's one engine
    (programme_service.targets: the statuses GET /sites/{id}/targets shows)."""
    site = queries.get_site(conn, s.site_id).name
    _, statuses = programme_service.targets(conn, s.site_id, now)
    by_id = {ts.id: ts for ts in statuses}
    ids = rule.targets if rule.targets is not None else list(by_id)
    watched = [by_id[i] for i in ids if i in by_id]
    # A target removed from the programme after the rule was written is reported, not guessed at.
    gone = [i for i in ids if i not in by_id]
    firing = [ts for ts in watched if ts.status in rule.statuses]

    def fires_on(lang: Lang) -> str:
        return _OR[lang].join(_status(x, lang) for x in rule.statuses)

    def headline(lang: Lang) -> str:
        if not firing:
            return text_of("mail.headline.targets_clear", lang, site=site, count=len(watched),
                           statuses=fires_on(lang))
        # a target's name is free text: one line in a mail header
        listed = _LIST[lang].join(text_of("mail.headline.target", lang, name=" ".join(ts.name.split()),
                                          status=_status(ts.status, lang)) for ts in firing)
        return text_of("mail.headline.targets", lang, site=site, targets=listed)

    def line(ts: TargetStatus) -> tuple[str, str]:
        return _both(lambda lang: _target_line(ts, lang))

    cond = Condition(">", 0.0)
    window = _window("programme")
    details: tuple[tuple[tuple[str, str], Text], ...] = (
        # the targets that fire; when none does (a resolution), where each watched one stands
        *((_target_label(ts), line(ts)) for ts in (firing or watched)),
        (_detail("fires_on"), _both(fires_on)),
        *(((_detail("not_in_programme"), ", ".join(gone)),) if gone else ()),
    )
    # No watched target with a status to judge by (none left, or all unknown while unknown does
    # not fire): neither a breach nor a recovery, so a firing alert holds, as with missing data.
    judged = [ts for ts in watched if ts.status != "unknown" or "unknown" in rule.statuses]
    if not judged:
        note = _note("no_targets" if not watched else "no_target_status")
        return Measurement(Observation(None, False, False), cond, "target_at_risk", "", window,
                           details=(*details, (_detail("note"), note)), headline=_both(headline))
    return Measurement(cond.observe(float(len(firing))), cond, "target_at_risk", "", window,
                       details=details, headline=_both(headline))


def _energy(v: float) -> str:
    return f"{v:,.1f}"


def _enpi_drift(conn: sa.Connection, rule: EnpiDriftRule, s: Subject, now: datetime) -> Measurement:
    """The smallest excess (%) of actual over expected energy among the baseline's last ``days``
    complete daily points, from the baseline service (savings_service.baseline: the points
    GET /sites/{id}/baselines/{id} shows); above ``excess_pct`` means every one of those days exceeds."""
    cond = Condition(">", rule.excess_pct)
    window = _window("enpi_days", days=rule.days)
    pct = f"{rule.excess_pct:g}"

    def held(details: tuple[tuple[tuple[str, str], Text], ...], note: tuple[str, str],
             name: str = rule.baseline) -> Measurement:
        # Nothing to judge by: neither a breach nor a recovery, so the alert holds its state.
        return Measurement(Observation(None, False, False), cond, "enpi_drift", "%", window,
                           details=(*details, (_detail("note"), note)),
                           headline=words("mail.headline.enpi_unjudged", baseline=name))

    try:
        b = savings_service.baseline(conn, s.site_id, rule.baseline, now)
    except queries.NotFound:
        # removed from the savings document after the rule was written: said, not guessed at
        return held((), _note("enpi_baseline_gone", baseline=rule.baseline))
    label = b.name if b.name == b.id else f"{b.name} ({b.id})"
    base: tuple[tuple[tuple[str, str], Text], ...] = (
        (_detail("energy_baseline"), label),
        (_detail("baseline_period"), " – ".join(b.baseline_period)),
    )
    if b.resolution != "day":
        return held(base, _note("enpi_not_daily", resolution=b.resolution), b.name)
    if b.fit is None:
        # the service says why no model could be fitted (too few points, a variable missing)
        return held((*base, *((_detail("service_note"), n) for n in b.notes)), _note("enpi_no_model"), b.name)
    if not b.fit.adequate:
        return held(base, _note("enpi_inadequate", failed=", ".join(b.fit.failed)), b.name)
    if len(b.since) < rule.days:
        return held(base, _note("enpi_too_few_days", have=len(b.since), days=rule.days), b.name)
    last = b.since[-rule.days:]
    if any(p.expected <= 0 for p in last):
        # an excess in per cent of nothing expected is no figure
        return held(base, _note("enpi_nothing_expected"), b.name)
    excess = [(p.actual / p.expected - 1.0) * 100.0 for p in last]
    low = min(excess)
    obs = cond.observe(low)
    lines = tuple(((p.label, p.label), _note("enpi_day", actual=_energy(p.actual),
                                             expected=_energy(p.expected), unit=b.unit, excess=f"{x:+.1f}"))
                  for p, x in zip(last, excess, strict=True))
    span = last[0].label if len(last) == 1 else f"{last[0].label} – {last[-1].label}"
    key = "enpi_drift" if obs.breached else "enpi_within"
    headline = words(f"mail.headline.{key}", baseline=b.name, days=rule.days, pct=pct, span=span)
    return Measurement(obs, cond, "enpi_drift", "%", window, series=excess,
                       details=(*base, *lines), headline=headline)


def measure(conn: sa.Connection, rule: AnyRule, s: Subject, now: datetime,
            last: tuple[float | None, datetime | None] = (None, None)) -> Measurement:
    """The subject's measurement at ``now``; ``last`` is the subject's stored (last_value,
    last_evaluated_at), which only the dead-letter check needs."""
    if isinstance(rule, ThresholdRule):
        return _power(conn, rule, s, now) if rule.metric == "power_kw" else _intensity(conn, rule, s, now)
    if isinstance(rule, OfflineRule):
        return _offline(conn, rule, s, now)
    if isinstance(rule, CompressorRule):
        return _compressor(conn, rule, s, now)
    if isinstance(rule, DeviationRule):
        return _deviation(conn, rule, s, now)
    if isinstance(rule, GatewayOfflineRule):
        return _gateway_offline(conn, rule, s, now)
    if isinstance(rule, CounterResetRule):
        return _counter_reset(conn, rule, s, now)
    if isinstance(rule, FrozenRule):
        return _frozen(conn, rule, s, now)
    if isinstance(rule, DeadLetterRule):
        return _dead_letters(conn, rule, s, now, last)
    if isinstance(rule, TargetRule):
        return _targets(conn, rule, s, now)
    if isinstance(rule, EnpiDriftRule):
        return _enpi_drift(conn, rule, s, now)
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


_STATE = ("SELECT state, since, last_value, notified, last_notified_at, acked_by, acked_at, last_evaluated_at"
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
    now = now or clock.now()
    timing = Timing(rule.for_s, rule.renotify_s)
    tz = queries.get_site(conn, rule.scope.site_id).timezone
    outcomes = []
    for s in subjects(conn, rule):
        # Lock the state before measuring: a measurement that compares with the previous one
        # (dead letters) must not race a second evaluator.
        conn.execute(sa.text("INSERT INTO alert_states (rule_id, subject, state, since)"
                             " VALUES (:r, :s, 'ok', :t) ON CONFLICT DO NOTHING"),
                     {"r": rule_id, "s": s.key, "t": now})
        row = conn.execute(sa.text(_STATE), {"r": rule_id, "s": s.key}).one()
        prev = AlertState(*row[:7])
        m = measure(conn, rule, s, now, (prev.last_value, row[7]))
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
                dashboard_url=settings.dashboard_url, details=m.details, series=m.series, headline=m.headline)
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
