"""The regression gate: the Keras model, loaded through the converter, must reproduce every module
output stored in the goldens of checkpoints/, which only checkpoints/regenerate_goldens.py writes."""
import importlib.util
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from converter import tolerance_for, torch_to_keras
from converter.parity import ROOT_NAME, capture_keras, flatten_arrays, keras_layer_for, layerwise_parity

from keras_model.config import with_current_names

from conftest import REPO, slow_except

GOLDEN_ROOT = REPO / "checkpoints"
GOLDENS = sorted(path.parent for path in GOLDEN_ROOT.glob("*/config.json"))


def load_golden(folder, dtype):
    expected = np.load(folder / f"expected_{dtype}.npz")
    return golden_config(folder), load_file(folder / "weights.safetensors"), np.load(folder / "inputs.npy"), expected


def golden_config(folder):
    """A golden's model arguments, under today's names (the legacy_mix golden says attention_mix, its name then)."""
    return with_current_names(json.loads((folder / "config.json").read_text())["config"])


def test_goldens_exist():
    assert len(GOLDENS) >= 3, f"no goldens under {GOLDEN_ROOT}: run checkpoints/regenerate_goldens.py"


@pytest.mark.parametrize("dtype", slow_except("float64", ["float32", "float64"]))
@pytest.mark.parametrize("folder", GOLDENS, ids=[g.name for g in GOLDENS])
def test_keras_reproduces_every_golden_module_output(folder, dtype):
    check_golden(folder, dtype)


def test_the_gate_fails_on_a_changed_model(monkeypatch):
    import keras_model

    monkeypatch.setattr(keras_model.numerics, "LAYER_NORM_EPSILON", 1e-3)
    with pytest.raises(AssertionError, match="first module beyond tolerance: pre_norm"):
        check_golden(GOLDENS[0], "float32")


def test_the_gate_holds_the_model_output_to_the_absolute_bound_alone(monkeypatch):
    """The model's own output moved by more than abs 1e-5 but less than abs + rel * |output|: every module
    before it is untouched, so the gate and the layer-by-layer engine must both fail at (model) by the one
    rule (Tolerance.passes_output), not let it through as a module of that magnitude would be."""
    import torch

    import keras_model
    import reference_torch

    tolerance = tolerance_for("float32")
    scales = {folder: float(np.max(np.abs(load_golden(folder, "float32")[3][f"{ROOT_NAME}|0|0"])))
              for folder in GOLDENS}
    folder = max(scales, key=scales.get)
    offset = tolerance.max_abs + 0.5 * tolerance.max_rel * scales[folder]
    assert tolerance.passes(offset + 1e-6, scales[folder])  # a module of that size would pass this far off
    real_call = keras_model.Crossformer.call
    monkeypatch.setattr(keras_model.Crossformer, "call", lambda self, *args, **kwargs:
                        real_call(self, *args, **kwargs) + offset)
    with pytest.raises(AssertionError, match=r"first module beyond tolerance: \(model\)"):
        check_golden(folder, "float32")

    config, weights, x, _ = load_golden(folder, "float32")
    torch_model = reference_torch.Crossformer(**config)
    torch_model.load_state_dict({key: torch.from_numpy(value) for key, value in weights.items()}, strict=True)
    report = layerwise_parity(torch_model, torch_to_keras(weights, config), x, "float32")
    assert report.first_failure("chained") == report.first_failure("isolated") == ROOT_NAME, report.verdict()


def check_golden(folder, dtype):
    config, weights, x, expected = load_golden(folder, dtype)
    model = torch_to_keras(weights, config, dtype=dtype)
    order = [str(name) for name in expected["__order__"]]
    layers = {name: keras_layer_for(model, "" if name == ROOT_NAME else name) for name in order}
    missing = [name for name, layer in layers.items() if layer is None]
    assert not missing, f"golden modules with no Keras layer: {missing[:5]}"
    records = capture_keras(model, x.astype(dtype), layers)
    tolerance = tolerance_for(dtype)
    for name in order:
        for call, record in enumerate(records.get(name, [])):
            for index, got in enumerate(flatten_arrays(record.output)):
                want = expected[f"{name}|{call}|{index}"]
                assert got.shape == want.shape, f"{name} call {call}: shape {got.shape} != golden {want.shape}"
                diff = float(np.max(np.abs(got.astype(np.float64) - want)))
                assert tolerance.passes_output(diff, float(np.max(np.abs(want))), name == ROOT_NAME), \
                    f"first module beyond tolerance: {name} (call {call}, output {index}): max abs diff {diff:.3e}"
        stored_calls = sum(1 for key in expected.files if key.startswith(f"{name}|") and key.endswith("|0"))
        assert len(records.get(name, [])) == stored_calls, f"{name}: ran {len(records.get(name, []))} times"


def test_script_reproduces_the_committed_goldens(tmp_path):
    """The goldens are what reference_torch computes now (regenerated only by the script, never here)."""
    spec = importlib.util.spec_from_file_location("regenerate_goldens", GOLDEN_ROOT / "regenerate_goldens.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--out", str(tmp_path)])
    for folder in GOLDENS:
        fresh = tmp_path / folder.name
        assert golden_config(fresh) == golden_config(folder)
        committed, regenerated = load_file(folder / "weights.safetensors"), load_file(fresh / "weights.safetensors")
        assert committed.keys() == regenerated.keys()
        assert all(np.array_equal(committed[k], regenerated[k]) for k in committed)
        np.testing.assert_array_equal(np.load(folder / "inputs.npy"), np.load(fresh / "inputs.npy"))
        for dtype in ("float32", "float64"):
            old, new = np.load(folder / f"expected_{dtype}.npz"), np.load(fresh / f"expected_{dtype}.npz")
            assert sorted(old.files) == sorted(new.files)
            for key in old.files:
                if key != "__order__":
                    diff = float(np.max(np.abs(old[key].astype(np.float64) - new[key]))) if old[key].size else 0.0
                    assert tolerance_for(dtype).passes(diff, float(np.max(np.abs(old[key])))), (folder.name, key)
