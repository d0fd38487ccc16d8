"""The statistics of hypothesis tests on a funnel step: two arms, conversions, and what they say.

Pure functions over counts (no database): intervals, p-values, Bayesian comparison, sample size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voronka.analysis.beta import b_beats_a, regularized_beta

ALPHA = 0.05
POWER = 0.8
EXACT_BELOW = 200
"""Arms smaller than this get an exact test (Boschloo); larger ones the z-test."""

# SciPy is imported where it is used: it takes most of a second to load, and most commands of the
# CLI never need it.


@dataclass(frozen=True)
class Arm:
    """One arm of a test at a step: how many entered the step, and how many passed it."""

    trials: int
    successes: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def failures(self) -> int:
        return self.trials - self.successes


def wilson_interval(arm: Arm, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of a conversion (sound for small samples and rates near 0 or 1)."""
    from scipy import stats

    if not arm.trials:
        return None
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    n, p = arm.trials, arm.successes / arm.trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def z_test(a: Arm, b: Arm) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test."""
    from scipy import stats

    if not a.trials or not b.trials:
        return None
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    if spread == 0:
        return 1.0
    z = (b.successes / b.trials - a.successes / a.trials) / spread
    return float(2 * stats.norm.sf(abs(z)))


def _table(a: Arm, b: Arm) -> list[list[int]]:
    return [[a.successes, a.failures], [b.successes, b.failures]]


def fisher_test(a: Arm, b: Arm) -> float:
    """Two-sided p-value of Fisher's exact test."""
    from scipy import stats

    return float(stats.fisher_exact(_table(a, b)).pvalue)


def boschloo_test(a: Arm, b: Arm) -> float:
    """Two-sided p-value of Boschloo's exact test (uniformly more powerful than Fisher's)."""
    from scipy import stats

    if a.successes + b.successes in (0, a.trials + b.trials):
        return 1.0  # nobody (or everybody) converted in either arm: the data cannot tell them apart
    return float(stats.boschloo_exact(_table(a, b), alternative="two-sided").pvalue)


@dataclass(frozen=True)
class TestResult:
    name: str
    p_value: float | None


def significance(a: Arm, b: Arm) -> TestResult:
    """An exact test while arms are small, the z-test beyond."""
    if not a.trials or not b.trials:
        return TestResult("none", None)
    if min(a.trials, b.trials) < EXACT_BELOW:
        return TestResult("boschloo", boschloo_test(a, b))
    return TestResult("z", z_test(a, b))


def beta_cdf(x: float, alpha: float, beta: float) -> float:
    """P(rate < x) under a Beta(alpha, beta) posterior (computed here, not by SciPy: loading it
    took longer than a small business's diagnosis)."""
    return regularized_beta(x, alpha, beta)


def probability_b_beats_a(a: Arm, b: Arm, prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """P(rate of B > rate of A) under Beta posteriors (uniform priors by default), in closed form
    (``beta.b_beats_a``) while B's posterior has a whole number of successes, else by integration."""
    alpha_a, beta_a = prior[0] + a.successes, prior[1] + a.failures
    alpha_b, beta_b = prior[0] + b.successes, prior[1] + b.failures
    if not float(alpha_b).is_integer():
        return _probability_numeric(alpha_a, beta_a, alpha_b, beta_b)
    return b_beats_a(alpha_a, beta_a, int(alpha_b), beta_b)


def _probability_numeric(alpha_a: float, beta_a: float, alpha_b: float, beta_b: float) -> float:
    from scipy import integrate, stats

    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, alpha_b, beta_b) * stats.beta.cdf(x, alpha_a, beta_a), 0, 1)
    return float(value)


def expected_loss(choose: Arm, other: Arm, prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """E[max(rate of other − rate of chosen, 0)]: the conversion given up, on average, by choosing."""
    from scipy import integrate, stats

    ac, bc = prior[0] + choose.successes, prior[1] + choose.failures
    ao, bo = prior[0] + other.successes, prior[1] + other.failures
    mean_other = ao / (ao + bo)

    def integrand(y: float) -> float:
        # E[X - y; X > y] for X ~ Beta(ao, bo), weighted by the chosen arm's density at y.
        above = mean_other * stats.beta.sf(y, ao + 1, bo) - y * stats.beta.sf(y, ao, bo)
        return float(stats.beta.pdf(y, ac, bc) * above)

    value, _ = integrate.quad(integrand, 0, 1, limit=200)
    return max(0.0, float(value))


def sample_size_per_arm(base: float, target: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Deals each arm needs to tell ``base`` from ``target`` (two-sided test of two proportions)."""
    from scipy import stats

    if not 0 <= base <= 1 or not 0 <= target <= 1 or base == target:
        return None
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_power = stats.norm.ppf(power)
    mean = (base + target) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        base * (1 - base) + target * (1 - target)
    )
    needed: int = math.ceil(numerator**2 / (base - target) ** 2)
    return needed


def weeks_needed(per_arm: int | None, weekly_volume: float, arms: int = 2) -> float | None:
    """Weeks until every arm has ``per_arm`` deals at ``weekly_volume`` deals a week in all."""
    if per_arm is None or weekly_volume <= 0:
        return None
    return per_arm * arms / weekly_volume
