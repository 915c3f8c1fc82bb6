"""The normal cloud model for KPI grading, checked against numbers worked by hand.

exp() values used below (to 8 significant digits, from a calculator):
  e^-0.5 = 0.60653066   e^-2 = 0.13533528    e^-4.5 = 0.011108997   e^-8 = 0.00033546263
  e^-12.5 = 3.7266532e-6   e^-24.5 = 2.2897348e-11   e^-60.5 = 5.3110922e-27
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lingtan.core.cloud import (
    Cloud,
    IndicatorInput,
    backward,
    certainty,
    forward,
    grade,
    grade_cloud,
)

GRADES = ("I", "II", "III", "IV")


def test_backward_cloud_of_one_to_four() -> None:
    # Ex = (1+2+3+4)/4 = 2.5
    # |x - Ex| = 1.5, 0.5, 0.5, 1.5 -> mean 1 -> En = sqrt(pi/2) * 1 = 1.2533141
    # S² = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3 = 1.6666667
    # He = sqrt(5/3 - pi/2) = sqrt(1.6666667 - 1.5707963) = sqrt(0.0958704) = 0.3096294
    bc = backward([1, 2, 3, 4])
    assert bc.cloud.ex == pytest.approx(2.5, abs=1e-12)
    assert bc.cloud.en == pytest.approx(1.2533141, abs=1e-7)
    assert bc.cloud.he == pytest.approx(0.3096294, abs=1e-7)
    assert bc.n == 4
    assert not bc.he_imaginary
    assert bc.note is None


def test_backward_flags_an_imaginary_hyper_entropy() -> None:
    # x = 0 (six times), 10 (twice): Ex = 20/8 = 2.5
    # |x - Ex| = 2.5 (six times), 7.5 (twice) -> mean (15 + 15)/8 = 3.75 -> En = 1.2533141 * 3.75 = 4.6999280
    # En² = (pi/2) * 3.75² = 1.5707963 * 14.0625 = 22.089323
    # S² = (6 * 6.25 + 2 * 56.25) / 7 = 150/7 = 21.428571 < En², so He would be imaginary
    bc = backward([0, 0, 0, 0, 0, 0, 10, 10])
    assert bc.cloud.ex == pytest.approx(2.5, abs=1e-12)
    assert bc.cloud.en == pytest.approx(4.6999280, abs=1e-6)
    assert bc.he_imaginary
    assert bc.cloud.he == 0.0
    assert bc.note is not None and "imaginary" in bc.note


def test_backward_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        backward([3.0])


def test_grade_cloud_of_an_interval_and_of_an_open_end() -> None:
    # [0.2, 0.5]: Ex = 0.7/2 = 0.35, En = 0.3/6 = 0.05
    c = grade_cloud(0.2, 0.5)
    assert c.ex == pytest.approx(0.35, abs=1e-12)
    assert c.en == pytest.approx(0.05, abs=1e-12)
    assert c.he == 0.02
    # (None, 0.2] closed with width 0.3 -> [-0.1, 0.2]: Ex 0.05, En 0.05
    o = grade_cloud(None, 0.2, open_width=0.3)
    assert (o.ex, o.en) == pytest.approx((0.05, 0.05), abs=1e-12)
    with pytest.raises(ValueError, match="open_width"):
        grade_cloud(None, 0.2)
    with pytest.raises(ValueError, match="lo < hi"):
        grade_cloud(0.5, 0.2)


def test_deterministic_certainty_and_half_cloud() -> None:
    c = Cloud(0.35, 0.05, 0.02)
    # x = 0.40 is one En from Ex: exp(-1/2) = 0.60653066
    assert certainty(0.40, c) == pytest.approx(0.60653066, abs=1e-8)
    # two En: exp(-2) = 0.13533528
    assert certainty(0.25, c) == pytest.approx(0.13533528, abs=1e-8)
    # a half cloud open below is certain at and below its Ex, normal above it
    assert certainty(-5.0, c, open_side="low") == 1.0
    assert certainty(0.40, c, open_side="low") == pytest.approx(0.60653066, abs=1e-8)


# Three indicators, four grades (I best ... IV worst), deterministic (He taken as 0).
#
# A, carbon intensity (lower is better), weight 0.5: I (-, 0.2], II [0.2, 0.5], III [0.5, 0.8], IV [0.8, -)
#   months: 0.36 0.44 0.38 0.42 0.40 0.40 0.37 0.43 0.39 0.41 0.35 0.45 -> pairs of 0.80, x = 4.8/12 = 0.40
#   clouds (En = 0.3/6 = 0.05 for all; the open edges take their neighbour's width 0.3):
#     I [-0.1, 0.2] Ex 0.05, II Ex 0.35, III Ex 0.65, IV [0.8, 1.1] Ex 0.95
#   z = |x - Ex| / En: I 7, II 1, III 5, IV 11 -> mu = e^-24.5, e^-0.5, e^-12.5, e^-60.5
#   (x is on the closed side of both open edges' Ex, so both use the normal formula)
#   backward cloud: |x - Ex| = .04 .04 .02 .02 0 0 .03 .03 .01 .01 .05 .05, sum 0.30, mean 0.025
#     En = 1.2533141 * 0.025 = 0.031332853
#     S² = (2*.0016 + 2*.0004 + 2*.0009 + 2*.0001 + 2*.0025) / 11 = 0.011/11 = 0.001
#     He = sqrt(0.001 - 1.5707963 * 0.000625) = sqrt(0.001 - 0.00098174770)
#        = sqrt(0.0000182523) = 0.0042722706
#
# B, renewable share % (higher is better), weight 0.3: I [75, -), II [45, 75], III [15, 45], IV (-, 15]
#   months: 93 97 94 96 95 95 92 98 95 95 94 96 -> pairs of 190, x = 1140/12 = 95
#   clouds (En = 30/6 = 5): I [75, 105] Ex 90, II Ex 60, III Ex 30, IV [-15, 15] Ex 0
#   I is open above and 95 >= 90: half cloud, mu = 1
#   z: II 35/5 = 7, III 65/5 = 13, IV 95/5 = 19 -> mu = 1, e^-24.5, e^-84.5, e^-180.5
#
# C, a lower-is-better ratio, weight 0.2, closed grades: I [0, 6], II [6, 12], III [12, 18], IV [18, 24]
#   months: 12 14 11 15 13 13 12 14 10 16 13 13 -> pairs of 26, x = 156/12 = 13
#   clouds (En = 6/6 = 1): Ex 3, 9, 15, 21; z = 10, 4, 2, 8 -> mu = e^-50, e^-8, e^-2, e^-32
#
# U_I   = 0.5 e^-24.5 + 0.3 * 1       + 0.2 e^-50  = 0.30000000 (+ 1.1e-11)
# U_II  = 0.5 e^-0.5  + 0.3 e^-24.5   + 0.2 e^-8   = 0.30326533 + 0.0000000000069 + 0.000067092526
#                                                  = 0.30333242
# U_III = 0.5 e^-12.5 + 0.3 e^-84.5   + 0.2 e^-2   = 0.0000018633266 + 0.027067057 = 0.027068920
# U_IV  = 0.5 e^-60.5 + 0.3 e^-180.5  + 0.2 e^-32  = 2.5e-27 + 2.5e-15, ~ 0
# grade = II (0.30333242 > 0.30000000), narrowly: B's certain I at weight 0.3 almost outvotes A.
# sum U = 0.30000000 + 0.30333242 + 0.027068920 = 0.63040134
# shares = 0.30000000/0.63040134 = 0.47588731, 0.30333242/0.63040134 = 0.48117350,
#          0.027068920/0.63040134 = 0.042939185, ~ 0
WORKED = [
    IndicatorInput(
        "carbon_intensity",
        [0.36, 0.44, 0.38, 0.42, 0.40, 0.40, 0.37, 0.43, 0.39, 0.41, 0.35, 0.45],
        0.5,
        [(None, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, None)],
    ),
    IndicatorInput(
        "renewable_share",
        [93, 97, 94, 96, 95, 95, 92, 98, 95, 95, 94, 96],
        0.3,
        [(75, None), (45, 75), (15, 45), (None, 15)],
    ),
    IndicatorInput(
        "ratio",
        [12, 14, 11, 15, 13, 13, 12, 14, 10, 16, 13, 13],
        0.2,
        [(0, 6), (6, 12), (12, 18), (18, 24)],
    ),
]


def test_worked_example_three_indicators_four_grades() -> None:
    g = grade(WORKED, GRADES)
    assert g.grade == "II"
    assert g.drops is None
    assert g.notes == ()
    assert g.u == pytest.approx((0.30000000, 0.30333242, 0.027068920, 0.0), abs=1e-8)
    assert g.shares == pytest.approx((0.47588731, 0.48117350, 0.042939185, 0.0), abs=1e-8)

    a, b, c = g.indicators
    assert a.value == pytest.approx(0.40, abs=1e-12)
    assert [cl.ex for cl in a.clouds] == pytest.approx([0.05, 0.35, 0.65, 0.95], abs=1e-12)
    assert [cl.en for cl in a.clouds] == pytest.approx([0.05] * 4, abs=1e-12)
    assert a.mu == pytest.approx((2.2897348e-11, 0.60653066, 3.7266532e-6, 5.3110922e-27), rel=1e-6)
    assert a.backward.cloud.en == pytest.approx(0.031332853, abs=1e-9)
    assert a.backward.cloud.he == pytest.approx(0.0042722706, abs=1e-9)

    assert b.value == pytest.approx(95.0, abs=1e-12)
    assert [cl.ex for cl in b.clouds] == pytest.approx([90, 60, 30, 0], abs=1e-12)
    assert b.mu[0] == 1.0
    assert b.mu[1] == pytest.approx(2.2897348e-11, rel=1e-6)

    assert c.value == pytest.approx(13.0, abs=1e-12)
    assert c.mu[1:3] == pytest.approx((0.00033546263, 0.13533528), rel=1e-7)
    assert c.weight == 0.2


def test_stochastic_certainty_converges_to_the_deterministic_value() -> None:
    # Grade cloud [0.2, 0.5] with He = 0.002 (4 % of En); x = 0.40 is one En out: e^-0.5 = 0.60653066
    c = grade_cloud(0.2, 0.5, he=0.002)
    mu = certainty(0.40, c, rng=np.random.default_rng(7), drops=2000)
    assert mu == pytest.approx(0.60653066, abs=0.02)
    assert mu != pytest.approx(0.60653066, abs=1e-12)  # it really drew En'
    # the same seed gives the same answer
    assert certainty(0.40, c, rng=np.random.default_rng(7), drops=2000) == mu

    g = grade(WORKED, GRADES, he=0.002, rng=np.random.default_rng(11), drops=2000)
    assert g.drops == 2000
    assert g.u == pytest.approx((0.30000000, 0.30333242, 0.027068920, 0.0), abs=0.02)


def test_forward_drops_have_certainty_in_zero_one_and_recover_the_cloud() -> None:
    cloud = Cloud(10.0, 2.0, 0.2)
    x, mu = forward(cloud, 20000, np.random.default_rng(3))
    assert x.shape == mu.shape == (20000,)
    assert np.all(mu > 0.0) and np.all(mu <= 1.0)
    # the backward generator over many forward drops gives back Ex and En
    bc = backward(x.tolist())
    assert bc.cloud.ex == pytest.approx(10.0, abs=0.05)
    assert bc.cloud.en == pytest.approx(2.0, abs=0.05)


def test_forward_takes_a_generator_not_the_global_state() -> None:
    with pytest.raises(TypeError, match="rng"):
        forward(Cloud(0, 1, 0.1), 10, np.random)  # type: ignore[arg-type]


def test_tie_goes_to_the_first_listed_grade_with_a_note() -> None:
    # x = (5 + 7)/2 = 6 sits on the shared edge: Ex 3 and 9, En 1, both z = 3 -> e^-4.5 = 0.011108997
    g = grade([IndicatorInput("k", [5, 7], 1.0, [(0, 6), (6, 12)])], ["A", "B"])
    assert g.u == pytest.approx((0.011108997, 0.011108997), abs=1e-9)
    assert g.shares == pytest.approx((0.5, 0.5), abs=1e-12)
    assert g.grade == "A"
    assert any("tie" in n for n in g.notes)


def test_values_far_outside_closed_grades_give_no_grade() -> None:
    g = grade([IndicatorInput("k", [999, 1001], 1.0, [(0, 6), (6, 12)])], ["A", "B"])
    assert g.grade is None
    assert g.shares == (0.0, 0.0)
    assert any("no grade interval" in n for n in g.notes)


def test_imaginary_hyper_entropy_reaches_the_grading_notes() -> None:
    g = grade([IndicatorInput("k", [0, 0, 0, 0, 0, 0, 10, 10], 1.0, [(0, 6), (6, 12)])], ["A", "B"])
    assert g.indicators[0].backward.he_imaginary
    assert any(n.startswith("k:") and "imaginary" in n for n in g.notes)


def test_weights_must_sum_to_one() -> None:
    bad = [
        IndicatorInput("intensity", [1, 2], 0.5, [(0, 6), (6, 12)]),
        IndicatorInput("share", [1, 2], 0.4, [(0, 6), (6, 12)]),
    ]
    with pytest.raises(ValueError, match=r"weights must sum to 1.*intensity=0\.5, share=0\.4"):
        grade(bad, ["A", "B"])


def test_bad_intervals_and_values_name_the_indicator() -> None:
    ok = IndicatorInput("fine", [1, 2], 0.5, [(0, 6), (6, 12), (12, 18)])
    missing = IndicatorInput("intensity", [1, 2], 0.5, [(0, 6), (6, 12)])
    with pytest.raises(ValueError, match=r"indicator 'intensity'.*one interval per grade"):
        grade([ok, missing], GRADES[:3])
    reversed_ = IndicatorInput("intensity", [1, 2], 0.5, [(0, 6), (12, 6), (12, 18)])
    with pytest.raises(ValueError, match=r"indicator 'intensity', grade 'II'.*lo < hi"):
        grade([ok, reversed_], GRADES[:3])
    one_value = IndicatorInput("intensity", [1], 0.5, [(0, 6), (6, 12), (12, 18)])
    with pytest.raises(ValueError, match=r"indicator 'intensity'.*at least 2 values"):
        grade([ok, one_value], GRADES[:3])
    inward = IndicatorInput("intensity", [1, 2], 0.5, [(None, 12), (6, 12), (12, 18)])
    with pytest.raises(ValueError, match=r"indicator 'intensity', grade 'I'.*point away"):
        grade([ok, inward], GRADES[:3])
    middle_open = IndicatorInput("intensity", [1, 2], 0.5, [(0, 6), (6, None), (12, 18)])
    with pytest.raises(ValueError, match=r"indicator 'intensity', grade 'II'.*first and last"):
        grade([ok, middle_open], GRADES[:3])
    shuffled = IndicatorInput("intensity", [1, 2], 0.5, [(0, 6), (12, 18), (6, 12)])
    with pytest.raises(ValueError, match=r"indicator 'intensity'.*in order"):
        grade([ok, shuffled], GRADES[:3])


def test_cloud_checks_its_fields_and_a_zero_entropy_is_a_spike() -> None:
    with pytest.raises(ValueError, match="he"):
        Cloud(0.0, 1.0, -0.1)
    with pytest.raises(ValueError, match="ex"):
        Cloud(math.nan, 1.0, 0.1)
    # backward([5, 5]) has En = 0: certainty 1 at Ex, 0 anywhere else, no division by zero
    spike = backward([5, 5]).cloud
    assert (spike.en, spike.he) == (0.0, 0.0)
    assert certainty(5.0, spike) == 1.0
    assert certainty(5.1, spike) == 0.0
