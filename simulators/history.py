"""Backfill: the model's true values at regular instants, e.g. for yesterday's history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from simulators.site import SiteModel


def generate(
    seed: int,
    start: datetime,
    end: datetime,
    step_seconds: float,
    *,
    max_step: int = 1,
    retrofit: datetime | None = None,
) -> Iterator[tuple[datetime, str, str, float]]:
    """Yield (time, device id, quantity, value) every ``step_seconds`` from start to end.

    Runs the same deterministic model as the live simulator, in 1-s steps by default, so
    ``SiteModel(seed, start, retrofit=retrofit)`` advanced to ``end`` continues exactly where this
    leaves off.
    Instants are ``start + k × step_seconds`` up to and including ``end``; the model
    moves in whole seconds, so a fractional step is sampled at its last whole second
    but reported at the exact instant.
    """
    yield from sample(SiteModel(seed, start, retrofit=retrofit), end, step_seconds, max_step=max_step)


def sample(
    model: SiteModel,
    end: datetime,
    step_seconds: float,
    *,
    max_step: int = 1,
    sub_meters: bool = True,
) -> Iterator[tuple[datetime, str, str, float]]:
    """Like ``generate``, on a model the caller keeps: afterwards it stands at ``end``,
    ready to be saved for the live simulator to continue from. ``sub_meters=False`` leaves
    the sub-meters' values out (``SiteModel.truth``)."""
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    start = model.now
    k = 0
    while (t := start + timedelta(seconds=k * step_seconds)) <= end:
        model.advance_to(t, max_step=max_step)
        for (device, quantity), value in model.truth(sub_meters=sub_meters).items():
            yield t, device, quantity, value
        k += 1
    model.advance_to(end, max_step=max_step)


def model_at(seed: int, start: datetime, t: datetime, *, max_step: int = 1,
             retrofit: datetime | None = None) -> SiteModel:
    """The model started at ``start`` and advanced to ``t`` (to hand to the live simulator)."""
    model = SiteModel(seed, start, retrofit=retrofit)
    model.advance_to(t, max_step=max_step)
    return model
