"""Run by test_backends.py in a subprocess with KERAS_BACKEND set: small-config parity on that backend.

Prints one JSON line {case: {dtype: max_abs_diff}} and the backend actually in use.
"""
import json
import sys

import keras

from converter import torch_to_keras

from conftest import PARITY_CASES, keras_forward, max_abs_diff, seeded_series, seeded_torch_model, torch_forward

SMALL_CASES = [name for name in PARITY_CASES if name != "etth1"]

if __name__ == "__main__":
    dtypes = sys.argv[1:] or ["float32"]
    report = {"backend": keras.backend.backend(), "diffs": {}}
    for name in SMALL_CASES:
        config = PARITY_CASES[name]
        torch_model = seeded_torch_model(config)
        x = seeded_series(config, 3)
        report["diffs"][name] = {
            dtype: max_abs_diff(keras_forward(torch_to_keras(torch_model, dtype=dtype), x),
                                torch_forward(torch_model, x, dtype))
            for dtype in dtypes}
    print(json.dumps(report))
