"""`crossformer parity` and `crossformer summary`."""
import json

import keras
import pytest

from conftest import CONFIG_B_FOLDER, ETTH1_CSV, ETTH1_FOLDER, run_cli


@pytest.mark.slow
def test_parity_on_real_windows_passes_and_writes_json(tmp_path, capfd):
    code, out, err = run_cli(capfd, "parity", ETTH1_FOLDER, "--data", ETTH1_CSV, "--samples", "4", "--batch", "2",
                             "--json", tmp_path / "report.json")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("inputs: the first 4 test windows") and "the checkpoint scaler" in lines[0]
    assert lines[1].split()[:2] == ["module", "shape"] and lines[-1].startswith("PASS: all 324 modules agree")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and report["first_failure"] == {"chained": None, "isolated": None}
    assert len(report["modes"]["chained"]) == len(report["modes"]["isolated"]) == 324
    assert report["tolerance"] == {"max_abs": 1e-5, "max_rel": 1e-5}


@pytest.mark.slow
def test_parity_of_a_broken_keras_file_exits_1_and_names_the_module(tmp_path, capfd):
    assert run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", tmp_path / "m.keras")[0] == 0
    model = keras.saving.load_model(tmp_path / "m.keras")
    kernel = model.decoder.decode_layers[1].MLP1.layers[0].kernel  # square (d_model x d_model): transposable
    kernel.assign(keras.ops.transpose(kernel))
    model.save(tmp_path / "broken.keras")
    for mode in ("chained", "isolated"):
        code, out, _ = run_cli(capfd, "parity", CONFIG_B_FOLDER, "--keras", tmp_path / "broken.keras", "--mode", mode,
                               "--dtype", "float64")
        assert code == 1
        assert out.strip().splitlines()[-1] == \
            f"FAIL (float64): {mode}: first diverging module decoder.decode_layers.1.MLP1.0"


@pytest.mark.slow
def test_parity_bad_input_exits_2(tmp_path, capfd):
    code, _, err = run_cli(capfd, "parity", tmp_path / "missing")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert run_cli(capfd, "convert", ETTH1_FOLDER, "-o", tmp_path / "etth1.keras")[0] == 0
    code, _, err = run_cli(capfd, "parity", CONFIG_B_FOLDER, "--keras", tmp_path / "etth1.keras")
    assert code == 2 and "was built with" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capfd, "parity", CONFIG_B_FOLDER, "--data", ETTH1_CSV)
    assert code == 2 and "7 variables but the model has 3" in err


def test_summary_counts_agree(capfd):
    code, out, err = run_cli(capfd, "summary", ETTH1_FOLDER, "--depth", "0")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == ("sum(p.numel()) = 725,616; torchinfo total_params = 725,616; "
                                           "Keras count_params() = 725,616")
    assert "DIFFERENT" not in out and "encoder.encode_blocks.1.merge_layer.linear_trans" in out
