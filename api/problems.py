"""RFC 9457 problem details: every error the API returns has one JSON shape.

Clients (the dashboard's future HTTP mode, scripts, integrators) then need one error parser,
whether the error came from auth, validation, a missing row, an unknown path or a bug.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lingtan.core.queries import NotFound

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("api.errors")


class FieldError(BaseModel):
    field: str = Field(description="where the bad value is: body.amount, query.limit, path.site_id")
    message: str


class Problem(BaseModel):
    """An error answer (RFC 9457)."""

    type: str = Field("about:blank", description="URI naming the problem type; about:blank = the status")
    title: str = Field(description="short summary of the status, e.g. Not Found")
    status: int
    detail: str = Field(description="what went wrong in this request, for a person")
    instance: str = Field(description="the request path")
    errors: list[FieldError] | None = Field(None, description="one entry per invalid field (422 only)")

    model_config = {"json_schema_extra": {"examples": [{
        "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
        "detail": "invalid value in body.amount", "instance": "/api/v1/carbon/convert",
        "errors": [{"field": "body.amount", "message": "Input should be greater than or equal to 0"}],
    }]}}


class Unprocessable(Exception):
    """A value the schema accepts but the service cannot use; answered as a 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(request: Request, status: int, detail: str, *, errors: list[FieldError] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=_title(status), status=status, detail=detail, instance=request.url.path,
                   errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=MEDIA_TYPE)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    return problem(request, exc.status_code, detail, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [FieldError(field=_field(e.get("loc", ())), message=str(e.get("msg", "")))
              for e in exc.errors()]
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return problem(request, 422, f"invalid value in {fields}", errors=errors)


async def _unprocessable(request: Request, exc: Unprocessable) -> JSONResponse:
    return problem(request, 422, exc.message, errors=[FieldError(field=exc.field, message=exc.message)])


async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
    return problem(request, 404, str(exc))


async def _unstorable(request: Request, exc: sa.exc.DataError) -> JSONResponse:
    # A value the schema let through but PostgreSQL cannot take, e.g. a NUL character in a
    # text field: the client's input is at fault, so it is a 422, not a server error.
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return problem(request, 422, f"a value in the request cannot be stored or compared: {reason}",
                   errors=[FieldError(field="request", message=reason)])


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # The client learns only that it failed; the traceback goes to the structured log.
    log.error("unhandled error", exc_info=exc,
              extra={"method": request.method, "path": request.url.path, "error": type(exc).__name__})
    return problem(request, 500, "the server failed to answer this request; the error has been logged")


def install(app: FastAPI) -> None:
    # Starlette's HTTPException (FastAPI's subclasses it) also covers unknown paths (404) and
    # methods (405), which never reach a route.
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Unprocessable, _unprocessable)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.DataError, _unstorable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_error)


_DESCRIPTIONS = {
    400: "the request could not be read, e.g. a body that is not UTF-8 JSON",
    401: "no API key, or one that is not valid or revoked",
    403: "the API key's role is too low for this operation",
    404: "the named resource does not exist",
    409: "the request conflicts with the resource's state",
    422: "a parameter or body field is invalid; `errors` names each one",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem answers (see ``problem_media_type``)."""
    return {s: {"model": Problem, "description": _DESCRIPTIONS[s]} for s in statuses}


# What every route behind an API key can answer besides its success.
PROTECTED = responses(400, 401, 403, 404, 422)


def problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Document problem answers under application/problem+json, the type they are sent with.

    FastAPI files a response ``model`` under the route's own media type (application/json).
    """
    ref = "#/components/schemas/Problem"
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and content.get("application/json", {}).get("schema") == {"$ref": ref}:
                    content[MEDIA_TYPE] = content.pop("application/json")
    return schema
