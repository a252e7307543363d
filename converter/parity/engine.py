"""The layer-by-layer parity engine shared by `crossformer parity` and the test suite.

Every PyTorch module that produces an output is compared with the Keras layer of the same name
(converter.parity.capture pairs them). Two modes:

- chained: both models run on the same input, each on its own activations, as in real use;
- isolated: each Keras layer is fed the inputs its PyTorch twin received, so a bug is localised even
  when earlier layers drift.

Per module: output shape, max abs diff, max rel diff, cosine similarity, pass/fail (tolerances.py).
A module called several times (TSA's shared dropout) is compared on every call and reported once, worst
case. A PyTorch module without a Keras counterpart (or a Keras layer without a PyTorch twin) fails.
"""
import itertools
import math

import numpy as np
import torch

from ..precision import disable_tf32
from ..validation import require_int
from .capture import capture_keras, capture_torch, flatten_arrays, match_layers, output_shape, run_isolated, \
    torch_modules
from .report import Comparison, ModuleParity, ParityReport, display_name, mismatch
from .tolerances import diff_stats, tolerance_for

MODES = ("chained", "isolated")


def torch_device(device):
    return "cuda" if device == "gpu" else "cpu"


def compare_outputs(got, expected):
    """A Comparison over all arrays of two (nested) outputs."""
    got_arrays, expected_arrays = flatten_arrays(got), flatten_arrays(expected)
    if len(got_arrays) != len(expected_arrays):
        return mismatch(f"{len(got_arrays)} outputs, PyTorch has {len(expected_arrays)}")
    worst_abs = scale = 0.0
    dot = norm_got = norm_expected = 0.0
    for a, b in zip(got_arrays, expected_arrays):
        if a.shape != b.shape:
            return mismatch(f"shape {list(a.shape)}, PyTorch has {list(b.shape)}")
        worst_abs = max(worst_abs, diff_stats(a, b)[0])
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        scale = max(scale, float(np.max(np.abs(b64))) if b64.size else 0.0)
        dot, norm_got, norm_expected = dot + a64 @ b64, norm_got + a64 @ a64, norm_expected + b64 @ b64
    cosine = 1.0 if norm_got == norm_expected == 0 else dot / math.sqrt(norm_got * norm_expected or 1e-300)
    return Comparison(worst_abs, worst_abs / scale if scale else worst_abs, float(cosine), scale)


def module_comparisons(mode, name, layer, calls, keras_records, dtype):
    """[(call sequence number, Comparison)] for one module's calls in one mode."""
    if layer is None:
        return [(calls[0].sequence, mismatch("no Keras counterpart"))]
    if mode == "chained":
        got = keras_records.get(name, [])
        if len(got) != len(calls):
            return [(calls[0].sequence, mismatch(f"Keras layer ran {len(got)} time(s), PyTorch {len(calls)}"))]
        outputs = [record.output for record in got]
    else:
        outputs = [run_isolated(layer, call, dtype) for call in calls]
    results = []
    for call, output in zip(calls, outputs):
        results.append((call.sequence, compare_outputs(output, call.output)))
    return results


def layerwise_parity(torch_model, keras_model, inputs, dtype="float32", modes=MODES, batch=None, device="cpu"):
    """Compare every module of torch_model with its Keras twin on ``inputs`` [N, in_len, D] (run in batches).

    torch_model is cast to ``dtype`` and put in eval mode; keras_model must already compute in ``dtype``.
    ``device`` ("cpu" or "gpu") is where both models run (TF32 is switched off for "gpu").
    """
    import keras

    if batch is not None:
        require_int(batch, "batch", 1)
    if device == "gpu":
        disable_tf32()
    inputs = np.asarray(inputs, dtype=dtype)
    batch = batch or len(inputs)
    torch_model = torch_model.to(device=torch_device(device), dtype=getattr(torch, dtype)).eval()
    if keras_model.compute_dtype != dtype:
        raise ValueError(f"the Keras model computes in {keras_model.compute_dtype}, not {dtype}")
    tolerance = tolerance_for(dtype)
    layers, orphans = match_layers(torch_model, keras_model)
    kinds = {name: type(module).__name__ for name, module in torch_modules(torch_model).items()}
    entries = {mode: {} for mode in modes}
    order, sequence = None, itertools.count()  # one count over all batches orders every call of the run
    with keras.device(f"{device}:0"):
        for start in range(0, len(inputs), batch):
            x = inputs[start:start + batch]
            torch_records, batch_order = capture_torch(torch_model, x, torch_device(device), sequence)
            order = order or batch_order
            keras_records = capture_keras(keras_model, x, layers) if "chained" in modes else {}
            for mode in modes:
                for name in batch_order:
                    calls = torch_records[name]
                    entry = entries[mode].setdefault(name, ModuleParity(
                        display_name(name), kinds[name], len(calls), output_shape(calls[0].output)))
                    for call_sequence, comparison in module_comparisons(mode, name, layers[name], calls,
                                                                        keras_records, dtype):
                        entry.record(comparison, call_sequence, tolerance)
    report = ParityReport(dtype, len(inputs), batch, keras_only=orphans)
    for mode in modes:
        report.modes[mode] = [entries[mode][name] for name in order]
    return report
