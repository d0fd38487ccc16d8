"""voronka.analysis.beta against SciPy: the regularized incomplete beta and the closed-form
P(B beats A), computed without loading SciPy, agree with ``special.betainc`` and with the sum over
``special.betaln`` (the form the diagnosis used before) for small arms and a large account's."""

from __future__ import annotations

from decimal import Decimal, getcontext
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from voronka.analysis.beta import b_beats_a, regularized_beta

TOLERANCE = 1e-9


def scipy_b_beats_a(alpha_a: float, beta_a: float, alpha_b: int, beta_b: float) -> float:
    i = np.arange(alpha_b, dtype=float)
    terms = np.exp(
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return min(1.0, max(0.0, float(terms.sum())))


@settings(max_examples=300, deadline=None)
@given(st.floats(0.001, 0.999), st.floats(0.5, 5_000.0), st.floats(0.5, 5_000.0))
def test_regularized_beta_is_scipys(x: float, a: float, b: float) -> None:
    # Rates, not the last ulp before 1: there SciPy's own answer is the one off (at x = 1 − 2⁻⁵³,
    # a = b = ½ it gives 1 − 9.5e-9 where (2/π)·asin(√x) is 1 − 6.7e-9).
    assert regularized_beta(x, a, b) == pytest.approx(float(special.betainc(a, b, x)), abs=TOLERANCE)


@pytest.mark.parametrize(("x", "a", "b"), [("3/10", 7, 25), ("1/2", 1, 1), ("99/100", 40, 3), ("1/1000", 2, 300)])
def test_regularized_beta_is_the_binomial_tail(x: str, a: int, b: int) -> None:
    """By hand, exactly: for whole a and b, I_x(a, b) = P(at least a successes in a + b − 1 trials)."""
    rate = Fraction(x)
    trials = a + b - 1
    tail = sum(comb(trials, j) * rate**j * (1 - rate) ** (trials - j) for j in range(a, trials + 1))
    assert regularized_beta(float(rate), a, b) == pytest.approx(float(tail), abs=1e-14)


@pytest.mark.parametrize(
    ("x", "a", "b"),
    [(0.3, 120_401.0, 280_001.0), (0.301, 120_401.0, 280_001.0), (0.5, 1.0, 1.0), (0.02, 3.0, 900.0)],
)
def test_regularized_beta_on_large_and_lopsided_arms(x: float, a: float, b: float) -> None:
    assert regularized_beta(x, a, b) == pytest.approx(float(special.betainc(a, b, x)), abs=TOLERANCE)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400), st.integers(0, 400))
def test_b_beats_a_is_the_sum_over_every_term(s_a: int, f_a: int, s_b: int, f_b: int) -> None:
    args = (1.0 + s_a, 1.0 + f_a, 1 + s_b, 1.0 + f_b)
    assert b_beats_a(*args) == pytest.approx(scipy_b_beats_a(*args), abs=TOLERANCE)


@pytest.mark.parametrize(
    "arms",
    [
        (120_401.0, 279_601.0, 118_001, 272_001.0),  # a large account's step, B a little better
        (5_001.0, 95_001.0, 40_001, 60_001.0),  # B far better: the sum is all but 1
        (40_001.0, 60_001.0, 5_001, 95_001.0),  # B far worse: all but 0
        (1.5, 2.5, 300_000, 3.0),  # the largest term at the last one
    ],
)
def test_b_beats_a_on_large_arms(arms: tuple[float, float, int, float]) -> None:
    assert b_beats_a(*arms) == pytest.approx(scipy_b_beats_a(*arms), abs=TOLERANCE)


def exact_log_beta(a: int, b: int) -> Decimal:
    """ln B(a, b) = ln((a − 1)! (b − 1)! / (a + b − 1)!) for whole a, b, to forty digits."""
    getcontext().prec = 40
    return sum((Decimal(k).ln() for k in range(1, a)), Decimal(0)) - sum(
        (Decimal(k).ln() for k in range(b, a + b)), Decimal(0)
    )


WHOLE_PAIRS = [(1, 1), (5, 10), (12, 50), (20, 20), (2_000, 3_000), (20_000, 30_000), (1, 786_000), (3, 786_000)]


@pytest.mark.parametrize(("a", "b"), WHOLE_PAIRS)
def test_log_beta_to_a_trillionth(a: int, b: int) -> None:
    """Exact by hand for whole numbers: lgamma(a) + lgamma(b) − lgamma(a + b) is off by 1e-10 at
    the last pair (SciPy's ``betaln`` by 3e-11); Stirling's series with the logarithms cancelled
    by hand stays within 1e-12."""
    from voronka.analysis.beta import log_beta

    assert abs(Decimal(log_beta(a, b)) - exact_log_beta(a, b)) < Decimal("1e-12")


@settings(max_examples=300, deadline=None)
@given(st.floats(0.5, 2e6), st.floats(0.5, 2e6))
def test_log_beta_is_scipys(a: float, b: float) -> None:
    from voronka.analysis.beta import log_beta

    # SciPy's own error reaches 1e-9 where one argument is small and the other large (B(1, b) = 1/b
    # exactly: at b = 786,000 it is off by 1.6e-10, voronka's form not at all).
    assert log_beta(a, b) == pytest.approx(float(special.betaln(a, b)), rel=1e-9)
