"""The standard normal quantile (``scipy.stats.norm.ppf``) without scipy: the
reference's z-score simulator turns uniform draws into noise with it.

Newton's method on the normal CDF, written with ``math.erf`` near the median and
``math.erfc`` in the tails so the residual keeps its relative precision there
(the quantile is then correct to a few units in the last place, as scipy's)."""

import math

import numpy as np

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
# Beyond this distance from the median, work in the tail (exp(-2), scipy's split).
_TAIL = 0.5 - math.exp(-2.0)
_MAX_STEPS = 60


def _pdf(x):
    return math.exp(-0.5 * x * x) / _SQRT_2PI


def _central(d):
    """x with Phi(x) - 1/2 = d, for |d| <= _TAIL."""
    x = d * _SQRT_2PI
    for _ in range(_MAX_STEPS):
        step = (0.5 * math.erf(x / _SQRT2) - d) / _pdf(x)
        x -= step
        if abs(step) <= 1e-17 * abs(x):
            break
    return x


def _lower_tail(p):
    """x < 0 with Phi(x) = p, for 0 < p < exp(-2); Newton on log Phi, which is
    close to linear there."""
    x = -math.sqrt(-2.0 * math.log(p))
    for _ in range(_MAX_STEPS):
        cdf = 0.5 * math.erfc(-x / _SQRT2)
        step = (math.log(cdf) - math.log(p)) * cdf / _pdf(x)
        x -= step
        if abs(step) <= 1e-17 * abs(x):
            break
    return x


def _quantile(y):
    if not 0.0 <= y <= 1.0:
        return math.nan
    if y == 0.0:
        return -math.inf
    if y == 1.0:
        return math.inf
    d = y - 0.5
    if abs(d) <= _TAIL:
        return _central(d)
    # 1 - y is exact for y >= 1/2, so the upper tail keeps its precision.
    return _lower_tail(y) if d < 0 else -_lower_tail(1.0 - y)


def norm_ppf(y):
    """The standard normal quantile of each value of ``y`` (an array of floats)."""
    y = np.asarray(y, dtype=np.float64)
    return np.vectorize(_quantile, otypes=[np.float64])(y)
