"""Layer-by-layer parity, chained and isolated, float32 and float64, CPU and GPU."""

import numpy as np
import pytest

from converter import torch_to_keras
from forecasting.data import load_split
from converter.parity import MODES, layerwise_parity, match_layers, torch_modules

from conftest import (CONFIG_B_FOLDER, DEVICES, ETTH1, ETTH1_CSV, ETTH1_SPLIT, ORIGINAL_FOLDERS,
                      original_reference_model, record_parity, seeded_torch_model, slow_except)

FOLDERS = ORIGINAL_FOLDERS


def assert_passes(report, label):
    for mode in MODES:
        assert report.first_failure(mode) is None, f"{label} {mode}: {report.verdict()}\n{report.table()}"
    assert report.passed and not report.keras_only
    for mode in MODES:
        worst = report.worst(mode)
        record_parity(f"layerwise {label} {mode} (worst module)", report.dtype, report.batch, worst.max_abs)


@pytest.fixture(scope="module")
def etth1_windows():
    split, _ = load_split(ETTH1_CSV, "test", ETTH1["in_len"], ETTH1["out_len"], ETTH1_SPLIT)
    return split.windows(0, 4)[0]


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_etth1_configuration_on_real_windows(etth1_windows, dtype, device):
    torch_model = seeded_torch_model(ETTH1)
    report = layerwise_parity(torch_model, torch_to_keras(torch_model, dtype=dtype), etth1_windows, dtype,
                              batch=2, device=device)
    assert_passes(report, f"etth1 real windows {device}")
    # Every module that produced an output is in the report exactly once.
    names = [m.name for m in report.modes["chained"]]
    assert len(names) == len(set(names)) == len(torch_modules(torch_model))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("folder", slow_except(CONFIG_B_FOLDER, FOLDERS), ids=[f.name[:24] for f in FOLDERS])
@pytest.mark.parametrize("dtype", slow_except("float64", ["float32", "float64"]))
def test_original_fixtures(folder, dtype, device):
    torch_model = original_reference_model(folder)
    x = np.load(folder / "expected.npz")["x"][:6]
    report = layerwise_parity(torch_model, torch_to_keras(torch_model, dtype=dtype), x, dtype, batch=3,
                              device=device)
    assert_passes(report, f"{folder.name[:16]} {device}")


def test_a_module_without_keras_counterpart_fails(monkeypatch):
    from converter.parity import capture

    torch_model = seeded_torch_model(ETTH1 | dict(e_layers=1, d_model=16, d_ff=16, n_heads=2))
    keras_model = torch_to_keras(torch_model)
    real = capture.keras_layer_for
    monkeypatch.setattr(capture, "keras_layer_for",
                        lambda model, name: None if name.endswith("norm3") else real(model, name))
    report = layerwise_parity(torch_model, keras_model, np.zeros((1, 168, 7)), "float32")
    failing = [m for m in report.modes["chained"] if not m.passed]
    assert failing and all(m.name.endswith("norm3") and m.problem == "no Keras counterpart" for m in failing)
    assert report.first_failure("isolated").endswith("norm3") and not report.passed


def test_every_keras_layer_has_a_pytorch_twin():
    torch_model = seeded_torch_model(ETTH1)
    layers, orphans = match_layers(torch_model, torch_to_keras(torch_model))
    assert orphans == [] and all(layer is not None for layer in layers.values())
