"""The parity tolerance policy: the one place where "agrees" is defined.

A comparison passes when  max|keras - torch| <= max_abs + max_rel * max|torch|.

float64 (abs 1e-12, no relative term) is the math check: two correct implementations of the same function
agree to ~1e-15 in double precision. Measured: <= 3.8e-15 at the outputs of every configuration tested and
<= 1.2e-14 at every one of the 324 modules of the ETTh1 configuration on real ETTh1 windows (largest module
output 8.9). Anything beyond 1e-12 means the math differs, whatever float32 says.

float32 (abs 1e-5, rel 1e-5) is the working-precision check. Rounding noise grows with the magnitude of
what is compared, so besides the absolute bound it scales with the largest reference value. Measured on the
ETTh1 configuration and real windows: worst module abs 4.3e-6 (where outputs reach 7.6), worst rel 1.1e-6,
model outputs <= 2.3e-6 abs; so the bounds leave ~2x (abs) and ~9x (rel) headroom. The planted porting bugs
of the test suite (LayerNorm epsilon, GELU variant, router order, padding side, head split, untransposed
kernel, zero merge padding, three in the decoder) move the module they touch by rel >= 2.1e-4 as measured;
test_planted_bugs.py requires rel >= 1e-4 of each.

The model's own output is held to the absolute bound alone (1e-5 in float32, whatever its magnitude): it is
what a user of the forecast gets, measured at <= 2.3e-6, and a relative term would let a forecast drift by
several 1e-5 at outputs of magnitude ~3. Tolerance.passes_output is that rule, for the layer-by-layer engine
and the regression gate alike.

Never loosen these to make a test pass; find the cause.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    max_rel: float = 0.0

    def passes(self, max_abs_diff, scale=0.0):
        """max abs diff <= max_abs + max_rel * scale, scale being the largest |reference| value."""
        return bool(max_abs_diff <= self.max_abs + self.max_rel * scale)

    def passes_output(self, max_abs_diff, scale, model_output):
        """One output in a module-by-module comparison: a module's output passes within max_abs + max_rel *
        scale; the model's own output (model_output=True) within max_abs alone."""
        return self.passes(max_abs_diff, 0.0 if model_output else scale)


TOLERANCES = {
    "float32": Tolerance(max_abs=1e-5, max_rel=1e-5),
    "float64": Tolerance(max_abs=1e-12, max_rel=0.0),
}

# Data-parallel training (crossformer train --distribute data) against the same run on one device, float64: per-step
# losses, per-epoch losses, test metrics and every final weight within 1e-12 absolute (the float64 bound above).
# Why it holds: the two runs compute the same function; only the order of the batch sums differs (each device sums
# its block, then the blocks are summed), which moves a loss or a gradient by ~1e-16 relative. Adam turns that into
# a weight difference of ~lr * 1e-16 relative per step for every weight with a real gradient. The exception is a
# weight whose exact gradient is 0 (the attention key-projection biases: softmax ignores a shift shared by all
# keys): its computed gradient g is pure rounding noise, and Adam's step lr * g / (sqrt(v) + eps) ~ lr * g / eps
# amplifies it; with g ~ 1e-18 (rounding of O(1e-2) sums), lr 1e-3 and eps 1e-8 that is ~1e-13 per step. Measured
# (parity_tests/test_distribute.py, 4 steps, dropout 0.2): losses 1.3e-15, weights 4.2e-13 (a key-projection bias);
# the research prototype (6 steps, dropout 0 and 0.2): losses 6.7e-16, weights 4.2e-13.
DATA_PARALLEL_TOLERANCE = TOLERANCES["float64"]

# Quantized artifacts (crossformer export --quantize) cannot meet the float32 bound by design. They are held to
# a bound on the relative RMS error of their output against reference_torch (RMS of the difference over RMS of
# the reference, seeded inputs at batch 1 and 3): a sanity check that catches a broken quantization (a wrong
# scale, a mangled layer: onnxruntime's dynamic int8 quantization gave 17-43%, so it is not offered), not a
# precision claim; their real measure is the task metric (`crossformer evaluate` on the artifact). Measured:
# LiteRT int8 weights 4.4e-3 to 1.2e-2 (the trained ETTh1 fixture the largest), float16 weights (LiteRT, ONNX,
# OpenVINO) 5.7e-4 to 1.5e-3; the bounds leave ~4x and ~7x headroom over the worst.
QUANTIZED_TOLERANCES = {
    "dynamic": 5e-2,
    "float16": 1e-2,
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
