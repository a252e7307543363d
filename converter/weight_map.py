"""The weight map between reference_torch state_dicts and keras_model variables.

Not a table: a rule on names. Every Keras layer is named after the PyTorch attribute it mirrors, and the
i-th element of a ModuleList is named ``attr-i`` ('-' is the one separator all backends accept: '.' breaks
the torch backend's ParameterDict, '[' breaks TensorFlow's graph-mode name scopes, and no Python attribute
contains '-'). So a variable's path below the model, with '/' and '-' read as '.', is the state_dict key once
the Keras leaf name is translated: Dense ``kernel`` -> ``weight`` (transposed, since nn.Linear stores
[out, in]), ``bias`` -> ``bias``, LayerNormalization ``gamma``/``beta`` -> ``weight``/``bias``. Any other
leaf (routers, positional embeddings) keeps its name and layout, except TSLib's fixed sinusoid ``pe``: the
Keras weight holds the rows the model uses of the [1, 5000, d_model] PyTorch buffer.
"""
import re
from dataclasses import dataclass

import numpy as np

from .errors import CrossformerInputError

LIST_INDEX = re.compile(r"-(\d+)(?=\.|$)")
LEAF_TO_TORCH = {"kernel": ("weight", True), "gamma": ("weight", False), "beta": ("bias", False),
                 "bias": ("bias", False)}
BUFFER_PREFIX_LEAVES = {"pe"}  # Keras keeps rows [:, :L] of a longer PyTorch buffer


class WeightMapError(CrossformerInputError):
    """State_dict keys or shapes that do not fit the Keras model."""


@dataclass(frozen=True)
class MappedWeight:
    key: str  # the PyTorch state_dict key
    variable: object  # the keras.Variable
    transpose: bool  # True for Dense kernels: torch weight = kernel.T
    buffer_prefix: bool = False  # True for TSLib's pe: the Keras weight is the first rows of the torch buffer

    @property
    def torch_shape(self):
        shape = tuple(self.variable.shape)
        return shape[::-1] if self.transpose else shape

    def fits(self, shape):
        """Whether a state_dict tensor of ``shape`` can fill this weight."""
        keras_shape = tuple(self.variable.shape)
        if self.buffer_prefix:
            return len(shape) == 3 and shape[0] == 1 and shape[2] == keras_shape[2] and shape[1] >= keras_shape[1]
        return shape == self.torch_shape


def torch_key_for(relative_path):
    """'encoder/encode_blocks-1/merge_layer/linear_trans/kernel' -> ('encoder...linear_trans.weight', True)."""
    parts = relative_path.split("/")
    leaf, transpose = LEAF_TO_TORCH.get(parts[-1], (parts[-1], False))
    return LIST_INDEX.sub(r".\1", ".".join(parts[:-1] + [leaf])), transpose


def mapped_weights(keras_model):
    """Every Keras weight with its state_dict key, in the Keras model's weight order."""
    mapped = {}
    prefix = keras_model.path + "/"  # the model's own scope (its name, below any scope it was built in)
    for variable in keras_model.weights:
        if not variable.path.startswith(prefix):
            raise WeightMapError(f"weight {variable.path!r} is not under the model's path {keras_model.path!r}")
        key, transpose = torch_key_for(variable.path[len(prefix):])
        if key in mapped:
            raise WeightMapError(f"two Keras weights map to the same key {key!r}")
        mapped[key] = MappedWeight(key, variable, transpose, key.rsplit(".", 1)[-1] in BUFFER_PREFIX_LEAVES)
    return mapped


def _list_some(keys, limit=5):
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(mapped, state_dict):
    """Raise WeightMapError naming the first missing and unexpected keys, if the key sets differ."""
    missing = set(mapped) - set(state_dict)
    unexpected = set(state_dict) - set(mapped)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_list_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_list_some(unexpected)}")
        raise WeightMapError("state_dict does not fit this Crossformer: " + "; ".join(parts))


def load_state_dict_into_keras(keras_model, state_dict):
    """Copy a state_dict ({key: array-like in PyTorch layout}) into keras_model; every key must be used.

    Values are cast to the Keras variables' dtype. Raises WeightMapError on any key or shape mismatch,
    before anything is assigned.
    """
    mapped = mapped_weights(keras_model)
    check_keys(mapped, state_dict)
    values = {}
    for key, weight in mapped.items():
        value = np.asarray(state_dict[key])
        if not weight.fits(value.shape):
            expected = f"(1, >= {weight.torch_shape[1]}, {weight.torch_shape[2]})" if weight.buffer_prefix \
                else str(weight.torch_shape)
            raise WeightMapError(f"shape mismatch for {key}: expected {expected}, got {value.shape}")
        if weight.buffer_prefix:
            value = value[:, :weight.torch_shape[1]]
        values[key] = value.T if weight.transpose else value
    for key, weight in mapped.items():
        weight.variable.assign(values[key].astype(weight.variable.dtype))
    return keras_model


def keras_to_state_dict(keras_model, full_buffers=None):
    """The Keras model's weights as {state_dict key: numpy array in PyTorch layout}.

    A buffer the Keras model keeps only the first rows of (TSLib's pe) is returned as those rows, unless
    ``full_buffers`` ({key: array-like of the full PyTorch shape}) supplies the rest: then the state_dict has
    the shapes the PyTorch model (and Time-Series-Library) expects."""
    state = {}
    for key, weight in mapped_weights(keras_model).items():
        value = np.asarray(weight.variable.numpy() if hasattr(weight.variable, "numpy") else weight.variable)
        value = value.T if weight.transpose else value
        if weight.buffer_prefix and full_buffers is not None and key in full_buffers:
            full = np.array(full_buffers[key], dtype=value.dtype)
            full[:, :value.shape[1]] = value
            value = full
        state[key] = np.ascontiguousarray(value)
    return state
