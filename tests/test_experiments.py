"""Hypothesis-test statistics against SciPy and the values published for them (issue 4)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from voronka.analysis.experiments import (
    Arm,
    boschloo_test,
    expected_loss,
    fisher_test,
    probability_b_beats_a,
    sample_size_per_arm,
    significance,
    weeks_needed,
    wilson_interval,
    z_test,
)

A, B = Arm(30, 6), Arm(30, 12)


def test_published_values_for_6_of_30_against_12_of_30() -> None:
    assert z_test(A, B) == pytest.approx(0.091, abs=0.001)
    assert fisher_test(A, B) == pytest.approx(0.158, abs=0.001)
    assert probability_b_beats_a(A, B) == pytest.approx(0.95, abs=0.01)
    assert boschloo_test(A, B) == pytest.approx(stats.boschloo_exact([[6, 24], [12, 18]]).pvalue)
    assert significance(A, B).name == "boschloo"


def test_sample_size_for_20_to_30_percent() -> None:
    assert sample_size_per_arm(0.2, 0.3) == 294
    assert sample_size_per_arm(0.2, 0.2) is None
    assert weeks_needed(294, 49) == pytest.approx(12.0)


def test_wilson_interval_matches_its_formula() -> None:
    low, high = wilson_interval(Arm(10, 3))  # type: ignore[misc]
    assert (low, high) == pytest.approx((0.1078, 0.6032), abs=1e-4)
    assert wilson_interval(Arm(0, 0)) is None
    assert wilson_interval(Arm(5, 0))[0] == 0.0  # type: ignore[index]


def test_probability_agrees_with_numerical_integration() -> None:
    from voronka.analysis.experiments import _probability_numeric

    assert probability_b_beats_a(A, B) == pytest.approx(_probability_numeric(7, 25, 13, 19), abs=1e-6)


def test_expected_loss_is_smaller_for_the_better_arm() -> None:
    assert expected_loss(B, A) < expected_loss(A, B)
    assert expected_loss(A, B) == pytest.approx(0.2, abs=0.02)  # B is about 20 points better


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(0, 60), st.integers(1, 60), st.integers(0, 60))
def test_probabilities_are_symmetric(n_a: int, s_a: int, n_b: int, s_b: int) -> None:
    a, b = Arm(n_a, min(s_a, n_a)), Arm(n_b, min(s_b, n_b))
    both = probability_b_beats_a(a, b) + probability_b_beats_a(b, a)
    assert both == pytest.approx(1.0, abs=1e-6)


def test_probability_b_beats_a_on_large_arms_matches_integration() -> None:
    """A big account's step has hundreds of thousands of successes: the closed form (summed as an
    array) agrees with the normal approximation, which is exact enough at this size."""
    a, b = Arm(400_000, 120_400), Arm(390_000, 118_000)
    rate_a, rate_b = a.successes / a.trials, b.successes / b.trials
    spread = math.sqrt(rate_a * (1 - rate_a) / a.trials + rate_b * (1 - rate_b) / b.trials)
    normal = 0.5 * (1 + math.erf((rate_b - rate_a) / spread / math.sqrt(2)))
    assert probability_b_beats_a(a, b) == pytest.approx(normal, abs=1e-4)
    assert 0.9 < normal < 0.97


@pytest.mark.parametrize(("a", "b"), [(Arm(50, 0), Arm(50, 0)), (Arm(50, 50), Arm(40, 40)), (Arm(3, 0), Arm(7, 0))])
def test_arms_that_cannot_differ_have_p_of_one(a: Arm, b: Arm) -> None:
    result = significance(a, b)
    assert result.name == "boschloo"
    assert result.p_value == 1.0
    assert z_test(a, b) == 1.0


def test_a_control_rate_of_zero_still_has_a_sample_size() -> None:
    needed = sample_size_per_arm(0.0, 0.05)
    z_alpha, z_power = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    by_formula = (z_alpha * math.sqrt(2 * 0.025 * 0.975) + z_power * math.sqrt(0.05 * 0.95)) ** 2 / 0.05**2
    assert needed == math.ceil(by_formula)
    assert needed is not None
    assert needed > 0
