"""Checkpoint folders written by the original release load strictly and reproduce its outputs (issue 2)."""
import json

import numpy as np
import pytest
import torch

import reference_torch
from converter import tolerance_for, torch_to_keras

from conftest import DEVICES, ORIGINAL_FIXTURES, keras_forward, max_abs_diff, record_parity, torch_forward

MODEL_KEYS = ("data_dim", "in_len", "out_len", "seg_len", "win_size", "factor", "d_model", "d_ff", "n_heads",
              "e_layers", "dropout", "baseline")
FOLDERS = sorted(path for path in ORIGINAL_FIXTURES.glob("*") if (path / "checkpoint.pth").is_file())


def test_fixtures_are_present():
    assert len(FOLDERS) >= 2, f"expected the original-release fixtures under {ORIGINAL_FIXTURES}"


@pytest.fixture(scope="module", params=FOLDERS, ids=[path.name for path in FOLDERS])
def original(request):
    folder = request.param
    args = json.loads((folder / "args.json").read_text())
    config = {key: args[key] for key in MODEL_KEYS}
    state_dict = torch.load(folder / "checkpoint.pth", map_location="cpu", weights_only=True)
    model = reference_torch.Crossformer(**config)
    model.load_state_dict(state_dict, strict=True)
    return folder.name, config, model.eval(), dict(np.load(folder / "expected.npz"))


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
