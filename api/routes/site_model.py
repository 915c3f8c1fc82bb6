"""The site energy model over HTTP: sites, meter roles and parameters, green power, factor overrides,
activity data entered by hand.

Reads need a viewer key, changes an engineer key. Each write commits on success; on any error
the request's connection closes uncommitted, so nothing of a failed request is kept.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Response

from api.auth import Engineer, Viewer
from api.deps import get_conn
from api.pagination import Page, Paging
from lingtan.core import activity
from lingtan.core import site_model as svc
from lingtan.core.keys import ApiKey
from lingtan.core.site_file import FactorOverride, MeterPatch, SiteFile, SiteWrite
from lingtan.core.site_schema import ActivityEntry, GreenPurchase

router = APIRouter(tags=["site model"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _rejected(exc: svc.ModelError) -> HTTPException:
    # The detail starts with the field's path, written as validation errors name fields:
    # "body.meters.0.params.fuel: …".
    field = ".".join(str(part) for part in ("body", *exc.loc))
    return HTTPException(exc.status, f"{field}: {exc.message}")


_SITE_EXAMPLE = {
    "name": "Demo plant, Shenyang", "timezone": "Asia/Shanghai", "grid_region": "north_east",
    "factor_set": "mee-2023",
    "params": {"boiler_efficiency": 0.92, "gas_price_cny_per_m3": 3.6,
               "tariff": {"flat_cny_per_kwh": 0.65}, "production_unit": "pcs"},
}
_PURCHASE_EXAMPLES = {
    "gec": {"summary": "green certificates (1 GEC = 1000 kWh)",
            "value": {"kind": "gec", "period_start": "2026-11-01", "period_end": "2026-12-01",
                      "certificates": 40, "reference": "GEC order 2026-11"}},
    "trade": {"summary": "green-power trade",
              "value": {"kind": "trade", "period_start": "2026-11-01", "period_end": "2026-12-01",
                        "kwh": 60000, "reference": "Liaoning green-power trade, November"}},
}
_ACTIVITY_EXAMPLES = {
    "diesel": {"summary": "forklift diesel by volume, with the density on the delivery note",
               "value": {"date": "2026-11-12", "carrier": "diesel", "amount": 1000, "unit": "L",
                         "density_kg_per_l": 0.84, "evidence": "INV-2026-1187",
                         "note": "forklifts, tank refill"}},
    "lpg": {"summary": "LPG for a month, by mass",
            "value": {"period_start": "2026-11-01", "period_end": "2026-12-01", "carrier": "lpg",
                      "amount": 450, "unit": "kg", "evidence": "ledger 2026-11 #44"}},
    "refrigerant": {"summary": "refrigerant top-up (GWP from the library, IPCC AR5)",
                    "value": {"date": "2026-11-20", "carrier": "refrigerant", "gas": "R-410A", "amount": 6.5,
                              "unit": "kg", "evidence": "service report SR-3321"}},
}
_OVERRIDE_EXAMPLE = {
    "kind": "co2", "subject": "natural_gas", "value": 21.4, "unit": "tCO2/10^4 Nm3",
    "source": "supplier gas analysis 2026 (measured carbon content)", "valid_from": "2026-01-01",
}
_IMPORT_EXAMPLE: dict[str, Any] = {
    "site": {"id": "demo-plant", **{k: v for k, v in _SITE_EXAMPLE.items() if k != "params"}},
    "energy": _SITE_EXAMPLE["params"],
    "meters": [
        {"id": "grid-incomer", "role": "grid_import"},
        {"id": "compressor-1", "role": "compressor",
         "params": {"compressor": {"rated_kw": 75, "pressure_mpa": 0.8}}},
        {"id": "boiler", "role": "boiler_fuel", "params": {"fuel": "natural_gas"}},
    ],
    "green_power": [_PURCHASE_EXAMPLES["trade"]["value"]],
    "factor_overrides": [],
    "activity_data": [_ACTIVITY_EXAMPLES["diesel"]["value"]],
}


@router.put("/sites/{site_id}", response_model=svc.SiteView, summary="Create or replace a site",
            responses={201: {"model": svc.SiteView, "description": "the site was created"}})
def put_site(
    site_id: SiteId,
    body: Annotated[SiteWrite, Body(openapi_examples={"site": {"value": _SITE_EXAMPLE}})],
    conn: Conn, response: Response, _: Engineer,
) -> svc.SiteView:
    """Name, time zone, grid region, factor set and energy parameters. Omitted parameters take their
    documented defaults; meters, green power, factor overrides and activity data are kept."""
    try:
        created = svc.put_site(conn, site_id, body)
    except svc.ModelError as exc:
        raise _rejected(exc) from None
    if created:
        response.status_code = 201
    conn.commit()
    return svc.site_view(conn, site_id)


@router.get("/sites/{site_id}/model", response_model=svc.SiteView, summary="The site's whole energy model")
def get_model(site_id: str, conn: Conn, _: Viewer) -> svc.SiteView:
    return svc.site_view(conn, site_id)


@router.patch("/meters/{meter_id}", response_model=svc.MeterView,
              summary="Set a meter's role, name or params")
def patch_meter(
    meter_id: str,
    body: Annotated[MeterPatch, Body(openapi_examples={"compressor": {"value": {
        "role": "compressor", "params": {"compressor": {"rated_kw": 37, "pressure_mpa": 0.7}}}}})],
    conn: Conn, _: Engineer,
) -> svc.MeterView:
    """Only the fields given change; ``params`` is replaced as a whole and must fit the role."""
    try:
        meter = svc.update_meter(conn, meter_id, body)
    except svc.ModelError as exc:
        raise _rejected(exc) from None
    conn.commit()
    return meter


@router.get("/sites/{site_id}/green-purchases", response_model=Page[svc.StoredPurchase],
            summary="Green certificates and green-power trades of a site")
def list_purchases(site_id: str, conn: Conn, _: Viewer, page: Paging) -> Page[svc.StoredPurchase]:
    return Page.of(svc.list_purchases(conn, site_id), page)


@router.post("/sites/{site_id}/green-purchases", response_model=svc.StoredPurchase, status_code=201,
             summary="Record a green-power purchase")
def add_purchase(
    site_id: str,
    body: Annotated[GreenPurchase, Body(openapi_examples=_PURCHASE_EXAMPLES)],
    conn: Conn, _: Engineer,
) -> svc.StoredPurchase:
    purchase = svc.add_purchase(conn, site_id, body)
    conn.commit()
    return purchase


@router.delete("/sites/{site_id}/green-purchases/{purchase_id}", status_code=204, response_model=None,
               summary="Delete a green-power purchase")
def delete_purchase(site_id: str, purchase_id: int, conn: Conn, _: Engineer) -> None:
    svc.delete_purchase(conn, site_id, purchase_id)
    conn.commit()


@router.get("/sites/{site_id}/factor-overrides", response_model=Page[svc.StoredOverride],
            summary="The site's own emission or standard-coal factors")
def list_overrides(site_id: str, conn: Conn, _: Viewer, page: Paging) -> Page[svc.StoredOverride]:
    return Page.of(svc.list_overrides(conn, site_id), page)


@router.post("/sites/{site_id}/factor-overrides", response_model=svc.StoredOverride, status_code=201,
             summary="Override a library factor for this site")
def add_override(
    site_id: str,
    body: Annotated[FactorOverride, Body(openapi_examples={"gas": {"value": _OVERRIDE_EXAMPLE}})],
    conn: Conn, _: Engineer,
) -> svc.StoredOverride:
    """The kind and subject must exist in the site's factor set, in the same unit, with a source;
    periods of one kind and subject must not overlap."""
    try:
        override = svc.add_override(conn, site_id, body)
    except svc.ModelError as exc:
        raise _rejected(exc) from None
    conn.commit()
    return override


@router.delete("/sites/{site_id}/factor-overrides/{override_id}", status_code=204, response_model=None,
               summary="Delete a factor override")
def delete_override(site_id: str, override_id: int, conn: Conn, _: Engineer) -> None:
    svc.delete_override(conn, site_id, override_id)
    conn.commit()


def _entered_by(key: ApiKey) -> str:
    return f"api key {key.prefix}" + (f" ({key.name})" if key.name else "")


@router.get("/sites/{site_id}/activity-data", response_model=Page[activity.StoredActivity],
            summary="Fuel and refrigerant entered by hand, with evidence")
def list_activity(site_id: str, conn: Conn, _: Viewer, page: Paging) -> Page[activity.StoredActivity]:
    """Oldest first. Each entry shows its amount in the carrier's canonical unit (t, or m³ of natural
    gas) as the KPI engine counts it, and who entered it when."""
    items, total = activity.list_entries(conn, site_id, page.limit, page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/sites/{site_id}/activity-data", response_model=activity.StoredActivity, status_code=201,
             summary="Enter unmetered fuel or a refrigerant top-up",
             responses={409: {"description": "the same entry is already recorded"}})
def add_activity(
    site_id: str,
    body: Annotated[ActivityEntry, Body(openapi_examples=_ACTIVITY_EXAMPLES)],
    conn: Conn, key: Engineer,
) -> activity.StoredActivity:
    """A day (``date``) or a period (``period_start``, exclusive ``period_end``) in the site's zone.
    It counts in Scope 1 and tce like metered fuel, in proportion to the part of its days a window
    covers. A liquid fuel given by volume needs its density; a refrigerant its gas (GWP from IPCC
    AR5 unless the entry gives its own with a source). The API key is recorded as who entered it."""
    try:
        entry = activity.add_entry(conn, site_id, body, _entered_by(key))
    except activity.DuplicateEntry as exc:
        raise HTTPException(409, str(exc)) from None
    conn.commit()
    return entry


@router.delete("/sites/{site_id}/activity-data/{entry_id}", status_code=204, response_model=None,
               summary="Delete an activity data entry")
def delete_activity(site_id: str, entry_id: int, conn: Conn, _: Engineer) -> None:
    activity.delete_entry(conn, site_id, entry_id)
    conn.commit()


@router.post("/sites/{site_id}/import", response_model=svc.ImportResult, summary="Apply a whole site file",
             responses={201: {"model": svc.ImportResult, "description": "the site was created"}})
def import_site(
    site_id: SiteId,
    body: Annotated[SiteFile, Body(openapi_examples={"site file": {"value": _IMPORT_EXAMPLE}})],
    conn: Conn, response: Response, key: Engineer,
) -> svc.ImportResult:
    """The site file's schema as JSON (the YAML file of ``lingtan site import``). All or nothing;
    importing the same file again changes nothing. The site's green power and factor overrides
    become the file's lists, and so does its activity data (entries the file adds are recorded as
    entered by this API key); listed meters are created if missing, others are left alone."""
    if body.site.id != site_id:
        raise HTTPException(422, f"body.site.id: {body.site.id!r} does not match the URL's {site_id!r}")
    try:
        result = svc.import_site_file(conn, body, _entered_by(key))
    except svc.ModelError as exc:
        raise _rejected(exc) from None
    conn.commit()
    if result.site_created:
        response.status_code = 201
    return result
