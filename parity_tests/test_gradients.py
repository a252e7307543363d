"""Gradient parity and one optimizer step.

With dropout 0, the gradients of an MSE loss with respect to every weight agree between PyTorch and Keras,
and one Adam step in each framework lands on the same weights, with keras_model.TorchAdam (PyTorch's epsilon
placement). keras.optimizers.Adam places epsilon differently and demonstrably lands elsewhere.

One mathematical subtlety sets the float32 step's tolerance. The key projections' biases have an exactly
zero gradient (a bias on the keys adds the same q.b to every score of a query, and softmax ignores a shift),
so each framework's float32 gradient there is rounding noise (~1e-9), and Adam's update m/(sqrt(v)+eps)
normalises noise into a step of up to lr. Those weights are identified in float64 (|gradient| <= 1e-12) and
held to Adam's step bound (2 lr apart at most); every other weight is held to the float32 policy. In float64
the noise is far below eps and every weight is held to 1e-12; and given the same gradients, TorchAdam
matches torch.optim.Adam in both precisions.
"""
import keras
import numpy as np
import pytest
import torch

import reference_torch
from converter import tolerance_for, torch_to_keras
from converter.weight_map import mapped_weights
from keras_model.losses import MeanSquaredError
import keras_model.optimizers
from keras_model.optimizers import FLAT_CHUNK_BYTES, TorchAdam

from conftest import CONFIG_B, DEVICES, record_parity, seeded_torch_model, slow_except

pytestmark = pytest.mark.skipif(keras.backend.backend() not in ("tensorflow", "jax"),
                                reason="gradients are taken with tf.GradientTape or jax.value_and_grad")
LEARNING_RATE = 2.0 ** -10  # exact in float32, so Keras's float32 learning-rate variable cannot blur float64


def torch_gradients(torch_model, x, y, device):
    torch_model.zero_grad()
    prediction = torch_model(torch.from_numpy(x).to(device))
    loss = torch.nn.functional.mse_loss(prediction, torch.from_numpy(y).to(device))
    loss.backward()
    return loss.item(), {name: p.grad.detach().cpu().numpy() for name, p in torch_model.named_parameters()}


def mse(prediction, y):
    """nn.MSELoss in the prediction's dtype: keras_model's loss (Keras's own averages float64 in float32 on JAX)."""
    return MeanSquaredError(dtype=keras.backend.standardize_dtype(prediction.dtype))(y, prediction)


def keras_gradients(model, x, y):
    """(loss, trainable variables, their gradients) of the MSE loss, with the backend's own autodiff."""
    variables = model.trainable_variables
    if keras.backend.backend() == "jax":
        import jax

        frozen = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            prediction, _ = model.stateless_call(trainable, frozen, x, training=True)
            return mse(prediction, y)

        loss, gradients = jax.value_and_grad(loss_of)([v.value for v in variables])
        return float(loss), variables, gradients
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = mse(model(x, training=True), y)
    return float(loss), variables, tape.gradient(loss, variables)


def torch_layout(model, variables, values):
    """{state_dict key: value in PyTorch layout} for Keras variables."""
    keys = {id(w.variable): (key, w.transpose) for key, w in mapped_weights(model).items()}
    out = {}
    for variable, value in zip(variables, values):
        key, transpose = keys[id(variable)]
        value = keras.ops.convert_to_numpy(value)
        out[key] = value.T if transpose else value
    return out


def worst(got, expected, dtype):
    tolerance = tolerance_for(dtype)
    failures, worst_abs = [], 0.0
    for key, value in expected.items():
        diff = float(np.max(np.abs(got[key] - value)))
        worst_abs = max(worst_abs, diff)
        if not tolerance.passes(diff, float(np.max(np.abs(value)))):
            failures.append((key, diff))
    return worst_abs, failures


@pytest.fixture(params=slow_except("float64", ["float32", "float64"]))
def setup(request):
    dtype = request.param
    torch_model = seeded_torch_model(dict(CONFIG_B, dropout=0.0)).to(getattr(torch, dtype)).train()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, CONFIG_B["in_len"], CONFIG_B["data_dim"])).astype(dtype)
    y = rng.standard_normal((4, CONFIG_B["out_len"], CONFIG_B["data_dim"])).astype(dtype)
    return dtype, torch_model, torch_to_keras(torch_model, dtype=dtype), x, y


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_of_every_weight_agree(setup, device):
    dtype, torch_model, model, x, y = setup
    torch_model.to(device="cuda" if device == "gpu" else "cpu")
    torch_loss, expected = torch_gradients(torch_model, x, y, "cuda" if device == "gpu" else "cpu")
    with keras.device(f"{device}:0"):
        keras_loss, variables, gradients = keras_gradients(model, x, y)
    got = torch_layout(model, variables, gradients)
    assert set(got) == set(expected) and len(got) == 269
    assert tolerance_for(dtype).passes(abs(keras_loss - torch_loss))
    worst_abs, failures = worst(got, expected, dtype)
    record_parity(f"gradients {device} (worst of 269 weights)", dtype, 4, worst_abs)
    assert not failures, failures[:5]


def vanishing_gradient_keys(x, y):
    """Weights whose exact gradient is zero, found in float64 (|gradient| <= 1e-12 everywhere)."""
    torch_model = seeded_torch_model(dict(CONFIG_B, dropout=0.0)).double().train()
    _, gradients = torch_gradients(torch_model, x.astype("float64"), y.astype("float64"), "cpu")
    return {key for key, value in gradients.items() if np.max(np.abs(value)) <= 1e-12}


def test_one_adam_step_lands_on_the_same_weights(setup):
    dtype, torch_model, model, x, y = setup
    torch_gradients(torch_model, x, y, "cpu")
    torch.optim.Adam(torch_model.parameters(), lr=LEARNING_RATE).step()
    expected = {k: v.detach().numpy() for k, v in torch_model.named_parameters()}

    _, variables, gradients = keras_gradients(model, x, y)
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    TorchAdam(learning_rate=LEARNING_RATE).apply_gradients(zip(gradients, variables))
    got = torch_layout(model, variables, variables)
    vanishing = vanishing_gradient_keys(x, y) if dtype == "float32" else set()
    if dtype == "float32":  # exactly the key biases of every attention layer, as the math says
        assert vanishing == {f"{name}.key_projection.bias" for name, module in torch_model.named_modules()
                             if isinstance(module, reference_torch.AttentionLayer)}
    worst_abs, failures = worst({k: got[k] for k in expected if k not in vanishing},
                                {k: v for k, v in expected.items() if k not in vanishing}, dtype)
    record_parity("one TorchAdam step: weights", dtype, 4, worst_abs)
    assert not failures, failures[:5]
    for key in vanishing:  # rounding noise, normalised by Adam: at most one step (lr) each way
        assert np.max(np.abs(got[key] - expected[key])) <= 2 * LEARNING_RATE, key

    # Keras's own Adam (epsilon inside the bias correction) does not land there: why TorchAdam exists.
    for variable, value in zip(variables, before):
        variable.assign(value)
    keras.optimizers.Adam(learning_rate=LEARNING_RATE, epsilon=1e-8).apply_gradients(zip(gradients, variables))
    _, stock_failures = worst(torch_layout(model, variables, variables), expected, dtype)
    assert stock_failures, "keras.optimizers.Adam matched torch.optim.Adam: TorchAdam would be unnecessary"


def test_torch_adam_matches_torch_given_the_same_gradients(setup):
    """The optimizer alone: PyTorch's gradients fed to both optimizers, two steps."""
    dtype, torch_model, model, x, y = setup
    keys = {id(w.variable): (key, w.transpose) for key, w in mapped_weights(model).items()}
    optimizer = torch.optim.Adam(torch_model.parameters(), lr=LEARNING_RATE)
    keras_optimizer = TorchAdam(learning_rate=LEARNING_RATE)
    variables = model.trainable_variables
    for _ in range(2):
        _, gradients = torch_gradients(torch_model, x, y, "cpu")
        optimizer.step()
        same = [gradients[keys[id(v)][0]].T if keys[id(v)][1] else gradients[keys[id(v)][0]] for v in variables]
        keras_optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in same], variables))
    expected = {k: v.detach().numpy() for k, v in torch_model.named_parameters()}
    worst_abs, failures = worst(torch_layout(model, variables, variables), expected, dtype)
    record_parity("TorchAdam vs torch Adam, same gradients, 2 steps", dtype, 4, worst_abs)
    assert not failures, failures[:5]


@pytest.mark.parametrize("chunk_bytes", [FLAT_CHUNK_BYTES, 16])
def test_torch_adam_groups_dtypes_and_leaves_variables_without_a_gradient(chunk_bytes, monkeypatch):
    """TorchAdam's flat moments: per dtype (float64 and float32 variables interleaved here), in chunks of at most
    chunk_bytes (16: one variable per chunk), each held to torch.optim.Adam; at the last step one variable of
    each dtype has no gradient, and, as torch does for a parameter whose .grad is None, its weight and moments
    stay as they were."""
    monkeypatch.setattr(keras_model.optimizers, "FLAT_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(3)
    dtypes = ["float64", "float32", "float64", "float32"]
    initial = [rng.standard_normal(shape).astype(dtype) for shape, dtype in zip([(3, 4), (5,), (2,), (1,)], dtypes)]
    variables = [keras.Variable(value, dtype=value.dtype) for value in initial]
    parameters = [torch.nn.Parameter(torch.from_numpy(value.copy())) for value in initial]
    keras_optimizer = TorchAdam(learning_rate=LEARNING_RATE)
    torch_optimizer = torch.optim.Adam(parameters, lr=LEARNING_RATE)
    for step in range(3):
        gradients = [rng.standard_normal(value.shape).astype(value.dtype) for value in initial]
        if step == 2:
            gradients[2] = gradients[3] = None
        for parameter, gradient in zip(parameters, gradients):
            parameter.grad = None if gradient is None else torch.from_numpy(gradient)
        torch_optimizer.step()
        keras_optimizer.apply_gradients([(None if g is None else keras.ops.convert_to_tensor(g), v)
                                         for g, v in zip(gradients, variables)])
    flat = {v.name: keras.ops.convert_to_numpy(v) for v in keras_optimizer.variables}
    chunks = 2 if chunk_bytes == FLAT_CHUNK_BYTES else 4
    assert len(flat) == 2 + 2 * chunks, sorted(flat)
    for dtype in ("float64", "float32"):
        members = [i for i, d in enumerate(dtypes) if d == dtype]

        def torch_state(name):
            return np.concatenate([torch_optimizer.state[parameters[i]][name].numpy().ravel() for i in members])

        def keras_state(name):
            return np.concatenate([flat[f"{name}_{dtype}_{k}"] for k in range(chunks // 2)])

        expected = {"weights": np.concatenate([parameters[i].detach().numpy().ravel() for i in members]),
                    "momentum": torch_state("exp_avg"), "velocity": torch_state("exp_avg_sq")}
        got = {"weights": np.concatenate([keras.ops.convert_to_numpy(variables[i]).ravel() for i in members]),
               "momentum": keras_state("momentum"), "velocity": keras_state("velocity")}
        worst_abs, failures = worst(got, expected, dtype)
        assert not failures, (dtype, failures)
        # the variable without a gradient at the last step: exactly unchanged by it in both frameworks
        last = members[1]
        np.testing.assert_array_equal(parameters[last].detach().numpy(), keras.ops.convert_to_numpy(variables[last]))


@pytest.mark.slow
def test_torch_adam_survives_serialization_with_a_compiled_model(tmp_path):
    model = torch_to_keras(seeded_torch_model(CONFIG_B))
    model.compile(optimizer=TorchAdam(learning_rate=3e-4, epsilon=1e-7), loss="mse", run_eagerly=True)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.standard_normal((2, 50, 3)), rng.standard_normal((2, 13, 3)))  # real Adam state
    model.save(tmp_path / "m.keras")
    optimizer = keras.saving.load_model(tmp_path / "m.keras").optimizer
    assert type(optimizer) is TorchAdam and optimizer.epsilon == 1e-7
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(3e-4)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1  # the state came back, not only the config
    moments = [keras.ops.convert_to_numpy(v) for v in optimizer.variables if v.name.startswith("momentum")]
    parameters = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert sum(m.size for m in moments) == parameters and any(np.any(m != 0) for m in moments)  # flat chunks
    with pytest.raises(ValueError, match="amsgrad"):
        TorchAdam(amsgrad=True)
