"""The layer-by-layer parity engine shared by `crossformer parity` and the test suite.

Every PyTorch module that produces an output is compared with the Keras layer of the same name (the port
mirrors the names: torch ``encoder.encode_blocks.1.merge_layer`` is ``model.encoder.encode_blocks[1]
.merge_layer``). Two modes:

- chained: both models run on the same input, each on its own activations, as in real use;
- isolated: each Keras layer is fed the inputs its PyTorch twin received, so a bug is localised even
  when earlier layers drift.

Per module: output shape, max abs diff, max rel diff, cosine similarity, pass/fail (converter.tolerances).
A module called several times (TSA's shared dropout) is compared on every call and reported once, worst
case. A PyTorch module without a Keras counterpart (or a Keras layer without a PyTorch twin) fails.
"""
import inspect
import itertools
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .tolerances import diff_stats, tolerance_for

MODES = ("chained", "isolated")
ROOT_NAME = "(model)"


# ------------------------------------------------------------------------------------------ plumbing
def to_numpy(value):
    """Tensors (nested in lists/tuples) -> numpy; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return type(value)(to_numpy(v) for v in value)
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        import keras

        return keras.ops.convert_to_numpy(value)
    return value


def flatten_arrays(value):
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in flatten_arrays(v)]
    return [value] if isinstance(value, np.ndarray) else []


def output_shape(value):
    arrays = flatten_arrays(value)
    shapes = [list(a.shape) for a in arrays]
    return shapes[0] if len(shapes) == 1 else shapes


def disable_tf32():
    """Full-precision float32 matmuls on GPUs (TF32 would move float32 results by ~1e-3)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_tensor_float_32_execution(False)
        elif backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "highest")
    except ImportError:
        pass


def compact_shape(shape):
    """[4, 7, 8, 64] -> '4x7x8x64'; several outputs -> the first and how many more."""
    if shape and isinstance(shape[0], list):
        return "x".join(map(str, shape[0])) + (f" +{len(shape) - 1}" if len(shape) > 1 else "")
    return "x".join(map(str, shape)) if shape else "-"


def display_name(name):
    return name or ROOT_NAME


# ------------------------------------------------------------------------------------------ matching
def torch_modules(model):
    """{name: module} of every module that can produce an output (ModuleLists only hold, never run)."""
    return {name: module for name, module in model.named_modules()
            if not isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict))}


def keras_layer_for(keras_model, torch_name):
    """The Keras layer mirroring a torch module path, or None."""
    import keras

    layer = keras_model
    for part in torch_name.split(".") if torch_name else []:
        if part.isdigit():
            children = layer.layers if isinstance(layer, keras.Sequential) else layer
            if not isinstance(children, (list, tuple)) and not hasattr(children, "__getitem__"):
                return None
            try:
                layer = children[int(part)]
            except (IndexError, TypeError, KeyError):
                return None
        else:
            layer = getattr(layer, part, None)
        if layer is None:
            return None
    return layer if isinstance(layer, keras.layers.Layer) else None


def match_layers(torch_model, keras_model):
    """({torch name: keras layer or None}, [Keras layer paths with no PyTorch twin])."""
    import keras

    matched = {name: keras_layer_for(keras_model, name) for name in torch_modules(torch_model)}
    used = {id(layer) for layer in matched.values() if layer is not None}
    orphans = [layer.path or layer.name for layer in keras_model._flatten_layers(include_self=False)
               if id(layer) not in used and not isinstance(layer, keras.layers.InputLayer)]
    return matched, orphans


# ------------------------------------------------------------------------------------------ capture
@dataclass
class Call:
    inputs: tuple
    output: object
    sequence: int = 0  # completion order of this call among all module calls of one forward pass


def capture_torch(torch_model, x, device="cpu"):
    """Run the model once; {name: [Call, ...]} for every module, and names in order of first completion."""
    records, order, sequence = {}, [], itertools.count()

    def hook(name):
        def record(module, args, output):
            if name not in records:
                order.append(name)
            records.setdefault(name, []).append(Call(to_numpy(args), to_numpy(output), next(sequence)))
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in torch_modules(torch_model).items()]
    try:
        with torch.no_grad():
            torch_model(torch.as_tensor(x, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return records, order


def capture_keras(keras_model, x, layers):
    """Run the Keras model once (eagerly) with every named layer's call recorded; {name: [Call, ...]}."""
    records = {}
    wrapped = []
    for name, layer in layers.items():
        if layer is None:
            continue
        original = layer.call

        def recording(*args, _name=name, _original=original, **kwargs):
            output = _original(*args, **kwargs)
            records.setdefault(_name, []).append(Call(to_numpy(args), to_numpy(output)))
            return output

        object.__setattr__(layer, "call", recording)
        wrapped.append(layer)
    try:
        keras_model(x, training=False)
    finally:
        for layer in wrapped:
            object.__delattr__(layer, "call")
    return records


def run_isolated(layer, call, dtype):
    """Feed a Keras layer the inputs its PyTorch twin received; its output as numpy."""
    args = [np.asarray(a, dtype=dtype) if isinstance(a, np.ndarray)
            else [np.asarray(v, dtype=dtype) for v in a] if isinstance(a, (list, tuple)) else a
            for a in call.inputs]
    kwargs = {"training": False} if "training" in inspect.signature(layer.call).parameters else {}
    return to_numpy(layer(*args, **kwargs))


# ------------------------------------------------------------------------------------------ comparing
@dataclass
class ModuleParity:
    name: str
    kind: str
    calls: int
    shape: object
    max_abs: float = 0.0
    max_rel: float = 0.0
    cosine: float = 1.0
    scale: float = 0.0  # the largest |PyTorch output| value: what rel is relative to
    passed: bool = True
    problem: str = ""  # why it failed beyond the numbers (no counterpart, shape mismatch)
    first_bad_call: int = None  # sequence number of its first call beyond tolerance (orders the failures)


MISMATCH = (math.inf, math.inf, 0.0, 0.0)  # (max abs, max rel, cosine, scale) of outputs that cannot be compared


def compare_outputs(got, expected):
    """(max abs, max rel, cosine, scale, problem) over all arrays of two (nested) outputs."""
    got_arrays, expected_arrays = flatten_arrays(got), flatten_arrays(expected)
    if len(got_arrays) != len(expected_arrays):
        return (*MISMATCH, f"{len(got_arrays)} outputs, PyTorch has {len(expected_arrays)}")
    worst_abs = scale = 0.0
    dot = norm_got = norm_expected = 0.0
    for a, b in zip(got_arrays, expected_arrays):
        if a.shape != b.shape:
            return (*MISMATCH, f"shape {list(a.shape)}, PyTorch has {list(b.shape)}")
        worst_abs = max(worst_abs, diff_stats(a, b)[0])
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        scale = max(scale, float(np.max(np.abs(b64))) if b64.size else 0.0)
        dot, norm_got, norm_expected = dot + a64 @ b64, norm_got + a64 @ a64, norm_expected + b64 @ b64
    cosine = 1.0 if norm_got == norm_expected == 0 else dot / math.sqrt(norm_got * norm_expected or 1e-300)
    return worst_abs, (worst_abs / scale if scale else worst_abs), float(cosine), scale, ""


def _merge(entry, sequence, tolerance, max_abs, max_rel, cosine, scale, problem):
    """Fold one call's comparison into the module's entry; each call is judged on its own."""
    entry.max_abs = max(entry.max_abs, max_abs)
    entry.max_rel = max(entry.max_rel, max_rel)
    entry.cosine = min(entry.cosine, cosine)
    entry.scale = max(entry.scale, scale)
    entry.problem = entry.problem or problem
    if problem or not tolerance.passes(max_abs, scale):
        entry.passed = False
        if entry.first_bad_call is None or sequence < entry.first_bad_call:
            entry.first_bad_call = sequence


@dataclass
class ParityReport:
    dtype: str
    samples: int
    batch: int
    modes: dict = field(default_factory=dict)  # mode -> [ModuleParity] in execution (completion) order
    keras_only: list = field(default_factory=list)

    def first_failure(self, mode):
        """The module whose call went beyond tolerance first in the forward pass (None if all agree)."""
        failing = [m for m in self.modes[mode] if not m.passed]
        return min(failing, key=lambda m: m.first_bad_call).name if failing else None

    @property
    def passed(self):
        return not self.keras_only and all(m.passed for entries in self.modes.values() for m in entries)

    def worst(self, mode):
        return max(self.modes[mode], key=lambda m: m.max_abs)

    def verdict(self):
        tolerance = tolerance_for(self.dtype)
        count = len(next(iter(self.modes.values())))
        modes = " and ".join(self.modes)
        if self.passed:
            worst = self.worst(next(iter(self.modes)))
            return (f"PASS: all {count} modules agree in {modes} mode ({self.dtype}, {self.samples} samples; "
                    f"tolerance abs {tolerance.max_abs:.0e} + rel {tolerance.max_rel:.0e}; worst max abs diff "
                    f"{worst.max_abs:.2e} at {worst.name})")
        parts = [f"{mode}: first diverging module {self.first_failure(mode)}" for mode in self.modes
                 if self.first_failure(mode)]
        if self.keras_only:
            parts.append(f"Keras layers with no PyTorch twin: {', '.join(self.keras_only[:3])}")
        return f"FAIL ({self.dtype}): " + "; ".join(parts)

    def table(self):
        modes = list(self.modes)
        rows = [("module", "shape") + tuple(f"{mode} {col}" for mode in modes for col in ("abs", "rel", "cos"))
                + ("status",)]
        by_mode = [{m.name: m for m in self.modes[mode]} for mode in modes]
        for entry in self.modes[modes[0]]:
            cells = [entry.name, compact_shape(entry.shape)]
            ok = True
            for index in by_mode:
                m = index[entry.name]
                ok = ok and m.passed
                cells += [f"{m.max_abs:.1e}", f"{m.max_rel:.1e}", f"{m.cosine:.9f}"[:11]]
            problem = next((index[entry.name].problem for index in by_mode if index[entry.name].problem), "")
            rows.append(tuple(cells) + ("ok" if ok else f"FAIL {problem}".strip(),))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)

    def to_json(self):
        return json.dumps({"dtype": self.dtype, "samples": self.samples, "batch": self.batch, "passed": self.passed,
                           "verdict": self.verdict(), "keras_only": self.keras_only,
                           "first_failure": {mode: self.first_failure(mode) for mode in self.modes},
                           "tolerance": asdict(tolerance_for(self.dtype)),
                           "modes": {mode: [asdict(m) for m in entries] for mode, entries in self.modes.items()}},
                          indent=1)


def torch_device(device):
    return "cuda" if device == "gpu" else "cpu"


def layerwise_parity(torch_model, keras_model, inputs, dtype="float32", modes=MODES, batch=None, device="cpu"):
    """Compare every module of torch_model with its Keras twin on ``inputs`` [N, in_len, D] (run in batches).

    torch_model is cast to ``dtype`` and put in eval mode; keras_model must already compute in ``dtype``.
    ``device`` ("cpu" or "gpu") is where both models run (TF32 is switched off for "gpu").
    """
    import keras

    if device == "gpu":
        disable_tf32()
    with keras.device(f"{device}:0"):
        return _layerwise_parity(torch_model, keras_model, inputs, dtype, modes, batch, device)


def _layerwise_parity(torch_model, keras_model, inputs, dtype, modes, batch, device):
    inputs = np.asarray(inputs, dtype=dtype)
    batch = batch or len(inputs)
    torch_model = torch_model.to(device=torch_device(device), dtype=getattr(torch, dtype)).eval()
    if keras_model.compute_dtype != dtype:
        raise ValueError(f"the Keras model computes in {keras_model.compute_dtype}, not {dtype}")
    tolerance = tolerance_for(dtype)
    layers, orphans = match_layers(torch_model, keras_model)
    kinds = {name: type(module).__name__ for name, module in torch_modules(torch_model).items()}
    entries = {mode: {} for mode in modes}
    order = []
    for batch_index, start in enumerate(range(0, len(inputs), batch)):
        x = inputs[start:start + batch]
        torch_records, batch_order = capture_torch(torch_model, x, torch_device(device))
        order = order or batch_order
        keras_records = capture_keras(keras_model, x, layers) if "chained" in modes else {}
        offset = batch_index * (1 + sum(len(calls) for calls in torch_records.values()))
        for name in batch_order:
            calls = torch_records[name]
            layer = layers[name]
            for mode in modes:
                entry = entries[mode].setdefault(name, ModuleParity(display_name(name), kinds[name], len(calls),
                                                                    output_shape(calls[0].output)))
                if layer is None:
                    _merge(entry, offset + calls[0].sequence, tolerance, *MISMATCH, "no Keras counterpart")
                    continue
                if mode == "chained":
                    got_calls = keras_records.get(name, [])
                    if len(got_calls) != len(calls):
                        _merge(entry, offset + calls[0].sequence, tolerance, *MISMATCH,
                               f"Keras layer ran {len(got_calls)} time(s), PyTorch {len(calls)}")
                        continue
                    results = [compare_outputs(g.output, c.output) for g, c in zip(got_calls, calls)]
                else:
                    results = [compare_outputs(run_isolated(layer, c, dtype), c.output) for c in calls]
                for call, result in zip(calls, results):
                    if not name:  # the model's own output: held to the absolute bound alone (the policy)
                        result = (*result[:3], 0.0, result[4])
                    _merge(entry, offset + call.sequence, tolerance, *result)
    report = ParityReport(dtype, len(inputs), batch, keras_only=orphans)
    for mode in modes:
        report.modes[mode] = [entries[mode][name] for name in order]
    return report


# ------------------------------------------------------------------------------------------ parameter summary
def parameter_summary(torch_model, keras_model, max_depth=None):
    """Rows (path, class, torchinfo params, Keras params) for every module with parameters, and the totals
    (sum of numel, torchinfo total, Keras count_params)."""
    import torchinfo

    config = torch_model.crossformer_config
    summary = torchinfo.summary(torch_model, input_size=(1, config["in_len"], config["data_dim"]), depth=100,
                                verbose=0, device="cpu")
    names = {id(module): name for name, module in torch_model.named_modules()}
    counted = {}
    for info in summary.summary_list:
        counted.setdefault(id(info.module), info.num_params)
    rows = []
    for name, module in torch_modules(torch_model).items():
        depth = name.count(".") + 1 if name else 0
        torchinfo_params = counted.get(id(module))
        if torchinfo_params is None and names.get(id(module)) == "":
            torchinfo_params = summary.total_params
        if not any(True for _ in module.parameters()) or (max_depth is not None and depth > max_depth):
            continue
        layer = keras_layer_for(keras_model, name)
        rows.append((display_name(name), type(module).__name__, torchinfo_params,
                     trainable_count(layer) if layer is not None else None))
    totals = (sum(p.numel() for p in torch_model.parameters()), summary.total_params, trainable_count(keras_model),
              keras_model.count_params())
    return rows, totals


def trainable_count(layer):
    """Parameters as PyTorch counts them: trainable weights only (TSLib's pe is a buffer there, a non-trainable
    weight in Keras; for the original variant this equals count_params())."""
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def format_summary(rows, totals):
    table = [("module", "class", "torchinfo", "keras", "")]
    for name, kind, torch_count, keras_count in rows:
        same = torch_count == keras_count
        table.append((name, kind, f"{torch_count:,}" if torch_count is not None else "-",
                      f"{keras_count:,}" if keras_count is not None else "missing", "" if same else "DIFFERENT"))
    numel, torchinfo_total, keras_total, keras_stored = totals
    table.append(("total", "", f"{torchinfo_total:,}", f"{keras_total:,}",
                  "" if numel == torchinfo_total == keras_total else "DIFFERENT"))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = ["  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    buffers = keras_stored - keras_total
    lines.append(f"sum(p.numel()) = {numel:,}; torchinfo total_params = {torchinfo_total:,}; "
                 f"Keras count_params() = {keras_stored:,}" + (
                     f" ({buffers:,} of them TSLib's stored pe rows, a buffer in PyTorch)" if buffers else ""))
    return "\n".join(lines)
