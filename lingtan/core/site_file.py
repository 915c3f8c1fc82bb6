"""The site file: a whole site energy model in one YAML (or JSON) document, and its parts.

The same models are the request bodies of the site-model API, so a site set up by file and one
set up through the API are validated by the same rules. Errors in a YAML file name the line.

    site: {id: demo-plant, name: ..., timezone: Asia/Shanghai, grid_region: north_east, factor_set: mee-2023}
    energy: {...}              # SiteParams
    meters: [{id, role, name?, params?}]
    green_power: [...]         # GreenPurchase
    factor_overrides: [...]    # FactorOverride
    activity_data: [...]       # ActivityEntry: unmetered fuel and refrigerant, with evidence
    structure: {...}           # Structure: the metering tree, virtual meters, carbon price
    programme: {...}           # Programme: base year, entered history, output value (zero-carbon programme)
    targets: [...]             # Target
    offsets: [...]             # Offset: retired credits and removals, one period each
    evaluations: {...}         # Evaluations: zero-carbon factory, green factory, cloud model
    energy_baselines: [...]    # EnergyBaseline: EnB and EnPI of the site, a node or meters
    projects: [...]            # Project: a retrofit's measured savings (IPMVP option B or C)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lingtan.core.factors import DEFAULT_SET, FACTOR_SETS, KINDS
from lingtan.core.programme_schema import (
    Evaluations,
    Offset,
    Programme,
    ProgrammeError,
    Target,
    ZeroCarbonProgramme,
    check_programme,
)
from lingtan.core.savings_schema import EnergyBaseline, Project, Savings
from lingtan.core.site_schema import ActivityEntry, GreenPurchase, MeterParams, Region, Role, SiteParams
from lingtan.core.structure_schema import Structure, StructureError, check_structure
from lingtan.kernel.yamlmarks import Loc, dotted, line_for, load_with_lines

# Same alphabet as gateway and device ids, so an id is safe in URLs, topics and file names.
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteFields(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Demo plant, Shenyang"])]
    timezone: Annotated[str, Field(examples=["Asia/Shanghai"], description="IANA time zone")] = (
        "Asia/Shanghai")
    grid_region: Annotated[Region, Field(description="regional grid whose factor applies")] = "national"
    factor_set: Annotated[str, Field(description=f"one of {', '.join(FACTOR_SETS)}")] = DEFAULT_SET

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)") from None
        return value

    @field_validator("factor_set")
    @classmethod
    def _known_set(cls, value: str) -> str:
        if value not in FACTOR_SETS:
            raise ValueError(f"unknown factor set {value!r} (known: {', '.join(FACTOR_SETS)})")
        return value


class SiteHeader(SiteFields):
    id: Id


class SiteWrite(SiteFields):
    """PUT /sites/{id}: the whole site; omitted parameters take their documented defaults."""

    params: SiteParams = SiteParams()


class MeterEntry(_Strict):
    """A meter in a site file; one not known yet is created (named after its id unless named).
    A sub-meter that only the structure counts has no role."""

    id: Id
    role: Role | None = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    params: MeterParams = MeterParams()


class MeterPatch(_Strict):
    """PATCH /meters/{id}: only the fields given change; ``params`` is replaced as a whole."""

    role: Role | None = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    params: MeterParams | None = None


class FactorOverride(_Strict):
    """A site's own value for one library factor (kind + subject), with its source.

    The unit must be the library factor's unit, so every calculation stays in one unit system.
    Validity dates are inclusive; without them the override applies to every period.
    """

    kind: Annotated[str, Field(description=", ".join(KINDS), examples=["grid"])]
    subject: Annotated[str, Field(min_length=1, description="grid region or carrier",
                                  examples=["north_east"])]
    value: Annotated[float, Field(ge=0, examples=[0.5122])]
    unit: Annotated[str, Field(min_length=1, examples=["kgCO2/kWh"])]
    source: Annotated[str, Field(min_length=1, max_length=500,
                                 examples=["Liaoning provincial grid factor, 2024 notice"])]
    valid_from: date | None = None
    valid_to: date | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown factor kind {value!r} (known: {', '.join(KINDS)})")
        return value

    @field_validator("source")
    @classmethod
    def _real_source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a factor override must name its source")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> FactorOverride:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from (both inclusive)")
        return self


class SiteFile(_Strict):
    site: SiteHeader
    energy: SiteParams = SiteParams()
    meters: list[MeterEntry] = []
    green_power: list[GreenPurchase] = []
    factor_overrides: list[FactorOverride] = []
    activity_data: list[ActivityEntry] = []
    structure: Structure | None = None
    programme: Programme | None = None
    targets: list[Target] | None = None
    offsets: list[Offset] | None = None
    evaluations: Evaluations | None = None
    energy_baselines: list[EnergyBaseline] | None = None
    projects: list[Project] | None = None

    @property
    def savings(self) -> Savings | None:
        """Baselines and projects as one document; None when the file has neither (the stored one
        is kept). A file with either replaces the stored document whole."""
        if self.energy_baselines is None and self.projects is None:
            return None
        return Savings(energy_baselines=self.energy_baselines or [], projects=self.projects or [])

    @property
    def zero_carbon(self) -> ZeroCarbonProgramme | None:
        """The four programme sections as one document; None when the file has none of them (the
        stored programme is kept). A file with any of them replaces the stored programme whole."""
        parts = {"programme": self.programme, "targets": self.targets, "offsets": self.offsets,
                 "evaluations": self.evaluations}
        if all(v is None for v in parts.values()):
            return None
        return ZeroCarbonProgramme(**{k: v for k, v in parts.items() if v is not None})

    @model_validator(mode="after")
    def _unique_meters(self) -> SiteFile:
        ids = [m.id for m in self.meters]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"meters: each meter once; listed more than once: {', '.join(twice)}")
        return self


class SiteFileError(ValueError):
    """A site file problem, formatted as ``FILE:LINE: field: message`` (one per line)."""


def located(source: str, lines: dict[Loc, int], loc: Loc, message: str) -> str:
    line = line_for(loc, lines)
    return f"{source}:{line}: {dotted(loc)}: {message}" if line else f"{source}: {dotted(loc)}: {message}"


def parse_site_file(text: str, source: str = "<site file>") -> tuple[SiteFile, dict[Loc, int]]:
    """The validated file and the line of every key (for errors found later, e.g. in the database)."""
    try:
        data, lines = load_with_lines(text)
    except Exception as exc:  # yaml.YAMLError carries its own line info
        raise SiteFileError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SiteFileError(f"{source}:1: a site file is a mapping with `site`, `energy`, `meters`, …")
    try:
        sf = SiteFile.model_validate(data)
    except ValidationError as exc:
        raise SiteFileError("\n".join(
            located(source, lines, tuple(err["loc"]), _message(err)) for err in exc.errors()
        )) from None
    if sf.structure is not None:
        try:
            check_structure(sf.structure)
        except StructureError as exc:
            raise SiteFileError(located(source, lines, ("structure", *exc.loc), exc.message)) from None
    z = sf.zero_carbon
    if z is not None:
        try:
            check_programme(z, sf.green_power)
        except ProgrammeError as exc:
            raise SiteFileError(located(source, lines, exc.loc, exc.message)) from None
    return sf, lines


def load_site_file(path: Path) -> tuple[SiteFile, dict[Loc, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(f"{path}: cannot read the site file: {exc.strerror}") from None
    return parse_site_file(text, str(path))


def dump_site_file(sf: SiteFile) -> str:
    """YAML in the file's own key order; every value in force is written out, defaults included."""
    data = sf.model_dump(mode="json", exclude_none=True)
    data["site"] = {"id": data["site"].pop("id"), **data["site"]}  # the id first, as people write it
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")
