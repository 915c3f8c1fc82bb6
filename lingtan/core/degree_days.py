"""Heating and cooling degree days, the weather variables of a baseline (docs/domain.md,
"Baselines and savings").

HDD = Σ max(0, T_base − T_mean,day) with T_base = 18 °C; CDD = Σ max(0, T_mean,day − T_base) with
T_base = 26 °C, as JGJ 134-2010 defines HDD18 and CDD26. T_mean is the day's mean temperature; when
only the extremes are known, T_mean = (T_max + T_min)/2, which can differ by a few tenths of a
degree from a mean of four or 24 observations.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lingtan.core.baseline_model import as_series

Kind = Literal["heating", "cooling"]
HEATING_BASE_C = 18.0
COOLING_BASE_C = 26.0
SOURCE = "JGJ 134-2010: HDD18 and CDD26 from daily mean temperatures"


def mean_temperature(t_max: ArrayLike, t_min: ArrayLike) -> NDArray[np.float64]:
    """(T_max + T_min)/2 per day, for days whose mean was not recorded."""
    hi, lo = as_series("t_max", t_max), as_series("t_min", t_min)
    if hi.size != lo.size:
        raise ValueError(f"t_min has {lo.size} values, t_max has {hi.size}")
    if np.any(hi < lo):
        i = int(np.flatnonzero(hi < lo)[0])
        raise ValueError(f"t_max[{i}] = {hi[i]:g} is below t_min[{i}] = {lo[i]:g}")
    return (hi + lo) / 2.0


def daily_degree_days(daily_mean_temps: ArrayLike, base: float | None = None,
                      kind: Kind = "heating") -> NDArray[np.float64]:
    """Each day's degree days (°C·d); ``base`` defaults to 18 °C heating, 26 °C cooling."""
    t = as_series("daily_mean_temps", daily_mean_temps)
    if kind == "heating":
        return np.maximum(0.0, (HEATING_BASE_C if base is None else base) - t)
    if kind == "cooling":
        return np.maximum(0.0, t - (COOLING_BASE_C if base is None else base))
    raise ValueError(f"kind must be 'heating' or 'cooling', got {kind!r}")


def degree_days(daily_mean_temps: ArrayLike, base: float | None = None, kind: Kind = "heating") -> float:
    """The period's degree days: the sum of ``daily_degree_days``."""
    return float(daily_degree_days(daily_mean_temps, base, kind).sum())
