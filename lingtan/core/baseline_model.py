"""Energy baselines (EnB) by ordinary least squares, and the rules a baseline is judged by
(docs/domain.md, "Baselines and savings").

Standards:
- ISO 50001:2018 (GB/T 23331-2020 is its identical Chinese adoption) asks an organisation to set an
  energy baseline and to normalise it when relevant variables change.
- ISO 50006:2014 (GB/T 36713-2018 in China) describes EnB and EnPIs, regression on relevant
  variables among them; it gives no numerical acceptance limits.
- ISO 50015:2014 and IPMVP (options A, B, C, D) describe measurement and verification; a
  whole-facility regression baseline is IPMVP option C.

The model: E = b0 + Σ bk·xk + e, fitted by OLS with an intercept (statsmodels). The points are in
time order (the lag-1 autocorrelation of the residuals depends on it).

Goodness of fit, ASHRAE Guideline 14-2014 with n points, p parameters (intercept included) and ȳ
the mean energy:
  CV(RMSE) = 100·√(Σ(yᵢ−ŷᵢ)²/(n−p)) / ȳ        NMBE = 100·Σ(yᵢ−ŷᵢ) / ((n−p)·ȳ)
OLS with an intercept has Σ(yᵢ−ŷᵢ) = 0, so NMBE on the baseline itself is 0 up to rounding; the
functions ``cv_rmse`` and ``nmbe`` serve for checking a model on other data.

Adequacy (``adequacy``): the DOE/LBNL EnPI tool's regression rules, because ISO 50006 gives no
numbers — overall F-test p < 0.10, every variable p < 0.20, at least one variable p < 0.10,
R² ≥ 0.5 — and Guideline 14's whole-facility CV(RMSE) limits for energy: 20 % with less than 12
months of reporting data, 25 % with 12 to 60 months, 30 % beyond 60. Without a reporting length the
strictest limit (20 %) applies. A baseline is not carried outside the conditions it was fitted on,
by the EnPI tool's relevant-variable rule: the reporting period's mean of every variable lies within
the baseline's [min, max] or within its mean ± 3 standard deviations. Single reporting points
outside [min, max] do not fail the model (a day's production 0.3 % above the busiest baseline day is
no reason to state nothing); ``points_outside`` counts them so the answer can say so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

INTERCEPT = "intercept"

ENPI_TOOL = ("DOE/LBNL EnPI tool regression model rules (ISO 50006 / GB/T 36713-2018 describes "
             "regression baselines but gives no numerical limits)")
GL14_CV = "ASHRAE Guideline 14-2014, whole-facility (option C) baseline model, energy use"
RANGE_SOURCE = ("DOE/LBNL EnPI tool, valid relevant variable requirement: the mean of the values "
                "the adjusted consumption is computed from lies within the baseline's range or within "
                "3 standard deviations of its mean (ISO 50006 / IPMVP: no model outside its conditions)")

F_TEST_P = 0.10
VARIABLE_P = 0.20
BEST_VARIABLE_P = 0.10
MIN_R2 = 0.5


@dataclass(frozen=True)
class Term:
    """One fitted coefficient: the intercept or a variable's slope."""

    estimate: float
    std_error: float
    t: float
    p_value: float


@dataclass(frozen=True)
class VariableRange:
    """A variable over the baseline period; ``std`` is the sample standard deviation (n − 1)."""

    min: float
    max: float
    mean: float
    std: float


@dataclass(frozen=True)
class Baseline:
    names: tuple[str, ...]                # the variables, in the model's order
    terms: dict[str, Term]                # "intercept" first, then each variable
    ranges: dict[str, VariableRange]      # each variable over the baseline period
    n: int                                # baseline points
    p: int                                # parameters, intercept included
    r2: float
    adj_r2: float
    f_pvalue: float                       # overall F-test
    cv_rmse_pct: float                    # Guideline 14, df = n − p
    nmbe_pct: float                       # Guideline 14, df = n − p
    rho: float                            # lag-1 autocorrelation of the residuals
    residual_std_error: float             # √(SSE/(n − p)), energy units
    y_mean: float                         # ȳ over the baseline period

    @property
    def df_resid(self) -> int:
        return self.n - self.p

    def interval(self, name: str, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided confidence interval of a coefficient ("intercept" or a variable), t with n − p df."""
        if name not in self.terms:
            raise ValueError(f"name: {name!r} is not a term of this baseline ({', '.join(self.terms)})")
        check_confidence(confidence)
        term = self.terms[name]
        half = t_quantile(0.5 + confidence / 2, self.df_resid) * term.std_error
        return term.estimate - half, term.estimate + half


@dataclass(frozen=True)
class Criterion:
    """One adequacy rule. For a variable's range ``value`` is the reporting mean and ``limit`` the
    bound of the accepted interval nearest to it."""

    name: str          # the rule as a person reads it, e.g. "F-test p < 0.10"
    value: float
    limit: float
    passed: bool
    source: str


# statsmodels and scipy are imported where they are used: together they take seconds to import, and
# every CLI command and API process reaches this module through the reports, most never fitting.
def _ols(energy: NDArray[np.float64], design: NDArray[np.float64]) -> Any:
    import statsmodels.api as sm

    return sm.OLS(energy, design).fit()


def t_quantile(q: float, df: float) -> float:
    """Student's t quantile (scipy)."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def cv_rmse(y: ArrayLike, y_hat: ArrayLike, p: int) -> float:
    """CV(RMSE) in percent (Guideline 14): 100·√(Σ(yᵢ−ŷᵢ)²/(n−p)) / ȳ."""
    yy, yh = _pair(y, y_hat)
    sse = float(np.sum((yy - yh) ** 2))
    return 100.0 * math.sqrt(sse / _dof(yy.size, p)) / _mean_energy(yy)


def nmbe(y: ArrayLike, y_hat: ArrayLike, p: int) -> float:
    """NMBE in percent (Guideline 14): 100·Σ(yᵢ−ŷᵢ) / ((n−p)·ȳ); positive when the model under-predicts."""
    yy, yh = _pair(y, y_hat)
    return 100.0 * float(np.sum(yy - yh)) / (_dof(yy.size, p) * _mean_energy(yy))


def lag1_autocorrelation(residuals: ArrayLike) -> float:
    """ρ = Σᵢ₌₂ eᵢ·eᵢ₋₁ / Σ eᵢ² over residuals in time order (0 for a perfect fit)."""
    e = as_series("residuals", residuals)
    denominator = float(np.dot(e, e))
    if e.size < 2 or denominator == 0.0:
        return 0.0
    return float(np.dot(e[1:], e[:-1])) / denominator


def fit(y: ArrayLike, variables: Mapping[str, ArrayLike], names: Sequence[str] | None = None) -> Baseline:
    """Fit energy ``y`` on ``variables`` (OLS with an intercept).

    ``names`` picks the variables and their order (default: every key of ``variables``, in order).
    Refused, naming the culprit: a missing or non-finite value, a length that differs from ``y``,
    a constant variable, a variable that is a linear combination of the others, n ≤ p, ȳ ≤ 0.
    """
    energy = as_series("y", y)
    chosen = list(variables) if names is None else list(names)
    if not chosen:
        raise ValueError("variables: a baseline needs at least one relevant variable")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"names: a variable is named twice ({', '.join(chosen)})")
    columns: list[NDArray[np.float64]] = []
    for name in chosen:
        if name == INTERCEPT:
            raise ValueError(f"variables: {INTERCEPT!r} is the model's own term; rename the variable")
        if name not in variables:
            raise ValueError(f"variables: {name!r} is missing")
        x = as_series(f"variables[{name!r}]", variables[name])
        if x.size != energy.size:
            raise ValueError(f"variables[{name!r}] has {x.size} values, y has {energy.size}")
        if np.ptp(x) == 0.0:
            raise ValueError(f"variables[{name!r}] is constant ({x[0]:g}) over the baseline: "
                             "it explains nothing and cannot be fitted")
        columns.append(x)
    n, p = energy.size, len(chosen) + 1
    if n <= p:
        raise ValueError(f"y: too few points, n = {n} for p = {p} parameters (intercept and "
                         f"{', '.join(chosen)}); a baseline needs n > p")
    y_mean = _mean_energy(energy)
    design = np.column_stack([np.ones(n), *columns])
    _check_rank(design, chosen)

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # a perfect fit (SSE = 0) divides by zero in the t and F statistics: p-values become 0 or nan
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _ols(energy, design)
        params, bse = np.asarray(result.params), np.asarray(result.bse)
        tvalues, pvalues = np.asarray(result.tvalues), np.asarray(result.pvalues)
        f_pvalue = float(result.f_pvalue)
    fitted = design @ params
    residuals = energy - fitted
    sse = float(np.dot(residuals, residuals))

    terms = {name: Term(float(params[i]), float(bse[i]), float(tvalues[i]), float(pvalues[i]))
             for i, name in enumerate([INTERCEPT, *chosen])}
    ranges = {name: VariableRange(float(x.min()), float(x.max()), float(x.mean()), float(x.std(ddof=1)))
              for name, x in zip(chosen, columns, strict=True)}
    return Baseline(
        names=tuple(chosen), terms=terms, ranges=ranges, n=n, p=p,
        r2=float(result.rsquared), adj_r2=float(result.rsquared_adj),
        f_pvalue=0.0 if sse == 0.0 else f_pvalue,
        cv_rmse_pct=cv_rmse(energy, fitted, p), nmbe_pct=nmbe(energy, fitted, p),
        rho=lag1_autocorrelation(residuals), residual_std_error=math.sqrt(sse / (n - p)), y_mean=y_mean,
    )


def predict(baseline: Baseline, variables: Mapping[str, ArrayLike]) -> NDArray[np.float64]:
    """The baseline model evaluated at ``variables`` (extra keys are ignored)."""
    columns = _reporting_columns(baseline, variables)
    out = np.full(next(iter(columns.values())).size, baseline.terms[INTERCEPT].estimate)
    for name in baseline.names:
        out = out + baseline.terms[name].estimate * columns[name]
    return out


def cv_limit(reporting_months: float | None) -> tuple[float, str]:
    """Guideline 14's whole-facility CV(RMSE) limit for energy, by the length of the reporting period."""
    if reporting_months is None:
        return 20.0, "reporting length not given: the strictest limit"
    if not math.isfinite(reporting_months) or reporting_months <= 0:
        raise ValueError(f"reporting_months must be a positive number, got {reporting_months!r}")
    if reporting_months < 12:
        return 20.0, "less than 12 months of reporting data"
    if reporting_months <= 60:
        return 25.0, "12–60 months of reporting data"
    return 30.0, "more than 60 months of reporting data"


def adequacy(baseline: Baseline, reporting_months: float | None = None,
             reporting_variables: Mapping[str, ArrayLike] | None = None) -> list[Criterion]:
    """Every rule of the module docstring, each with its value, limit and source."""
    out = [Criterion("F-test p < 0.10", baseline.f_pvalue, F_TEST_P, baseline.f_pvalue < F_TEST_P, ENPI_TOOL)]
    for name in baseline.names:
        pv = baseline.terms[name].p_value
        out.append(Criterion(f"{name} p < 0.20", pv, VARIABLE_P, pv < VARIABLE_P, ENPI_TOOL))
    best = min(baseline.terms[name].p_value for name in baseline.names)
    out.append(Criterion("at least one variable p < 0.10", best, BEST_VARIABLE_P, best < BEST_VARIABLE_P,
                         ENPI_TOOL))
    out.append(Criterion("R² ≥ 0.5", baseline.r2, MIN_R2, baseline.r2 >= MIN_R2, ENPI_TOOL))
    limit, why = cv_limit(reporting_months)
    out.append(Criterion(f"CV(RMSE) ≤ {limit:g} % ({why})", baseline.cv_rmse_pct, limit,
                         baseline.cv_rmse_pct <= limit, GL14_CV))
    if reporting_variables is not None:
        columns = _reporting_columns(baseline, reporting_variables)
        for name in baseline.names:
            low, high = accepted_range(baseline.ranges[name])
            mean = float(np.mean(columns[name]))
            nearest = low if abs(mean - low) <= abs(high - mean) else high
            out.append(Criterion(f"{name} reporting mean within the baseline's range or mean ± 3σ "
                                 f"[{low:g}, {high:g}]", mean, nearest, low <= mean <= high, RANGE_SOURCE))
    return out


def accepted_range(r: VariableRange) -> tuple[float, float]:
    """The EnPI tool's interval for a reporting mean: [min, max] or mean ± 3σ, whichever is wider at
    each end (both hold the mean, so together they are one interval)."""
    return min(r.min, r.mean - 3 * r.std), max(r.max, r.mean + 3 * r.std)


def points_outside(baseline: Baseline, reporting_variables: Mapping[str, ArrayLike]) -> dict[str, int]:
    """Per variable, how many reporting points lie outside the baseline's [min, max]: days the model
    is extrapolated on, which the adequacy rule tolerates while their mean stays inside."""
    columns = _reporting_columns(baseline, reporting_variables)
    out: dict[str, int] = {}
    for name in baseline.names:
        r = baseline.ranges[name]
        out[name] = int(np.count_nonzero((columns[name] < r.min) | (columns[name] > r.max)))
    return out


def adequate(baseline: Baseline, reporting_months: float | None = None,
             reporting_variables: Mapping[str, ArrayLike] | None = None) -> bool:
    return all(c.passed for c in adequacy(baseline, reporting_months, reporting_variables))


def _reporting_columns(baseline: Baseline,
                       variables: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    columns: dict[str, NDArray[np.float64]] = {}
    for name in baseline.names:
        if name not in variables:
            raise ValueError(f"variables: {name!r} is missing "
                             f"(the baseline needs {', '.join(baseline.names)})")
        columns[name] = as_series(f"variables[{name!r}]", variables[name])
    sizes = {name: x.size for name, x in columns.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError("variables: the variables differ in length ("
                         + ", ".join(f"{k} {v}" for k, v in sizes.items()) + ")")
    return columns


def as_series(field: str, values: ArrayLike) -> NDArray[np.float64]:
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: not a sequence of numbers ({exc})") from None
    if x.ndim != 1:
        raise ValueError(f"{field}: expected a one-dimensional sequence, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{field}: no values")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"{field}[{bad[0]}] is not a finite number ({x[bad[0]]!r})")
    return x


def _pair(y: ArrayLike, y_hat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    yy, yh = as_series("y", y), as_series("y_hat", y_hat)
    if yy.size != yh.size:
        raise ValueError(f"y_hat has {yh.size} values, y has {yy.size}")
    return yy, yh


def _dof(n: int, p: int) -> int:
    if p < 1:
        raise ValueError(f"p must count the parameters (at least 1), got {p}")
    if n <= p:
        raise ValueError(f"y: too few points, n = {n} for p = {p} parameters; needs n > p")
    return n - p


def _mean_energy(y: NDArray[np.float64]) -> float:
    mean = float(y.mean())
    if mean <= 0.0:
        raise ValueError(f"y: mean energy {mean:g} ≤ 0; CV(RMSE) and NMBE are relative to it")
    return mean


def _check_rank(design: NDArray[np.float64], names: list[str]) -> None:
    # columns scaled to unit size so that kWh next to °C·d does not fool the rank tolerance
    scaled = design / np.abs(design).max(axis=0)
    for k in range(2, scaled.shape[1] + 1):
        if np.linalg.matrix_rank(scaled[:, :k]) < k:
            others = ", ".join(["the intercept", *names[: k - 2]])
            raise ValueError(f"variables[{names[k - 2]!r}] is a linear combination of {others}: "
                             "the coefficients cannot be told apart")


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.68, 0.90), got {confidence!r}")
