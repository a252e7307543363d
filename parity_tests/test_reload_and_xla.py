"""Parity survives .keras save/load, and holds under XLA compilation (jit_compile=True)."""
import keras
import numpy as np
import pytest

from converter import tolerance_for, torch_to_keras
from converter.parity import layerwise_parity

from conftest import CONFIG_B, ETTH1, max_abs_diff, record_parity, seeded_series, seeded_torch_model, torch_forward


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layerwise_parity_after_save_and_load(tmp_path, dtype):
    torch_model = seeded_torch_model(dict(CONFIG_B, baseline=True))
    torch_to_keras(torch_model, dtype=dtype).save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    report = layerwise_parity(torch_model, reloaded, seeded_series(CONFIG_B, 4), dtype, batch=2)
    assert report.passed, report.verdict()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA via jit_compile is tested on TensorFlow")
@pytest.mark.slow
@pytest.mark.parametrize("config", [CONFIG_B, ETTH1], ids=["config_b", "etth1"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xla_compiled_predictions_agree(config, dtype):
    torch_model = seeded_torch_model(config)
    model = torch_to_keras(torch_model, dtype=dtype)
    model.compile(jit_compile=True)
    assert model.jit_compile
    x = seeded_series(config, 3).astype(dtype)
    compiled = np.asarray(model.predict_on_batch(x))  # XLA-compiled predict_function; no floatx cast of x
    diff = max_abs_diff(compiled, torch_forward(torch_model, x, dtype))
    record_parity(f"XLA {'etth1' if config is ETTH1 else 'config_b'}", dtype, 3, diff)
    assert tolerance_for(dtype).passes(diff), diff
