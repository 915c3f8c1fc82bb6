"""Alert rule definitions: one pydantic model per kind, a discriminated union on ``kind``.

A definition is validated here before it is stored (``alert_rules.definition``), so the evaluator
never meets a rule it cannot run. Every error names the field it is about; checks that need the
database (does the site or meter exist) are in ``check_rule``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from lingtan.core import frozen, programme_service, savings_service
from lingtan.core.site_schema import Role
from lingtan.kernel.quantities import QUANTITIES

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


Basis = Literal["location", "market"]
_BASIS = ("Scope 2 basis of a carbon figure: location (grid average factor) or market (residual mix "
          "after green certificates and trades)")


class ThresholdRule(_Rule):
    """A rolling average against a threshold: site or meter power (kW), or site carbon intensity."""

    kind: Literal["threshold"]
    metric: Annotated[Literal["power_kw", "carbon_intensity"], Field(description=(
        "power_kw: active power averaged over the window (site: grid import + PV, i.e. the load); "
        "carbon_intensity: site Scope 2 electricity kgCO2e per kWh consumed over the window, as "
        "GET /sites/{id}/kpis gives it for that window"))]
    window_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    op: Literal[">", "<"] = ">"
    threshold: float
    hysteresis: Annotated[float, Field(ge=0, description=(
        "resolve only once the value is this far back on the good side of the threshold"))] = 0.0
    basis: Annotated[Basis, Field(description=_BASIS + "; carbon_intensity only")] = "location"

    @field_validator("basis")
    @classmethod
    def _carbon_only(cls, basis: str, info: Any) -> str:
        # A stored definition carries the default too: only a market basis on power is a mistake.
        if basis != "location" and info.data.get("metric") == "power_kw":
            raise ValueError("basis applies to metric carbon_intensity only")
        return basis

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
    """Site electricity (kWh) or carbon (tCO2) per day or month, with a projected overrun."""

    kind: Literal["budget"]
    metric: Annotated[Literal["energy_kwh", "co2_t"], Field(description=(
        "energy_kwh: site electricity consumption (grid import − export + PV); co2_t: Scope 1 + "
        "Scope 2 of the basis — both as GET /sites/{id}/kpis and the dashboard's today tiles give them"))]
    period: Literal["day", "month"]
    budget: Annotated[float, Field(gt=0)]
    warn_at: Annotated[float, Field(gt=0, le=2, description=(
        "fire when the figure reaches this share of the budget, e.g. 0.9"))] = 1.0
    projection: Annotated[bool, Field(description=(
        "compare the period's projected total (so far × period length ÷ time elapsed) rather than the "
        "total so far"))] = True
    min_elapsed_s: Annotated[int, Field(ge=0, description=(
        "project only after this much of the period has passed; before, the total so far is used"))] = 3600
    basis: Annotated[Basis, Field(description=_BASIS + "; co2_t only")] = "location"

    @field_validator("basis")
    @classmethod
    def _carbon_only(cls, basis: str, info: Any) -> str:
        if basis != "location" and info.data.get("metric") == "energy_kwh":
            raise ValueError("basis applies to metric co2_t only")
        return basis

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        if scope.level != "site":
            raise ValueError("a budget is per site: give only site_id")
        return scope


TargetStatusName = Literal["at_risk", "off_track", "unknown"]


class TargetRule(_Rule):
    """Targets of the site's zero-carbon programme whose status (as GET /sites/{id}/targets gives it)
    is one of ``statuses``. One alert per rule: it fires while any watched target is in such a
    status and resolves when none is."""

    kind: Literal["target_at_risk"]
    # The status reads annual windows: hourly is often enough for a figure that moves by the month.
    interval_s: Annotated[int, Field(ge=3600, le=86_400, description=(
        "evaluate every this many seconds; no more often than hourly"))] = 3600
    targets: Annotated[list[Annotated[str, Field(min_length=1, max_length=100, pattern=_ID)]] | None,
                       Field(min_length=1, max_length=100, description=(
                           "ids of the programme's targets to watch; none: every target of the site"))] = None
    statuses: Annotated[list[TargetStatusName], Field(min_length=1, description=(
        "the statuses that fire: at_risk, off_track, unknown (no figure to judge by)"))] = [
        "at_risk", "off_track"]

    @field_validator("targets")
    @classmethod
    def _once(cls, ids: list[str] | None) -> list[str] | None:
        if ids is not None:
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"named more than once: {', '.join(twice)}")
        return ids

    @field_validator("statuses")
    @classmethod
    def _distinct(cls, statuses: list[str]) -> list[str]:
        if len(set(statuses)) != len(statuses):
            raise ValueError("give each status once")
        return statuses

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        if scope.level != "site":
            raise ValueError("a programme is per site: give only site_id")
        return scope


class EnpiDriftRule(_Rule):
    """Energy above what one of the site's energy baselines expects (docs/domain.md, "Baselines and
    savings"): it fires while each of the last ``days`` complete daily points after the baseline
    period has actual > expected × (1 + excess_pct/100), and resolves when one of them does not.
    One alert per rule; the points come from the baseline service (GET /sites/{id}/baselines/{id})."""

    kind: Literal["enpi_drift"]
    # The points are whole days: hourly is often enough to see a day's point once it has ended.
    interval_s: Annotated[int, Field(ge=3600, le=86_400, description=(
        "evaluate every this many seconds; no more often than hourly"))] = 3600
    baseline: Annotated[str, Field(min_length=1, max_length=100, pattern=_ID, description=(
        "id of a daily energy baseline of the site (its savings document's energy_baselines)"))]
    excess_pct: Annotated[float, Field(gt=0, le=1000, description=(
        "fire when actual energy exceeds the model's expected energy by more than this many per cent"
    ))] = 10.0
    days: Annotated[int, Field(ge=1, le=366, description=(
        "on each of this many most recent complete days"))] = 3

    @field_validator("scope")
    @classmethod
    def _scope(cls, scope: Scope) -> Scope:
        if scope.level != "site":
            raise ValueError("an energy baseline is per site: give only site_id")
        return scope


def _quantity(q: str, *, counter: bool) -> str:
    known = sorted(n for n, x in QUANTITIES.items() if x.counter == counter)
    if q not in known:
        what = "counter" if counter else "live (non-counter)"
        raise ValueError(f"{q!r} is not a {what} quantity (known: {', '.join(known)})")
    return q


class DeviationRule(_Rule):
    """Electricity (kWh) over a window against its baseline: the mean of the same window, same
    local weekday and time of day, over the last ``weeks`` weeks; fires above baseline × (1 + margin).

    Site scope: site consumption (grid import − export + PV); meter or role scope: each meter's
    active_energy_import. A week whose window has too little counter data is left out of the mean;
    with no week left there is no baseline and the rule does not fire.
    """

    kind: Literal["deviation"]
    metric: Literal["energy_kwh"] = "energy_kwh"
    window: Annotated[Literal["rolling", "day_so_far"], Field(description=(
        "rolling: the last window_s seconds; day_so_far: local midnight until now"))] = "rolling"
    window_s: Annotated[int, Field(ge=300, le=86_400, description="the rolling window's length")] = 3600
    margin: Annotated[float, Field(gt=0, le=10, description=(
        "p: fire when the value is above baseline × (1 + p), e.g. 0.2 for 20 % over"))]
    weeks: Annotated[int, Field(ge=1, le=8, description="how many earlier weeks the baseline averages")] = 4
    min_coverage: Annotated[float, Field(ge=0, le=1, description=(
        "a window (now or a baseline week) counts only if counter data covers this share of it"))] = 0.5

    @field_validator("window_s")
    @classmethod
    def _rolling_only(cls, window_s: int, info: Any) -> int:
        # Only checked when window_s is given: a day-so-far rule that names a length is a mistake.
        if info.data.get("window") == "day_so_far":
            raise ValueError("window_s applies to window 'rolling' only; day_so_far runs from local midnight")
        return window_s


class _GatewayScoped(_Rule):
    gateway_id: Annotated[str | None, Field(min_length=1, max_length=100, pattern=_ID, description=(
        "one gateway of the site; none: every gateway of the scope (the site's, or the meters')"))] = None

    @field_validator("gateway_id")
    @classmethod
    def _site_level(cls, gateway_id: str | None, info: Any) -> str | None:
        scope = info.data.get("scope")
        if gateway_id is not None and scope is not None and scope.level != "site":
            raise ValueError("gateway_id goes with a site scope: give only site_id in the scope")
        return gateway_id


class GatewayOfflineRule(_GatewayScoped):
    """A gateway with no heartbeat for ``after_s``. A site scope watches the gateways that report
    for the site or carry its meters; a meter or role scope watches the gateways of those meters."""

    kind: Literal["gateway_offline"]
    after_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 300


class _DataQuality(_Rule):
    kind: Literal["data_quality"]


class CounterResetRule(_DataQuality):
    """A counter that fell to half or less of its previous value and stayed there (cleared or
    replaced meter) within the last ``window_s``; counted per meter from the 1-minute rollups."""

    check: Literal["counter_reset"]
    quantity: str = "active_energy_import"
    window_s: Annotated[int, Field(ge=300, le=86_400)] = 3600

    @field_validator("quantity")
    @classmethod
    def _counter(cls, q: str) -> str:
        return _quantity(q, counter=True)


class FrozenRule(_DataQuality):
    """A live quantity that has not changed for more than ``window_s`` while the meter keeps
    reporting it (a stale meter republishing its last value with fresh timestamps)."""

    check: Literal["frozen"]
    quantity: str = "active_power"
    window_s: Annotated[int, Field(ge=300, le=86_400)] = 1800
    fresh_s: Annotated[int, Field(ge=60, le=86_400, description=(
        "the meter counts as still reporting while its newest reading is younger than this; "
        "a meter that stopped is the offline rule's business"))] = 300

    @field_validator("quantity")
    @classmethod
    def _live(cls, q: str) -> str:
        if not frozen.can_freeze(q):
            raise ValueError(f"{q!r} legitimately stays unchanged for hours; pick a measured quantity")
        return _quantity(q, counter=False)


class DeadLetterRule(_DataQuality, _GatewayScoped):
    """A gateway whose dead-letter count (undecodable payloads, from its heartbeat) rose since the
    rule's previous evaluation. The heartbeat keeps only the latest count, so T — how far back
    "new" reaches — is the rule's ``interval_s``; it resolves at the first evaluation with none new."""

    check: Literal["dead_letters"]


AnyRule = (ThresholdRule | OfflineRule | CompressorRule | BudgetRule | DeviationRule | GatewayOfflineRule
           | CounterResetRule | FrozenRule | DeadLetterRule | TargetRule | EnpiDriftRule)
KINDS = ("threshold", "offline", "compressor_specific_power", "budget", "deviation", "gateway_offline",
         "data_quality", "target_at_risk", "enpi_drift")
CHECKS = ("counter_reset", "frozen", "dead_letters")


def _tag(value: Any) -> str | None:
    """The member of the union a definition is: its kind, and for data quality also its check.

    One flat, tagged union rather than a union nested in another: nested discriminators put an
    inline schema into the OpenAPI discriminator mapping, which must hold references only."""
    get = value.get if isinstance(value, dict) else lambda k: getattr(value, k, None)
    kind = get("kind")
    if not isinstance(kind, str):
        return None
    return f"data_quality:{get('check')}" if kind == "data_quality" else kind


Rule = Annotated[
    Annotated[ThresholdRule, Tag("threshold")] | Annotated[OfflineRule, Tag("offline")]
    | Annotated[CompressorRule, Tag("compressor_specific_power")] | Annotated[BudgetRule, Tag("budget")]
    | Annotated[DeviationRule, Tag("deviation")] | Annotated[GatewayOfflineRule, Tag("gateway_offline")]
    | Annotated[CounterResetRule, Tag("data_quality:counter_reset")]
    | Annotated[FrozenRule, Tag("data_quality:frozen")]
    | Annotated[DeadLetterRule, Tag("data_quality:dead_letters")]
    | Annotated[TargetRule, Tag("target_at_risk")] | Annotated[EnpiDriftRule, Tag("enpi_drift")],
    Discriminator(_tag, custom_error_type="rule_kind",
                  custom_error_message=f"'kind' must be one of {', '.join(KINDS)}, and a data_quality"
                                       f" rule's 'check' one of {', '.join(CHECKS)}"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)


class RuleError(ValueError):
    """A rule that cannot be used; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _path(loc: tuple[Any, ...], data: Any = None) -> str:
    # The union's tag (the kind, or "data_quality:<check>") leads the location; it is not a field.
    # An unknown tag is reported at no location: name the field that made it unknown.
    parts = list(loc)
    if parts and isinstance(parts[0], str) and (parts[0] in KINDS or parts[0].startswith("data_quality:")):
        parts = parts[1:]
    if not parts and isinstance(data, dict) and data.get("kind") == "data_quality":
        return "check"
    return ".".join(str(p) for p in parts) or "kind"


def parse_rule(data: Any) -> AnyRule:
    """A stored or submitted definition as its model; RuleError names the first bad field."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RuleError(_path(tuple(first.get("loc", ())), data), str(first.get("msg", ""))) from None


def check_rule(conn: sa.Connection, rule: AnyRule) -> None:
    """What the schema cannot know: the site and meter exist and the meter belongs to the site;
    a gateway named or implied belongs to the site; a target named is in the site's programme; a
    baseline named is a daily energy baseline of the site's savings document."""
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
    if isinstance(rule, GatewayOfflineRule | DeadLetterRule):
        _check_gateways(conn, rule)
    if isinstance(rule, TargetRule) and rule.targets is not None:
        known = programme_service.target_ids(conn, scope.site_id)
        for i, target in enumerate(rule.targets):
            if target not in known:
                have = f"its targets: {', '.join(known)}" if known else "it has no targets"
                raise RuleError(f"targets.{i}", f"target {target!r} is not in the programme of site "
                                                f"{scope.site_id!r} ({have})")
    if isinstance(rule, EnpiDriftRule):
        _check_baseline(conn, rule)


def _check_baseline(conn: sa.Connection, rule: EnpiDriftRule) -> None:
    site = rule.scope.site_id
    baselines = savings_service.load_savings(conn, site).energy_baselines
    found = next((b for b in baselines if b.id == rule.baseline), None)
    if found is None:
        have = (f"its energy baselines: {', '.join(b.id for b in baselines)}" if baselines
                else "it has no energy baselines")
        raise RuleError("baseline", f"energy baseline {rule.baseline!r} is not defined for site {site!r} "
                                    f"({have})")
    if found.resolution != "day":
        # the rule counts days; a weekly or monthly point would make "days" mean something else
        raise RuleError("baseline", f"energy baseline {rule.baseline!r} has {found.resolution}ly points; "
                                    "the rule counts days: name a baseline with resolution day")


def _check_gateways(conn: sa.Connection, rule: GatewayOfflineRule | DeadLetterRule) -> None:
    scope = rule.scope
    if rule.gateway_id is not None:
        # Known to the site: it has sent a heartbeat for the site, or one of its meters names it.
        known = conn.execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM gateway_heartbeats WHERE gateway_id = :g AND site_id = :s)"
            " OR EXISTS (SELECT 1 FROM meters WHERE gateway_id = :g AND site_id = :s)"),
            {"g": rule.gateway_id, "s": scope.site_id}).scalar_one()
        if not known:
            raise RuleError("gateway_id", f"gateway {rule.gateway_id!r} is unknown at site {scope.site_id!r}:"
                                          " no heartbeat for it and no meter of the site names it")
    elif scope.meter_id is not None:
        gateway = conn.execute(sa.text("SELECT gateway_id FROM meters WHERE id = :m"),
                               {"m": scope.meter_id}).scalar_one()
        if gateway is None:
            raise RuleError("scope.meter_id", f"meter {scope.meter_id!r} names no gateway to watch")
