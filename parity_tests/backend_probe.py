"""Run by test_backends.py in a subprocess with KERAS_BACKEND set: small-config parity on that backend.

Prints one JSON line: the backend actually in use, {case: {dtype: output max abs diff}}, and the layer-wise
harness's verdict on config B (float32, both modes).
"""
import json
import sys

import keras

from converter import torch_to_keras
from converter.parity import layerwise_parity

from conftest import PARITY_CASES, keras_forward, max_abs_diff, seeded_series, seeded_torch_model, torch_forward

SMALL_CASES = [name for name in PARITY_CASES if name != "etth1"]

if __name__ == "__main__":
    layerwise_wanted = "--layerwise" in sys.argv
    dtypes = [arg for arg in sys.argv[1:] if arg != "--layerwise"] or ["float32"]
    report = {"backend": keras.backend.backend(), "diffs": {}}
    for name in SMALL_CASES:
        config = PARITY_CASES[name]
        torch_model = seeded_torch_model(config)
        x = seeded_series(config, 3)
        report["diffs"][name] = {
            dtype: max_abs_diff(keras_forward(torch_to_keras(torch_model, dtype=dtype), x),
                                torch_forward(torch_model, x, dtype))
            for dtype in dtypes}
    if layerwise_wanted:
        torch_model = seeded_torch_model(PARITY_CASES["config_b"])
        layerwise = layerwise_parity(torch_model, torch_to_keras(torch_model),
                                     seeded_series(PARITY_CASES["config_b"], 4), "float32", batch=2)
        report["layerwise"] = {"passed": layerwise.passed, "verdict": layerwise.verdict()}
    print(json.dumps(report))
