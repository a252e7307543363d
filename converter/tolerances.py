"""The parity tolerance policy: the one place where "agrees" is defined.

Never loosen these to make a test pass; find the cause. float64 is the math check: two correct
implementations of the same function agree to ~1e-15 in double precision (measured: <= 3.6e-15 on every
configuration tested), so anything beyond 1e-12 means the math differs. float32 is the working-precision
check: measured differences on the ETTh1 configuration are ~2e-6 at the output (rounding noise of
11.3M-parameter float32 arithmetic in different operation orders), so 1e-5 leaves 5x headroom while a real
porting bug (wrong epsilon, GELU variant, head order, padding) moves outputs by >= 1e-4.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_abs: float

    def passes(self, max_abs_diff):
        return bool(max_abs_diff <= self.max_abs)


TOLERANCES = {
    "float32": Tolerance(max_abs=1e-5),
    "float64": Tolerance(max_abs=1e-12),
}


def tolerance_for(dtype):
    return TOLERANCES[str(dtype).replace("torch.", "")]


def diff_stats(got, expected):
    """(max abs diff, max rel diff); rel is relative to the largest reference magnitude, so it stays defined
    where the reference crosses zero."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"shape {got.shape} != reference shape {expected.shape}")
    max_abs = float(np.max(np.abs(got - expected))) if got.size else 0.0
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return max_abs, (max_abs / scale if scale > 0 else max_abs)
