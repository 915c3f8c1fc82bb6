"""Measured savings (avoided energy) against a baseline, their uncertainty, CUSUM and the ratio EnPI
(docs/domain.md, "Baselines and savings").

Avoided energy (IPMVP; ISO 50015): the adjusted baseline is the baseline model evaluated with the
reporting period's conditions, plus non-routine adjustments (energy the baseline would have used
for changes outside the model, e.g. a production line added: positive raises the baseline):
  E_adj = Σ model(reporting variables) + adjustments        E_save = E_adj − E_reporting

Uncertainty, ASHRAE Guideline 14-2014 Annex B (after Reddy & Claridge 2000), with n baseline
points, m reporting points, p parameters, CV = CV(RMSE) as a fraction, F = E_save / E_adj:
  ΔE_save / E_save = t · a · CV · √((n/n') · (1 + 2/n') / m) / F
- t: Student t, two-sided at the chosen confidence, df = n' − p.
- n' = n·(1 − ρ)/(1 + ρ), ρ the lag-1 autocorrelation of the baseline residuals. n' = n when
  ρ ≤ 0 (never more information than n points); the formula then reduces to the uncorrelated
  t·a·CV·√((1 + 2/n)/m)/F. The factor n/n' carries the autocorrelation into the variance of the
  reporting period's sum: without it a ρ of 0.6 changes the result by about 1 % where the spread
  of the savings doubles.
- a: 1.26 for hourly and 15-minute data (Guideline 14). Corrections for daily and monthly data
  circulate (polynomials in the number of months) whose origin is not verified here, so ``a`` is a
  parameter and the result states the value used.
- Guideline 14 asks that the uncertainty be below 50 % of the savings at 68 % confidence.
Non-routine adjustments are taken as exact: their own uncertainty is not in ΔE_save.

CUSUM_t = Σ_{i≤t} (E_actual,i − E_expected,i): flat while energy is as expected, rising with
excess consumption, falling with savings. The ratio EnPI (ISO 50006) is Σ actual / Σ expected:
below 1 is an improvement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lingtan.core.baseline_model import Baseline, as_series, check_confidence, predict, t_quantile

GL14_A = 1.26
GL14_CONFIDENCE = 0.68
GL14_MAX_FRACTION = 0.5


@dataclass(frozen=True)
class SavingsResult:
    adjusted_baseline: float            # E_adj: model at reporting conditions + adjustments
    reporting_energy: float             # E_reporting: measured
    avoided_energy: float               # E_save = E_adj − E_reporting
    adjustments: float                  # non-routine adjustments included in E_adj
    fraction: float                     # F = E_save / E_adj
    fractional_uncertainty: float | None  # ΔE_save / |E_save|; None when E_save = 0 or n' ≤ p
    absolute_uncertainty: float | None  # ± ΔE_save, energy units, at ``confidence``
    confidence: float
    t: float | None                     # Student t used, df = n' − p
    n: int                              # baseline points
    n_effective: float                  # n'
    rho: float                          # lag-1 autocorrelation of the baseline residuals
    m: int                              # reporting points
    p: int                              # model parameters
    a: float                            # the empirical factor used
    cv_rmse_pct: float                  # of the baseline model
    uncertainty_below_half: bool        # ΔE_save < 50 % of |E_save| at ``confidence`` (GL14: at 0.68)
    note: str                           # why an uncertainty is missing, else ""


def effective_points(n: int, rho: float) -> float:
    """n' = n·(1 − ρ)/(1 + ρ) for ρ > 0, else n."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must lie strictly between -1 and 1, got {rho!r}")
    return n * (1.0 - rho) / (1.0 + rho) if rho > 0.0 else float(n)


def fractional_uncertainty(cv: float, fraction: float, n: int, m: int, p: int, rho: float = 0.0,
                           confidence: float = GL14_CONFIDENCE, a: float = GL14_A) -> float:
    """ΔE_save/E_save by the module's formula; ``cv`` as a fraction (0.12 for 12 %)."""
    check_confidence(confidence)
    if fraction == 0.0:
        raise ValueError("fraction: no savings (F = 0), the uncertainty relative to them is unbounded")
    n_eff = effective_points(n, rho)
    if n_eff <= p:
        raise ValueError(f"rho: n' = {n_eff:.1f} effective points for p = {p} parameters leaves no "
                         "degrees of freedom for an uncertainty")
    t = t_quantile(0.5 + confidence / 2, n_eff - p)
    return t * a * cv * math.sqrt((n / n_eff) * (1.0 + 2.0 / n_eff) / m) / abs(fraction)


def savings(baseline: Baseline, reporting_energy: ArrayLike, reporting_variables: Mapping[str, ArrayLike],
            confidence: float = GL14_CONFIDENCE, a: float = GL14_A,
            adjustments: float = 0.0) -> SavingsResult:
    """Avoided energy over the reporting period and its uncertainty (module docstring)."""
    check_confidence(confidence)
    if not (math.isfinite(a) and a > 0.0):
        raise ValueError(f"a must be a positive number (Guideline 14: 1.26), got {a!r}")
    if not math.isfinite(adjustments):
        raise ValueError(f"adjustments must be a finite number, got {adjustments!r}")
    energy = as_series("reporting_energy", reporting_energy)
    expected = predict(baseline, reporting_variables)
    if expected.size != energy.size:
        raise ValueError(f"reporting_variables have {expected.size} points, "
                         f"reporting_energy has {energy.size}")
    e_adj = float(expected.sum()) + adjustments
    if e_adj <= 0.0:
        raise ValueError(f"adjusted baseline {e_adj:g} ≤ 0: savings are relative to it")
    e_rep = float(energy.sum())
    e_save = e_adj - e_rep
    fraction = e_save / e_adj
    n, m, p, rho = baseline.n, int(energy.size), baseline.p, baseline.rho
    n_eff = effective_points(n, rho)

    t: float | None = None
    absolute: float | None = None
    relative: float | None = None
    note = ""
    if n_eff <= p:
        note = (f"n' = {n_eff:.1f} effective points (ρ = {rho:.2f}) for p = {p} parameters: "
                "no degrees of freedom left for an uncertainty")
    else:
        t = t_quantile(0.5 + confidence / 2, n_eff - p)
        # ΔE_save = (ΔE_save/E_save)·E_save = t·a·CV·√(…)·E_adj: defined even when E_save is 0
        spread = math.sqrt((n / n_eff) * (1.0 + 2.0 / n_eff) / m)
        absolute = t * a * (baseline.cv_rmse_pct / 100.0) * spread * e_adj
        if e_save != 0.0:
            relative = absolute / abs(e_save)
        else:
            note = "no savings: the uncertainty relative to them is unbounded"
    return SavingsResult(
        adjusted_baseline=e_adj, reporting_energy=e_rep, avoided_energy=e_save, adjustments=adjustments,
        fraction=fraction, fractional_uncertainty=relative, absolute_uncertainty=absolute,
        confidence=confidence, t=t, n=n, n_effective=n_eff, rho=rho, m=m, p=p, a=a,
        cv_rmse_pct=baseline.cv_rmse_pct,
        uncertainty_below_half=relative is not None and relative < GL14_MAX_FRACTION, note=note,
    )


def cusum(actual: ArrayLike, expected: ArrayLike) -> NDArray[np.float64]:
    """CUSUM_t = Σ_{i≤t}(actual_i − expected_i): rising = excess, falling = savings."""
    act, exp = as_series("actual", actual), as_series("expected", expected)
    if act.size != exp.size:
        raise ValueError(f"expected has {exp.size} values, actual has {act.size}")
    return np.cumsum(act - exp)


def enpi_ratio(actual: ArrayLike, expected: ArrayLike) -> float:
    """Σ actual / Σ expected (ISO 50006 ratio EnPI against the baseline): below 1 is an improvement."""
    act, exp = as_series("actual", np.atleast_1d(actual)), as_series("expected", np.atleast_1d(expected))
    if act.size != exp.size:
        raise ValueError(f"expected has {exp.size} values, actual has {act.size}")
    total = float(exp.sum())
    if total <= 0.0:
        raise ValueError(f"expected: total {total:g} ≤ 0, the ratio is relative to it")
    return float(act.sum()) / total
