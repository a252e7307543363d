"""A reference_torch state_dict copied into the Keras model gives the same outputs."""
import pytest

from converter import tolerance_for, torch_to_keras

from conftest import (DEVICES, PARITY_CASES, keras_forward, max_abs_diff, record_parity, seeded_series,
                      seeded_torch_model, slow_except, torch_forward)

DTYPES = ("float32", "float64")


@pytest.fixture(scope="module", params=slow_except("config_b", sorted(PARITY_CASES)))
def models(request):
    config = PARITY_CASES[request.param]
    torch_model = seeded_torch_model(config)
    keras_models = {dtype: torch_to_keras(torch_model, dtype=dtype) for dtype in DTYPES}
    return request.param, config, torch_model, keras_models


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", slow_except(7, [1, 7]))
def test_outputs_agree(models, dtype, batch, device):
    name, config, torch_model, keras_models = models
    x = seeded_series(config, batch, seed=batch)
    expected = torch_forward(torch_model, x, dtype, device)
    got = keras_forward(keras_models[dtype], x, device)
    assert got.shape == (batch, config["out_len"], config["data_dim"])
    assert str(got.dtype) == dtype
    diff = max_abs_diff(got, expected)
    record_parity(name if device == "cpu" else f"{name} {device}", dtype, batch, diff)
    assert tolerance_for(dtype).passes(diff), f"{name} {dtype} batch {batch}: max abs diff {diff:.3e}"
