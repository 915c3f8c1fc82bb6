"""Mean-reverting (Ornstein-Uhlenbeck) noise, exact for any step length.

Using the exact discretisation keeps the statistics the same whether the site is stepped
one second at a time or fast-forwarded in coarse steps.
"""

from __future__ import annotations

import math
import random


def ou_step(x: float, mean: float, std: float, tau_s: float, dt: float, rng: random.Random) -> float:
    """Advance an OU process with stationary ``std`` and time constant ``tau_s`` by ``dt``.

    Always draws exactly one normal variate, so the random stream stays aligned
    whatever ``dt`` is (including 0).
    """
    z = rng.gauss(0.0, 1.0)
    a = math.exp(-dt / tau_s)
    return mean + (x - mean) * a + std * math.sqrt(1.0 - a * a) * z


def relax(x: float, target: float, tau_s: float, dt: float) -> float:
    """First-order lag towards ``target``."""
    return target + (x - target) * math.exp(-dt / tau_s)


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x
