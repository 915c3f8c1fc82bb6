"""Backfilled history is the same trajectory the live model takes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from simulators.history import generate, model_at
from simulators.site import SiteModel

START = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # local midnight, Tuesday


def test_samples_every_step_including_both_ends() -> None:
    rows = list(generate(3, START, START + timedelta(hours=1), 300))
    times = sorted({t for t, *_ in rows})
    assert times == [START + timedelta(seconds=300 * k) for k in range(13)]
    per_time = defaultdict(int)
    for t, *_ in rows:
        per_time[t] += 1
    assert set(per_time.values()) == {len(SiteModel(3, START).truth())}


def test_history_matches_the_live_model_and_continues_it() -> None:
    end = START + timedelta(hours=2)
    rows = {(t, d, q): v for t, d, q, v in generate(3, START, end, 600)}
    live = SiteModel(3, START)
    for k in range(13):
        t = START + timedelta(seconds=600 * k)
        live.advance_to(t)
        for (d, q), v in live.truth().items():
            assert rows[(t, d, q)] == v
    handed_over = model_at(3, START, end)
    assert handed_over.to_dict() == live.to_dict()


def test_rejects_bad_steps() -> None:
    with pytest.raises(ValueError):
        list(generate(3, START, START + timedelta(hours=1), 0))
