"""Run by test_backends.py in a subprocess with KERAS_BACKEND set: small-config parity on that backend.

Prints one JSON line: the backend actually in use, {case: {dtype: output max abs diff}}, the dtypes of the
Keras outputs, with float64 how exactly the backend's ops.matmul computes a float64 product and how closely
TorchAdam follows torch.optim.Adam, on the torch backend how closely torch.compile of an AttentionLayer
follows it run eagerly, and with
--layerwise the layer-wise harness's verdict on config B (float32, both modes).
"""
import json
import sys

import keras
import numpy as np

from converter import torch_to_keras
from converter.parity import layerwise_parity

from conftest import PARITY_CASES, keras_forward, max_abs_diff, seeded_series, seeded_torch_model, torch_forward

SMALL_CASES = [name for name in PARITY_CASES if name != "etth1"]


def float64_matmul():
    """The result dtype and max abs error of ops.matmul on float64 64x64 inputs, against NumPy's float64."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 64, 64))
    got = keras.ops.convert_to_numpy(keras.ops.matmul(keras.ops.convert_to_tensor(a, dtype="float64"),
                                                      keras.ops.convert_to_tensor(b, dtype="float64")))
    return {"dtype": str(got.dtype), "max_abs_error": float(np.max(np.abs(got - a @ b)))}


def torch_adam_float64():
    """Max abs weight difference after 3 steps of keras_model.TorchAdam and torch.optim.Adam, same float64
    gradients: the optimizer on this backend (no matmul in it, so float64 must hold on every backend)."""
    import torch

    from keras_model import TorchAdam

    rng = np.random.default_rng(0)
    initial = [rng.standard_normal(shape) for shape in [(3, 4), (5,)]]
    variables = [keras.Variable(value, dtype="float64") for value in initial]
    parameters = [torch.nn.Parameter(torch.from_numpy(value.copy())) for value in initial]
    keras_optimizer, torch_optimizer = TorchAdam(2.0 ** -7), torch.optim.Adam(parameters, lr=2.0 ** -7)
    for _ in range(3):
        gradients = [rng.standard_normal(value.shape) for value in initial]
        for parameter, gradient in zip(parameters, gradients):
            parameter.grad = torch.from_numpy(gradient)
        torch_optimizer.step()
        keras_optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient, dtype="float64"), variable)
                                         for gradient, variable in zip(gradients, variables)])
    return max(float(np.max(np.abs(keras.ops.convert_to_numpy(variable) - parameter.detach().numpy())))
               for variable, parameter in zip(variables, parameters))


def torch_compiled_attention():
    """Max abs difference of one AttentionLayer forward under torch.compile (inductor) and eagerly, float32.

    torch 2.13's inductor rewrote the attention chain into scaled_dot_product_attention with the wrong axes when
    the keys came as one (0, 2, 3, 1) permutation (pytorch/pytorch#195320): compiling failed, or on other shapes
    computes something else. keras_model.attention.FullAttention transposes the keys so that the rewrite is right.
    """
    import torch

    from keras_model.attention import AttentionLayer

    layer = AttentionLayer(d_model=16, n_heads=2, dropout=0.0)
    rng = np.random.default_rng(0)
    queries, keys = (torch.from_numpy(rng.standard_normal((6, length, 16)).astype("float32")) for length in (4, 5))
    with torch.no_grad():  # as predict() runs it: the inference graph is where inductor rewrote the attention
        eager = layer(queries, keys, keys)
        compiled = torch.compile(lambda q, k: layer(q, k, k))(queries, keys)
    return float(torch.max(torch.abs(compiled - eager)))


if __name__ == "__main__":
    layerwise_wanted = "--layerwise" in sys.argv
    dtypes = [arg for arg in sys.argv[1:] if arg != "--layerwise"] or ["float32"]
    report = {"backend": keras.backend.backend(), "diffs": {}, "output_dtypes": {}}
    for name in SMALL_CASES:
        config = PARITY_CASES[name]
        torch_model = seeded_torch_model(config)
        x = seeded_series(config, 3)
        report["diffs"][name], report["output_dtypes"][name] = {}, {}
        for dtype in dtypes:
            got = keras_forward(torch_to_keras(torch_model, dtype=dtype), x)
            report["diffs"][name][dtype] = max_abs_diff(got, torch_forward(torch_model, x, dtype))
            report["output_dtypes"][name][dtype] = str(got.dtype)
    if "float64" in dtypes:
        report["float64_matmul"] = float64_matmul()
        report["torch_adam_float64"] = torch_adam_float64()
    if report["backend"] == "torch":
        report["torch_compiled_attention"] = torch_compiled_attention()
    if layerwise_wanted:
        # The forward pass's series and batch: on JAX every op is compiled for each new shape (measured: the
        # harness took 20 s at batch 2 after the forward at batch 3, 1.4 s at batch 3).
        torch_model = seeded_torch_model(PARITY_CASES["config_b"])
        layerwise = layerwise_parity(torch_model, torch_to_keras(torch_model),
                                     seeded_series(PARITY_CASES["config_b"], 3), "float32", batch=3)
        report["layerwise"] = {"passed": layerwise.passed, "verdict": layerwise.verdict()}
    print(json.dumps(report))
