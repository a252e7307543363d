"""get_config/from_config, and .keras save -> load in a fresh process that imports only keras_model."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_model
from converter import torch_to_keras

from conftest import CONFIG_B, ETTH1, REPO, THREADS, keras_forward, seeded_series, seeded_torch_model

FRESH_PROCESS = """
import json, os, sys
import numpy as np
import keras
if keras.backend.backend() == "tensorflow":  # the test process's thread counts: the same sums in the same order
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TEST_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TEST_THREADS"]))
import keras_model  # registers the Crossformer classes; nothing else of this project is imported
report = {}
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    x = np.load(path + ".x.npy")
    np.save(path + ".y.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    report[path] = {"config": model.get_config(), "dtype": model.compute_dtype}
report["modules"] = sorted(m for m in ("torch", "reference_torch", "converter") if m in sys.modules)
print(json.dumps(report))
"""


def test_get_config_from_config_round_trip():
    config = dict(CONFIG_B, baseline=True, dropout=0.1)
    model = keras_model.Crossformer(**config, dtype="float64")
    clone = keras_model.Crossformer.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.compute_dtype == "float64" and clone.count_params() == model.count_params()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(revived) is keras_model.Crossformer and revived.get_config() == model.get_config()


@pytest.mark.slow
def test_saved_model_reloads_identically_in_a_fresh_process(tmp_path):
    cases = {"etth1_float32": (ETTH1, "float32", 4), "config_b_baseline_float64": (dict(CONFIG_B, baseline=True),
                                                                               "float64", 3)}
    expected = {}
    for name, (config, dtype, batch) in cases.items():
        model = torch_to_keras(seeded_torch_model(config), dtype=dtype)
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        x = seeded_series(config, batch).astype(dtype)
        np.save(path + ".x.npy", x)
        expected[path] = (keras_forward(model, x), model.get_config())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               TEST_THREADS=str(THREADS))
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, *expected], capture_output=True, text=True,
                            env=env, cwd=tmp_path, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.pop("modules") == [], "the fresh process needed more than keras_model"
    for path, (outputs, config) in expected.items():
        np.testing.assert_array_equal(np.load(path + ".y.npy"), outputs)  # identical, not merely close
        assert report[path]["config"] == json.loads(json.dumps(config))
        assert report[path]["dtype"] == config["dtype"]["config"]["name"]


def test_a_keras_file_written_by_version_0_1_still_loads():
    """parity_tests/fixtures/legacy_mix_written_by_0.1.0.keras was saved by version 0.1.0 (commit 3dc42e1), when
    legacy_mix was spelled attention_mix: the checkpoints/legacy_mix golden's weights with a scale statistic and
    training arguments. It loads, keeps all three, and computes the golden's model output."""
    from safetensors.numpy import load_file

    from converter import tolerance_for
    from converter.bridge import config_of

    model = keras.saving.load_model(REPO / "parity_tests" / "fixtures" / "legacy_mix_written_by_0.1.0.keras")
    assert type(model) is keras_model.Crossformer and model.legacy_mix is True
    assert "attention_mix" not in model.get_config() and model.get_config()["legacy_mix"] is True
    np.testing.assert_array_equal(model.scale_statistic["std"], [2.0, 0.5, 3.3])
    assert model.training_args == {"data": "custom", "learning_rate": 0.0005}
    golden = REPO / "checkpoints" / "legacy_mix"
    reference = torch_to_keras(load_file(golden / "weights.safetensors"), config_of(model))
    x = np.load(golden / "inputs.npy").astype("float32")
    np.testing.assert_array_equal(keras_forward(model, x), keras_forward(reference, x))
    want = np.load(golden / "expected_float32.npz")["(model)|0|0"]
    assert tolerance_for("float32").passes(float(np.max(np.abs(keras_forward(model, x) - want))))
