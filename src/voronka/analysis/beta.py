"""Beta posteriors in plain floating point: the diagnosis's two questions about conversion rates.

The diagnosis asks "how likely is this rate below that one" a dozen times per run. SciPy answers it,
but loading its special functions (and NumPy under them) took longer than the diagnosis itself
on a small business; the two functions needed are short enough to compute here. They agree with
SciPy's ``betainc`` and with the closed-form sum over ``betaln`` to about 1e-9 (tests/test_beta.py).
"""

from __future__ import annotations

import math

NEGLIGIBLE = math.log(1e-20)
"""A term this much smaller than the largest no longer changes a sum of probabilities."""
MAX_FRACTION_TERMS = 100_000


STIRLING_FROM = 20.0
HALF_LOG_TAU = 0.5 * math.log(2 * math.pi)


def log_beta(a: float, b: float) -> float:
    """ln B(a, b). From twenty on, by Stirling's series with the large logarithms cancelled by hand:
    lgamma(a) + lgamma(b) − lgamma(a + b) of a large account's counts (about 1e7 each) would lose
    nine of the sixteen digits to the subtraction."""
    small, large = min(a, b), max(a, b)
    if large < STIRLING_FROM:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    total = small + large
    # lnΓ(large) − lnΓ(total), both large: the −x terms of the series cancel to +small.
    tail = -(large - 0.5) * math.log1p(small / large) - small * math.log(total) + small
    tail += _series(large) - _series(total)
    if small < STIRLING_FROM:
        return math.lgamma(small) + tail
    # lnΓ(small) by the series; its (small − 0.5)·ln(small) joins −small·ln(total) as a ratio.
    return (
        (small - 0.5) * -math.log1p(large / small)
        - 0.5 * math.log(total)
        + HALF_LOG_TAU
        + _series(small)
        - (large - 0.5) * math.log1p(small / large)
        + _series(large)
        - _series(total)
    )


def _series(x: float) -> float:
    """X"""
    inverse = 1.0 / x
    square = inverse * inverse
    return inverse * (1 / 12 - square * (1 / 360 - square * (1 / 1260 - square / 1680)))


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b): P(rate < x) for a rate ~ Beta(a, b). The continued fraction converges fast on
    the side of the mean ``x`` lies on, so the other side is taken by symmetry."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, front * _continued_fraction(x, a, b) / a)
    return max(0.0, 1.0 - front * _continued_fraction(1.0 - x, b, a) / b)


def _continued_fraction(x: float, a: float, b: float) -> float:
    """The incomplete beta's continued fraction by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, MAX_FRACTION_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return value


def b_beats_a(alpha_a: float, beta_a: float, alpha_b: int, beta_b: float) -> float:
    """P(rate B > rate A) for A ~ Beta(alpha_a, beta_a), B ~ Beta(alpha_b, beta_b), integer alpha_b:
    the closed form Σ_{i<alpha_b} B(alpha_a + i, beta_a + beta_b) / ((beta_b + i) B(1 + i, beta_b)
    B(alpha_a, beta_a)).

    A large account's step has hundreds of thousands of terms, but they rise and fall once, and
    only those within twenty orders of magnitude of the largest count: the sum starts at the largest
    and walks both ways from it, each term from its neighbour."""
    if alpha_b <= 0:
        return 0.0
    total = alpha_a + beta_a + beta_b

    def log_term(i: int) -> float:
        return (
            log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - log_beta(1 + i, beta_b)
            - log_beta(alpha_a, beta_a)
        )

    def log_ratio(i: int) -> float:
        """ln(term i+1 / term i)."""
        return math.log((alpha_a + i) * (beta_b + i) / ((total + i) * (1 + i)))

    # Terms grow while the ratio is above one: up to i = (alpha_a·beta_b − total) / (beta_a + 1).
    peak = min(max(math.ceil((alpha_a * beta_b - total) / (beta_a + 1.0)), 0), alpha_b - 1)
    top = log_term(peak)
    logs = [0.0]
    here = 0.0
    for i in range(peak, alpha_b - 1):
        here += log_ratio(i)
        if here < NEGLIGIBLE:
            break
        logs.append(here)
    here = 0.0
    for i in range(peak - 1, -1, -1):
        here -= log_ratio(i)
        if here < NEGLIGIBLE:
            break
        logs.append(here)
    return min(1.0, max(0.0, math.exp(top) * math.fsum(math.exp(x) for x in logs)))
