"""Keras model behaviour: any batch size, graph mode, dropout sites, PyTorch-default initialisers."""
import math

import keras
import numpy as np
import pytest
import torch

import keras_model
import reference_torch
from converter import tolerance_for, torch_to_keras
from converter.weight_map import mapped_weights

from conftest import (CONFIG_B, ETTH1, keras_forward, max_abs_diff, seeded_series, seeded_torch_model,
                      torch_forward)


def test_dynamic_batch_dimension():
    model = keras_model.Crossformer(**CONFIG_B)
    inputs = keras.Input(shape=(CONFIG_B["in_len"], CONFIG_B["data_dim"]))
    outputs = model(inputs)
    assert tuple(outputs.shape) == (None, CONFIG_B["out_len"], CONFIG_B["data_dim"])
    functional = keras.Model(inputs, outputs)
    x = seeded_series(CONFIG_B, 5).astype("float32")
    for batch in (1, 3, 5):
        np.testing.assert_array_equal(functional(x[:batch]), model(x[:batch]))


class Float64Batches(keras.utils.PyDataset):
    """Batches handed to predict() as they are: Keras casts NumPy float64 *arrays* given to predict() to floatx."""

    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        return self.x[index * self.batch_size:(index + 1) * self.batch_size]


@pytest.mark.slow
def test_graph_mode_predict_with_a_partial_last_batch_matches_eager():
    torch_model = seeded_torch_model(CONFIG_B)
    model = torch_to_keras(torch_model, dtype="float64")
    x = seeded_series(CONFIG_B, 5)
    predicted = model.predict(Float64Batches(x, 2), verbose=0)  # traced graph; batches of 2, 2, 1
    assert tolerance_for("float64").passes(max_abs_diff(predicted, keras_forward(model, x)))
    assert tolerance_for("float64").passes(max_abs_diff(predicted, torch_forward(torch_model, x, "float64")))


DROPOUT_FACTOR = 0.75  # stands in for a dropout mask: a deterministic scaling applied at each dropout site


def _scale_torch_dropouts(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.forward = lambda x: x * DROPOUT_FACTOR


def _scale_keras_dropouts(model):
    def scaled(inputs, training=None):
        return inputs * DROPOUT_FACTOR if training else inputs

    count = 0
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Dropout):
            layer.call = scaled
            count += 1
    return count


def test_dropout_sites_match_the_original():
    """Replace every dropout by the same deterministic scaling in both models: outputs in training mode
    agree only if both apply dropout at the same sites (and the same number of times)."""
    config = dict(CONFIG_B, dropout=0.3)
    torch_model = seeded_torch_model(config).double()
    keras = torch_to_keras(torch_model, dtype="float64")
    torch_dropouts = sum(isinstance(m, torch.nn.Dropout) for m in torch_model.modules())
    assert _scale_keras_dropouts(keras) == torch_dropouts
    _scale_torch_dropouts(torch_model)
    x = seeded_series(config, 3)
    torch_model.train()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    torch_model.eval()
    got = keras_model_output(keras, x, training=True)
    assert tolerance_for("float64").passes(max_abs_diff(got, expected))
    # And the scaling really changed the output, so the comparison above was not vacuous.
    assert max_abs_diff(got, keras_model_output(keras, x, training=False)) > 1e-3


def keras_model_output(model, x, training):
    return keras.ops.convert_to_numpy(model(x, training=training))


def test_dropout_is_active_only_in_training():
    config = dict(CONFIG_B, dropout=0.3)
    torch_model = seeded_torch_model(config)
    model = torch_to_keras(torch_model, dtype="float64")
    x = seeded_series(config, 2)
    inference = keras_model_output(model, x, training=False)
    assert tolerance_for("float64").passes(max_abs_diff(inference, torch_forward(torch_model, x, "float64")))
    np.testing.assert_array_equal(inference, keras_forward(model, x))
    first, second = keras_model_output(model, x, training=True), keras_model_output(model, x, training=True)
    assert max_abs_diff(first, inference) > 1e-3 and max_abs_diff(first, second) > 1e-3


def _uniform_bound(key, torch_state):
    """nn.Linear's init bound 1/sqrt(fan_in) for a Linear weight or bias, else None."""
    weight_key = key[: -len("bias")] + "weight" if key.endswith(".bias") else key
    weight = torch_state.get(weight_key)
    if weight is None or weight.ndim != 2:
        return None
    return 1.0 / math.sqrt(weight.shape[1])


def test_initialisers_follow_pytorch_defaults():
    torch.manual_seed(1)
    torch_state = {k: v.numpy() for k, v in reference_torch.Crossformer(**ETTH1).state_dict().items()}
    mapped = mapped_weights(keras_model.Crossformer(**ETTH1))
    checked = set()
    for key, weight in mapped.items():
        value = keras.ops.convert_to_numpy(weight.variable)
        reference = torch_state[key]
        if "norm" in key:  # LayerNorm: gamma 1, beta 0, exactly
            np.testing.assert_array_equal(value, reference, err_msg=key)
            checked.add("layernorm")
            continue
        bound = _uniform_bound(key, torch_state)
        if bound is not None:  # Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
            assert np.abs(value).max() <= bound * (1 + 1e-6), key
            checked.add("linear")
        else:  # routers, positional embeddings: N(0, 1)
            checked.add("normal")
        if value.size >= 2000:  # statistics are only meaningful on large tensors
            assert abs(value.std() - reference.std()) < 0.05 * reference.std(), key
            assert abs(value.mean() - reference.mean()) < 0.05 * reference.std() + 0.01, key
    assert checked == {"layernorm", "linear", "normal"}


def test_float64_model_has_float64_weights_and_outputs():
    model = keras_model.Crossformer(**CONFIG_B, dtype="float64")
    assert {str(w.dtype) for w in model.weights} == {"float64"}
    assert str(keras_forward(model, seeded_series(CONFIG_B, 1)).dtype) == "float64"
