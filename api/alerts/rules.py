"""Alert rule definitions: one pydantic model per kind, a discriminated union on ``kind``.

A definition is validated here before it is stored (``alert_rules.definition``), so the evaluator
never meets a rule it cannot run. Every error names the field it is about; checks that need the
database (does the site or meter exist) are in ``check_rule``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from api.site_model import Role
from lingtan.quantities import QUANTITIES

Severity = Literal["info", "warning", "critical"]
Language = Literal["zh", "en"]
_ID = r"^[A-Za-z0-9_.:-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Strict):
    # A deliberately loose address check: the SMTP server is the authority on deliverability.
    email: Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254,
                                examples=["energy@example.com"])]
    language: Annotated[Language, Field(description="language of the e-mail body: zh or en")] = "zh"


class Scope(_Strict):
    """What the rule watches: a site, one meter of it, or every meter of a role at it."""

    site_id: Annotated[str, Field(min_length=1, max_length=100, pattern=_ID)]
    meter_id: Annotated[str | None, Field(min_length=1, max_length=100, pattern=_ID)] = None
    role: Role | None = None

    @field_validator("role")
    @classmethod
    def _one_of(cls, role: str | None, info: Any) -> str | None:
        if role is not None and info.data.get("meter_id") is not None:
            raise ValueError("give meter_id or role, not both")
        return role

    @property
    def level(self) -> Literal["site", "meter", "role"]:
        return "meter" if self.meter_id else "role" if self.role else "site"


class _Rule(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
    scope: Scope
    severity: Severity = "warning"
    recipients: Annotated[list[Recipient], Field(max_length=50)] = []
    enabled: bool = True
    interval_s: Annotated[int, Field(ge=10, le=86_400, description="evaluate every this many seconds")] = 60
    for_s: Annotated[int, Field(ge=0, le=7 * 86_400, description=(
        "the condition must hold this long (pending) before the rule fires"))] = 0
    renotify_s: Annotated[int | None, Field(ge=300, le=30 * 86_400, description=(
        "while firing and not acknowledged, notify again after this long; none: never"))] = None


class ThresholdRule(_Rule):
    """A rolling average against a threshold: site or meter power (kW), or site carbon intensity."""

    kind: Literal["threshold"]
    metric: Annotated[Literal["power_kw", "carbon_intensity"], Field(description=(
        "power_kw: active power averaged over the window (site: grid import + PV, i.e. the load); "
        "carbon_intensity: site kgCO2e per kWh consumed over the window (location-based)"))]
    window_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    op: Literal[">", "<"] = ">"
    threshold: float
    hysteresis: Annotated[float, Field(ge=0, description=(
        "resolve only once the value is this far back on the good side of the threshold"))] = 0.0

    @field_validator("metric")
    @classmethod
    def _site_metric(cls, metric: str, info: Any) -> str:
        # scope is declared (so validated) before metric: the error lands on the metric.
        scope = info.data.get("scope")
        if metric == "carbon_intensity" and scope is not None and scope.level != "site":
            raise ValueError("carbon_intensity is a site figure: the scope must name only site_id")
        return metric


class OfflineRule(_Rule):
    """A meter with no reading of ``quantity`` for ``after_s``; a site scope watches all its meters."""

    kind: Literal["offline"]
    quantity: str = "active_power"
    after_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 300

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, q: str) -> str:
        if q not in QUANTITIES:
            raise ValueError(f"unknown quantity {q!r} (known: {', '.join(sorted(QUANTITIES))})")
        return q


class CompressorRule(_Rule):
    """Loaded specific power (kW per m³/min) over the window worse than a GB 19153-2019 grade limit."""

    kind: Literal["compressor_specific_power"]
    window_s: Annotated[int, Field(ge=300, le=86_400)] = 900
    grade: Literal[1, 2, 3] = 3
    hysteresis: Annotated[float, Field(ge=0)] = 0.0

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        if scope.role is not None and scope.role != "compressor":
            raise ValueError("the role must be compressor (or give a meter_id, or the site alone)")
        return scope


class BudgetRule(_Rule):
    """Site electricity (kWh) or Scope 2 carbon (tCO2) per day or month, with a projected overrun."""

    kind: Literal["budget"]
    metric: Literal["energy_kwh", "co2_t"]
    period: Literal["day", "month"]
    budget: Annotated[float, Field(gt=0)]
    warn_at: Annotated[float, Field(gt=0, le=2, description=(
        "fire when the figure reaches this share of the budget, e.g. 0.9"))] = 1.0
    projection: Annotated[bool, Field(description=(
        "compare the period's projected total (so far × period length ÷ time elapsed) rather than the "
        "total so far"))] = True
    min_elapsed_s: Annotated[int, Field(ge=0, description=(
        "project only after this much of the period has passed; before, the total so far is used"))] = 3600

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        if scope.level != "site":
            raise ValueError("a budget is per site: give only site_id")
        return scope


Rule = Annotated[ThresholdRule | OfflineRule | CompressorRule | BudgetRule, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)
KINDS = ("threshold", "offline", "compressor_specific_power", "budget")


class RuleError(ValueError):
    """A rule that cannot be used; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _path(loc: tuple[Any, ...]) -> str:
    # The union's tag (the kind) is the first element of the location; it is not a field.
    parts = list(loc)
    if parts and parts[0] in KINDS:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "kind"


def parse_rule(data: Any) -> ThresholdRule | OfflineRule | CompressorRule | BudgetRule:
    """A stored or submitted definition as its model; RuleError names the first bad field."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RuleError(_path(tuple(first.get("loc", ()))), str(first.get("msg", ""))) from None


def field_path(loc: tuple[Any, ...]) -> str:
    return _path(loc)


def check_rule(conn: sa.Connection, rule: ThresholdRule | OfflineRule | CompressorRule | BudgetRule) -> None:
    """What the schema cannot know: the site and meter exist and the meter belongs to the site."""
    scope = rule.scope
    if conn.execute(sa.text("SELECT 1 FROM sites WHERE id = :s"), {"s": scope.site_id}).first() is None:
        raise RuleError("scope.site_id", f"site {scope.site_id!r} not found")
    if scope.meter_id is not None:
        row = conn.execute(sa.text("SELECT site_id, role FROM meters WHERE id = :m"),
                           {"m": scope.meter_id}).first()
        if row is None or row[0] != scope.site_id:
            raise RuleError("scope.meter_id", f"meter {scope.meter_id!r} not found at site {scope.site_id!r}")
        if isinstance(rule, CompressorRule) and row[1] != "compressor":
            raise RuleError("scope.meter_id", f"meter {scope.meter_id!r} has role {row[1]!r}, not compressor")
