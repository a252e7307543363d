"""Recording what every module of the two models computes, and pairing modules by name.

The port mirrors the names: torch ``encoder.encode_blocks.1.merge_layer`` is Keras
``model.encoder.encode_blocks[1].merge_layer``. PyTorch modules are recorded with forward hooks; Keras
layers by wrapping their ``call`` for one eager forward pass, then restoring it exactly.
"""
import inspect
import itertools
from dataclasses import dataclass

import numpy as np
import torch


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
    """Every array of a (nested) output, in order."""
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in flatten_arrays(v)]
    return [value] if isinstance(value, np.ndarray) else []


def output_shape(value):
    """The shape of a single output, or the list of shapes of several."""
    shapes = [list(a.shape) for a in flatten_arrays(value)]
    return shapes[0] if len(shapes) == 1 else shapes


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
    sequence: int = 0  # completion order of this call among all module calls the capture has seen


def capture_torch(torch_model, x, device="cpu", sequence=None):
    """Run the model once; {name: [Call, ...]} for every module, and names in order of first completion.

    ``sequence`` (an iterator of integers) numbers the calls; pass the same one to several captures (one per
    batch) so that call numbers order the whole run."""
    records, order = {}, []
    sequence = itertools.count() if sequence is None else sequence

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


_NO_OWN_CALL = object()


def capture_keras(keras_model, x, layers):
    """Run the Keras model once (eagerly) with every named layer's call recorded; {name: [Call, ...]}.

    Each layer is left as it was found: a `call` set on the instance itself (a patched layer) is put back,
    so whatever runs next (isolated mode) runs the same code that was recorded.
    """
    records = {}
    wrapped = []
    for name, layer in layers.items():
        if layer is None:
            continue
        own_call = vars(layer).get("call", _NO_OWN_CALL)
        original = layer.call

        def recording(*args, _name=name, _original=original, **kwargs):
            output = _original(*args, **kwargs)
            records.setdefault(_name, []).append(Call(to_numpy(args), to_numpy(output)))
            return output

        object.__setattr__(layer, "call", recording)
        wrapped.append((layer, own_call))
    try:
        keras_model(x, training=False)
    finally:
        for layer, own_call in reversed(wrapped):  # reversed: a layer listed twice ends with its own state
            if own_call is _NO_OWN_CALL:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own_call)
    return records


def run_isolated(layer, call, dtype):
    """Feed a Keras layer the inputs its PyTorch twin received; its output as numpy."""
    args = [np.asarray(a, dtype=dtype) if isinstance(a, np.ndarray)
            else [np.asarray(v, dtype=dtype) for v in a] if isinstance(a, (list, tuple)) else a
            for a in call.inputs]
    kwargs = {"training": False} if "training" in inspect.signature(layer.call).parameters else {}
    return to_numpy(layer(*args, **kwargs))
