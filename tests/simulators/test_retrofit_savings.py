"""The demo's retrofit project measures the simulator's own saving: compressor 1's daily energy
against production, fitted over the demo project's baseline days and applied to its reporting days
(docs/domain.md, "Baselines and savings"), against the same plant run without the retrofit. The
retrofit draws nothing from the random streams, so the two runs differ only by the drive: the
difference of their reporting-period energy is the true saving."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from lingtan.cli.demo import OLDER_STEP_S, demo_savings
from lingtan.core.baseline_model import adequate, fit
from lingtan.core.savings_math import savings
from simulators.site import COMPRESSOR_1, LINE, SiteModel, local_midnight

SEED = 42  # the demo's default seed (LINGTAN_SIM_SEED)
RETROFIT = date(2026, 6, 15)


def daily(first: date, days: int, retrofit: bool) -> tuple[np.ndarray, np.ndarray]:
    """(compressor 1 kWh, line-1 units) per local day, read from the counters at local midnight."""
    model = SiteModel(SEED, local_midnight(first), retrofit=local_midnight(RETROFIT) if retrofit else None)
    energy, units = [], []
    last = model.truth(sub_meters=False)
    for d in range(1, days + 1):
        model.advance_to(local_midnight(first + timedelta(days=d)), max_step=OLDER_STEP_S)
        now = model.truth(sub_meters=False)
        kwh, count = (COMPRESSOR_1, "active_energy_import"), (LINE, "production_count")
        energy.append(now[kwh] - last[kwh])
        units.append(now[count] - last[count])
        last = now
    return np.asarray(energy), np.asarray(units)


def test_the_demo_project_measures_the_simulated_saving_within_its_uncertainty() -> None:
    project = demo_savings(RETROFIT).projects[0]
    first = project.baseline.start
    reporting = [project.reporting.start + timedelta(days=i) for i in range(28)]
    days = (reporting[-1] - first).days + 1
    e_vfd, units = daily(first, days, retrofit=True)
    e_fixed, units_fixed = daily(first, days, retrofit=False)
    assert np.array_equal(units, units_fixed)  # the same production either way
    index = {first + timedelta(days=i): i for i in range(days)}
    assert project.baseline.end is not None
    base = [index[first + timedelta(days=i)] for i in range((project.baseline.end - first).days + 1)]
    rep = [index[d] for d in reporting]
    assert np.array_equal(e_vfd[base], e_fixed[base])  # before the retrofit the plant is the same
    model = fit(e_vfd[base], {"production": units[base]})
    assert adequate(model, 28 / 30.4375, {"production": units[rep]}), model
    r = savings(model, e_vfd[rep], {"production": units[rep]}, confidence=project.confidence)
    true = float(e_fixed[rep].sum() - e_vfd[rep].sum())
    assert true > 0 and r.absolute_uncertainty is not None
    assert abs(r.avoided_energy - true) <= r.absolute_uncertainty, (r.avoided_energy, true,
                                                                    r.absolute_uncertainty)
