"""Alert rules, their current states, event history, acknowledgements and silences.

Reads need a viewer key; creating, changing, deleting, testing rules, acknowledging and silencing
need engineer. Each write commits on success; a failed request keeps nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field, model_validator

from api.auth import Engineer
from api.deps import get_conn
from api.pagination import Page, Paging
from api.problems import Unprocessable, responses
from lingtan.core.alerts import store
from lingtan.core.alerts.evaluate import Outcome
from lingtan.core.alerts.rules import Rule, RuleError
from lingtan.core.alerts.state import NotFiring
from lingtan.kernel import clock
from lingtan.kernel.settings import get_settings

router = APIRouter(prefix="/alerts", tags=["alerts"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
RuleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the rule's id", examples=[1])]

_EXAMPLES = {
    "threshold": {"summary": "site load over 800 kW for 15 min", "value": {
        "kind": "threshold", "name": "Site load high", "scope": {"site_id": "demo-plant"},
        "metric": "power_kw", "window_s": 900, "op": ">", "threshold": 800, "hysteresis": 50,
        "for_s": 300, "severity": "warning",
        "recipients": [{"email": "energy@example.com", "language": "zh"}]}},
    "offline": {"summary": "any meter silent for 5 min", "value": {
        "kind": "offline", "name": "Meters online", "scope": {"site_id": "demo-plant"}, "after_s": 300,
        "severity": "critical", "recipients": [{"email": "field@example.com", "language": "en"}]}},
    "compressor": {"summary": "compressor worse than GB 19153 grade 3", "value": {
        "kind": "compressor_specific_power", "name": "Compressor efficiency",
        "scope": {"site_id": "demo-plant", "role": "compressor"}, "window_s": 900, "for_s": 600,
        "recipients": [{"email": "energy@example.com"}]}},
    "budget": {"summary": "daily electricity budget, projected", "value": {
        "kind": "budget", "name": "Daily kWh", "scope": {"site_id": "demo-plant"}, "metric": "energy_kwh",
        "period": "day", "budget": 12000, "warn_at": 0.9, "recipients": [{"email": "energy@example.com"}]}},
    "deviation": {"summary": "last hour 20 % over the same hour of the last 4 weeks", "value": {
        "kind": "deviation", "name": "Unusual consumption", "scope": {"site_id": "demo-plant"},
        "window": "rolling", "window_s": 3600, "margin": 0.2, "weeks": 4,
        "recipients": [{"email": "energy@example.com", "language": "zh"}]}},
    "gateway_offline": {"summary": "a gateway silent for 5 min", "value": {
        "kind": "gateway_offline", "name": "Gateway online", "scope": {"site_id": "demo-plant"},
        "after_s": 300, "severity": "critical", "recipients": [{"email": "field@example.com"}]}},
    "counter_reset": {"summary": "an energy counter reset", "value": {
        "kind": "data_quality", "check": "counter_reset", "name": "Counter reset",
        "scope": {"site_id": "demo-plant", "role": "grid_import"}, "quantity": "active_energy_import",
        "window_s": 3600, "recipients": [{"email": "field@example.com"}]}},
    "frozen": {"summary": "a power reading frozen for 30 min", "value": {
        "kind": "data_quality", "check": "frozen", "name": "Frozen value",
        "scope": {"site_id": "demo-plant", "role": "compressor"}, "quantity": "active_power",
        "window_s": 1800, "recipients": [{"email": "field@example.com"}]}},
    "dead_letters": {"summary": "payloads a gateway could not decode", "value": {
        "kind": "data_quality", "check": "dead_letters", "name": "Dead letters",
        "scope": {"site_id": "demo-plant"}, "recipients": [{"email": "field@example.com"}]}},
    "target_at_risk": {"summary": "a zero-carbon target at risk or off track", "value": {
        "kind": "target_at_risk", "name": "Zero-carbon targets", "scope": {"site_id": "demo-plant"},
        "targets": ["emissions-2030"], "statuses": ["at_risk", "off_track"], "interval_s": 3600,
        "recipients": [{"email": "energy@example.com", "language": "zh"}]}},
    "enpi_drift": {"summary": "energy above an energy baseline's expectation for days on end", "value": {
        "kind": "enpi_drift", "name": "Compressed air over baseline", "scope": {"site_id": "demo-plant"},
        "baseline": "air", "excess_pct": 10, "days": 3, "interval_s": 3600,
        "recipients": [{"email": "energy@example.com", "language": "zh"}]}},
}
RuleBody = Annotated[Rule, Body(openapi_examples=_EXAMPLES)]  # type: ignore[valid-type]


class RuleOut(BaseModel):
    id: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _out(r: store.StoredRule) -> RuleOut:
    return RuleOut(**asdict(r))


def _rejected(exc: RuleError) -> Unprocessable:
    return Unprocessable(f"body.{exc.field}", f"body.{exc.field}: {exc.message}")


@router.get("/rules")
def list_rules(conn: Conn, page: Paging) -> Page[RuleOut]:
    """Every rule, oldest first."""
    items, total = store.list_rules(conn, page.limit, page.offset)
    return Page(items=[_out(r) for r in items], total=total, limit=page.limit, offset=page.offset)


@router.post("/rules", status_code=201)
def create_rule(body: RuleBody, conn: Conn, _: Engineer) -> RuleOut:
    """A new rule. The site (and meter, gateway, programme target or energy baseline) it names must exist."""
    try:
        rule_id = store.create_rule(conn, body)
    except RuleError as exc:
        raise _rejected(exc) from None
    conn.commit()
    return _out(store.get_rule(conn, rule_id))


@router.get("/rules/{rule_id}")
def get_rule(rule_id: RuleId, conn: Conn) -> RuleOut:
    return _out(store.get_rule(conn, rule_id))


@router.put("/rules/{rule_id}")
def replace_rule(rule_id: RuleId, body: RuleBody, conn: Conn, _: Engineer) -> RuleOut:
    """Replace the definition. Current alert states are kept unless the scope changed."""
    try:
        store.replace_rule(conn, rule_id, body)
    except RuleError as exc:
        raise _rejected(exc) from None
    conn.commit()
    return _out(store.get_rule(conn, rule_id))


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(rule_id: RuleId, conn: Conn, _: Engineer) -> Response:
    """Delete the rule with its states and silences; its events stay in the history."""
    store.delete_rule(conn, rule_id)
    conn.commit()
    return Response(status_code=204)


class WouldSend(BaseModel):
    recipient: str
    language: str
    subject: str
    text: str


class TestResult(BaseModel):
    subject: str
    value: float | None
    threshold: float
    state_before: str
    state_after: str
    notice: str | None
    muted: bool
    would_send: list[WouldSend]


def _result(o: Outcome) -> TestResult:
    return TestResult(
        subject=o.subject.key, value=o.measurement.observation.value,
        threshold=o.measurement.condition.threshold, state_before=o.previous.state,
        state_after=o.step.state.state, notice=o.step.notice, muted=o.muted,
        would_send=[WouldSend(recipient=m.recipient, language=m.language, subject=m.mail.subject,
                              text=m.mail.text) for m in o.messages])


@router.post("/rules/{rule_id}/test")
def test_rule(rule_id: RuleId, conn: Conn, _: Engineer) -> list[TestResult]:
    """Evaluate the rule now and show, per subject, the value, the state change and the e-mails it
    would send. Nothing is stored and nothing is sent."""
    return [_result(o) for o in store.dry_run(conn, rule_id, get_settings(), clock.now())]


@router.get("/states")
def list_states(conn: Conn, rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None
                ) -> list[store.StateRow]:
    """Each rule's state per subject (site or meter)."""
    return store.list_states(conn, rule_id)


class AckBody(BaseModel):
    subject: Annotated[str, Field(min_length=1, max_length=200, examples=["meter:compressor-1"])]


@router.post("/rules/{rule_id}/ack", responses=responses(409))
def acknowledge(rule_id: RuleId, body: AckBody, conn: Conn, key: Engineer) -> store.StateRow:
    """Acknowledge a firing alert: no re-notifications until it resolves."""
    try:
        by = f"key:{key.prefix} {key.name}".strip()
        row = store.ack(conn, rule_id, body.subject, by, clock.now())
    except NotFiring as exc:
        raise HTTPException(409, str(exc)) from None
    conn.commit()
    return row


@router.get("/events")
def list_events(
    conn: Conn, page: Paging,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    kind: Literal["pending", "firing", "resolved", "renotify", "cancelled", "acknowledged"] | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="events at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="events before this time")] = None,
) -> Page[store.Event]:
    """Alert history, newest first."""
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.tzinfo is None:
            raise Unprocessable(f"query.{name}", f"query.{name}: give a time zone, e.g. 2026-05-01T00:00:00Z")
    items, total = store.list_events(conn, page.limit, page.offset, rule_id=rule_id, kind=kind,
                                     severity=severity, subject=subject, since=since, until=until)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


class SilenceBody(BaseModel):
    """Mute notifications (states still change) matching every field given; at least one of
    rule_id, site_id, meter_id. A silence on a site or meter alone is a maintenance window."""

    rule_id: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None
    site_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    meter_id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    starts_at: datetime
    ends_at: datetime
    comment: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] = ""

    @model_validator(mode="after")
    def _check(self) -> SilenceBody:
        if self.rule_id is None and self.site_id is None and self.meter_id is None:
            raise ValueError("name at least one of rule_id, site_id, meter_id")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a time zone")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


@router.get("/silences")
def list_silences(conn: Conn, active: Annotated[bool, Query(description="only those in force now")] = False
                  ) -> list[store.Silence]:
    return store.list_silences(conn, clock.now() if active else None)


@router.post("/silences", status_code=201)
def add_silence(body: SilenceBody, conn: Conn, key: Engineer) -> store.Silence:
    s = store.add_silence(conn, rule_id=body.rule_id, site_id=body.site_id, meter_id=body.meter_id,
                          starts_at=body.starts_at, ends_at=body.ends_at, comment=body.comment,
                          created_by=f"key:{key.prefix} {key.name}".strip())
    conn.commit()
    return s


@router.delete("/silences/{silence_id}", status_code=204)
def delete_silence(silence_id: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: Conn, _: Engineer) -> Response:
    store.delete_silence(conn, silence_id)
    conn.commit()
    return Response(status_code=204)
