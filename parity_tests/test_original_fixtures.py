"""Checkpoint folders written by the original release load strictly and reproduce its outputs."""
import numpy as np
import pytest

from converter import config_of, tolerance_for, torch_to_keras

from conftest import (DEVICES, ETTH1_FOLDER, ORIGINAL_FIXTURES, ORIGINAL_FOLDERS, keras_forward, max_abs_diff,
                      original_reference_model, record_parity, slow_except, torch_forward)

FOLDERS = ORIGINAL_FOLDERS


def test_fixtures_are_present():
    assert len(FOLDERS) >= 2, f"expected the original-release fixtures under {ORIGINAL_FIXTURES}"


@pytest.fixture(scope="module", params=slow_except(ETTH1_FOLDER, FOLDERS), ids=[path.name for path in FOLDERS])
def original(request):
    folder = request.param
    model = original_reference_model(folder)
    return folder.name, config_of(model), model, dict(np.load(folder / "expected.npz"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reference_torch_reproduces_original(original, dtype, device):
    name, _, model, expected = original
    diff = max_abs_diff(torch_forward(model, expected["x"], dtype, device),
                        expected["y32" if dtype == "float32" else "y64"])
    record_parity(f"reference_torch vs original: {name[:16]} {device}", dtype, len(expected["x"]), diff)
    assert tolerance_for(dtype).passes(diff)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_reproduces_original(original, dtype, device):
    name, _, model, expected = original
    keras_model = torch_to_keras(model.cpu(), dtype=dtype)
    diff = max_abs_diff(keras_forward(keras_model, expected["x"], device),
                        expected["y32" if dtype == "float32" else "y64"])
    record_parity(f"keras vs original: {name[:16]} {device}", dtype, len(expected["x"]), diff)
    assert tolerance_for(dtype).passes(diff), f"{name} {dtype}: max abs diff {diff:.3e}"
