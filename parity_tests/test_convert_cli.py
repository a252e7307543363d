"""`crossformer convert` / `export-torch` and the converter's Python API.

Over ~300 lines: one table of bad inputs and one end-to-end check per original-release folder, both for the one
command pair, read best in one place.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import torch

import keras_model
import reference_torch
from converter import (CheckpointError, ConfigError, WeightMapError, convert, keras_to_torch, load_checkpoint,
                       tolerance_for, torch_to_keras)

from conftest import (CONFIG_B, CONFIG_B_FOLDER, ETTH1_FOLDER, ORIGINAL_FOLDERS, REPO, keras_forward, max_abs_diff,
                      record_parity, run_cli, seeded_series, seeded_torch_model, slow_except)

# Every folder the original release wrote (ETTh1 trained, config B and the three public_* random models).
FOLDERS = ORIGINAL_FOLDERS
CONFIG_B_FLAGS = ["--n-heads", "2", "--in-len", "50", "--out-len", "13", "--no-baseline"]


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.fixture(scope="module")
def config_b_state():
    return torch.load(CONFIG_B_FOLDER / "checkpoint.pth", weights_only=True)


# ------------------------------------------------------------------------------- the original fixtures
def test_every_original_fixture_is_here():
    assert {ETTH1_FOLDER.name, CONFIG_B_FOLDER.name, "public_baseline", "public_uneven_heads",
            "public_win1_one_layer"} <= {folder.name for folder in FOLDERS}


@pytest.mark.parametrize("folder", slow_except(CONFIG_B_FOLDER, FOLDERS), ids=[f.name[:24] for f in FOLDERS])
@pytest.mark.parametrize("dtype", slow_except("float32", ["float32", "float64"]))
def test_every_original_folder_converts_and_matches_expected(tmp_path, capfd, folder, dtype):
    """End to end and golden-free: `crossformer convert FOLDER` (its args.json, no flags), then the saved
    .keras file against what the original release itself computed (expected.npz), under the policy."""
    out = tmp_path / "model.keras"
    code, stdout, err = run_cli(capfd, "convert", folder, "-o", out, "--dtype", dtype)
    assert code == 0, err
    assert "PASS" in stdout and out.is_file() and leftovers(tmp_path) == ["model.keras"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would create it, not mkstemp's 0600
    model = keras.saving.load_model(out)
    expected = np.load(folder / "expected.npz")
    diff = max_abs_diff(keras_forward(model, expected["x"]), expected["y32" if dtype == "float32" else "y64"])
    record_parity(f"convert CLI .keras vs original: {folder.name[:16]}", dtype, len(expected["x"]), diff)
    assert tolerance_for(dtype).passes(diff), diff
    args = json.loads((folder / "args.json").read_text())
    arguments = keras_model.ORIGINAL_MODEL_ARGUMENTS
    assert {k: model.get_config()[k] for k in arguments} == {k: args[k] for k in arguments}


@pytest.mark.slow
def test_scale_statistic_travels_with_the_model(tmp_path):
    report = convert(ETTH1_FOLDER, tmp_path / "m.keras")
    model = keras.saving.load_model(tmp_path / "m.keras")
    with open(ETTH1_FOLDER / "scale_statistic.pkl", "rb") as handle:
        original = pickle.load(handle)  # the fixture is trusted; this checks our restricted reader against pickle
    for key in ("mean", "std"):
        np.testing.assert_array_equal(model.scale_statistic[key], original[key])
        np.testing.assert_array_equal(report.model.scale_statistic[key], original[key])
    raw = np.arange(14.0).reshape(2, 7)
    np.testing.assert_allclose(model.denormalize(model.normalize(raw)), raw, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.normalize(raw), (raw - original["mean"]) / original["std"])


# ------------------------------------------------------------------------------- accepted weight files
def _write(path, state):
    torch.save(state, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["plain", "state_dict", "model", "model_state_dict", "module_prefix",
                                     "float16", "bfloat16", "float64", "safetensors"])
def test_weight_file_variants_convert_from_flags(tmp_path, capfd, config_b_state, variant):
    state = dict(config_b_state)
    if variant in ("state_dict", "model", "model_state_dict"):
        source = _write(tmp_path / "w.pth", {variant: state, "epoch": 3, "optimizer": {"lr": 1e-4}})
    elif variant == "module_prefix":
        source = _write(tmp_path / "w.pt", {f"module.{k}": v for k, v in state.items()})
    elif variant in ("float16", "bfloat16", "float64"):
        source = _write(tmp_path / "w.pth", {k: v.to(getattr(torch, variant)) for k, v in state.items()})
    elif variant == "safetensors":
        from safetensors.torch import save_file

        source = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, source)
    else:
        source = _write(tmp_path / "w.pth", state)
    code, stdout, err = run_cli(capfd, "convert", source, "-o", tmp_path / "m.keras", *CONFIG_B_FLAGS)
    assert code == 0, err
    if variant in ("float16", "bfloat16", "float64"):
        assert f"cast 269 {variant} tensor(s) to float32" in stdout
    if variant == "module_prefix":
        assert "removed the 'module.' prefix" in stdout
    model = keras.saving.load_model(tmp_path / "m.keras")
    expected = np.load(CONFIG_B_FOLDER / "expected.npz")
    # Low-precision copies legitimately move outputs; the exact variants must reproduce the original.
    if variant not in ("float16", "bfloat16"):
        assert tolerance_for("float32").passes(max_abs_diff(keras_forward(model, expected["x"]), expected["y32"]))


def test_config_flag_replaces_a_missing_args_json(tmp_path, capfd):
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER / "checkpoint.pth", "-o", tmp_path / "m.keras",
                           "--config", CONFIG_B_FOLDER / "args.json")
    assert code == 0, err


# ------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad(tmp_path_factory, config_b_state):
    """Every kind of bad input the issue lists, built once."""
    root = tmp_path_factory.mktemp("bad")
    marker = root / "CODE_RAN"
    data = (CONFIG_B_FOLDER / "checkpoint.pth").read_bytes()

    class RunsCode:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    files = {"empty": b"", "truncated": data[: len(data) // 2], "random": np.random.default_rng(0).bytes(4096)}
    for name, content in files.items():
        (root / f"{name}.pth").write_bytes(content)
    torch.save({"weights": torch.zeros(3), "payload": RunsCode()}, root / "runs_code.pth")
    (root / "runs_code_raw.pth").write_bytes(pickle.dumps(RunsCode()))
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).state_dict(),
               root / "other_model.pth")
    nan_state = dict(config_b_state)
    nan_state["decoder.decode_layers.1.MLP1.0.weight"] = nan_state["decoder.decode_layers.1.MLP1.0.weight"].clone()
    nan_state["decoder.decode_layers.1.MLP1.0.weight"][0, :3] = torch.tensor([float("nan"), float("inf"), 1.0])
    torch.save(nan_state, root / "nan.pth")
    wrong_shape = dict(config_b_state)
    wrong_shape["decoder.decode_layers.2.linear_pred.weight"] = torch.zeros(3, 32)
    torch.save(wrong_shape, root / "wrong_shape.pth")

    def folder(name, args=None, pkl=None):
        path = root / name
        path.mkdir()
        shutil.copy(CONFIG_B_FOLDER / "checkpoint.pth", path / "checkpoint.pth")
        (path / "args.json").write_text(json.dumps(args or json.loads((CONFIG_B_FOLDER / "args.json").read_text())))
        if pkl is not None:
            (path / "scale_statistic.pkl").write_bytes(pkl)
        return path

    args = json.loads((CONFIG_B_FOLDER / "args.json").read_text())
    folder("args_contradict_shapes", dict(args, d_model=64))
    folder("evil_scaler", pkl=pickle.dumps({"mean": np.zeros(3), "std": RunsCode()}))
    # Tensors the original can build but not run: one input segment merged with win_size 3.
    cannot_run = dict(config_b_state)
    cannot_run["enc_pos_embedding"] = cannot_run["enc_pos_embedding"][:, :, :1].clone()
    path = root / "cannot_run"
    path.mkdir()
    torch.save(cannot_run, path / "checkpoint.pth")
    (path / "args.json").write_text(json.dumps(dict(args, in_len=4)))
    (root / "not_a_folder.txt").write_text("a file, not a folder")
    (root / "existing.keras").write_bytes(b"keep me")
    return root, marker


BAD_CASES = {  # name -> (argv after 'convert', fragments the one-line message must contain)
    "missing path": (["{root}/nope.pth"], ["nope.pth", "no such file"]),
    "empty file": (["{root}/empty.pth"], ["empty.pth", "empty (0 bytes)"]),
    "truncated file": (["{root}/truncated.pth"], ["truncated.pth", "truncated or corrupted"]),
    "random bytes": (["{root}/random.pth"], ["random.pth", "not a PyTorch checkpoint"]),
    "code-running .pth": (["{root}/runs_code.pth"], ["runs_code.pth", "(exec)", "refused without running"]),
    "code-running raw pickle": (["{root}/runs_code_raw.pth"], ["builtins.exec", "refused without running"]),
    "code-running scale_statistic.pkl": (["{root}/evil_scaler"],
                                         ["scale_statistic.pkl", "refused to load builtins.exec"]),
    "different model": (["{root}/other_model.pth"], ["not a Crossformer state_dict", "missing enc_pos_embedding",
                                                     "unexpected: 0.bias, 0.weight, 2.bias"]),
    "shapes contradict args.json": (["{root}/args_contradict_shapes"],
                                    ["args.json says d_model=64", "tensors say 32",
                                     "enc_pos_embedding (1, 3, 13, 32)"]),
    "a tensor of the wrong shape": (["{root}/wrong_shape.pth", *CONFIG_B_FLAGS],
                                    ["decoder.decode_layers.2.linear_pred.weight", "expected (4, 32)", "got (3, 32)"]),
    "NaN/Inf weights": (["{root}/nan.pth", *CONFIG_B_FLAGS],
                        ["non-finite", "decoder.decode_layers.1.MLP1.0.weight", "--allow-nonfinite"]),
    "flags missing": (["{root}/wrong_shape.pth"], ["--n-heads", "--in-len (the tensors allow 49..52)", "--baseline"]),
    "flag contradicts tensors": (["{root}/wrong_shape.pth", *CONFIG_B_FLAGS, "--d-model", "64"],
                                 ["--d-model says d_model=64", "tensors say 32"]),
    "configuration the model cannot run": (["{root}/cannot_run"], ["cannot run", "win_size=3"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gets_one_line_and_exit_2(bad, tmp_path, capfd, case):
    root, marker = bad
    argv, fragments = BAD_CASES[case]
    out = tmp_path / "out.keras"
    code, _, err = run_cli(capfd, "convert", *[a.format(root=root) for a in argv], "-o", out)
    assert_one_line_error(code, err, *fragments)
    assert not marker.exists(), "a checkpoint's code ran"
    assert leftovers(tmp_path) == [], "something was written"


def test_nonfinite_weights_convert_when_allowed(bad, tmp_path, capfd):
    root, _ = bad
    code, _, err = run_cli(capfd, "convert", root / "nan.pth", "-o", tmp_path / "m.keras", *CONFIG_B_FLAGS,
                           "--allow-nonfinite", "--no-verify")
    assert code == 0, err
    assert (tmp_path / "m.keras").is_file()


def test_existing_output_is_kept_without_force(bad, capfd):
    root, _ = bad
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", root / "existing.keras")
    assert_one_line_error(code, err, "existing.keras exists", "--force")
    assert (root / "existing.keras").read_bytes() == b"keep me"


@pytest.mark.slow
def test_force_replaces_existing_output(tmp_path, capfd):
    out = tmp_path / "m.keras"
    out.write_bytes(b"old")
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", out, "--force")
    assert code == 0, err
    assert isinstance(keras.saving.load_model(out), keras_model.Crossformer)


def test_unwritable_output_locations(bad, capfd):
    root, _ = bad
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", root / "not_a_folder.txt" / "m.keras")
    assert_one_line_error(code, err, "cannot write", "not an existing folder")
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("/sys is writable on this machine: no unwritable folder to test with")
    except OSError:
        pass
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", "/sys/m.keras")
    assert_one_line_error(code, err, "cannot write /sys/m.keras")


def test_output_must_be_a_keras_file(tmp_path, capfd):
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", tmp_path / "m.h5")
    assert_one_line_error(code, err, "must end in .keras")


def test_failed_verification_exits_1_and_writes_nothing(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(keras_model.numerics, "LAYER_NORM_EPSILON", 1e-3)  # the failed public port's bug
    code, _, err = run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", tmp_path / "m.keras")
    assert code == 1 and "FAIL" in err and "nothing written" in err
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_real_process_refuses_code_and_prints_no_traceback(bad, tmp_path):
    root, marker = bad
    for source in (root / "runs_code.pth", root / "evil_scaler"):
        result = subprocess.run([sys.executable, "-m", "crossformer", "convert", str(source), "-o",
                                 str(tmp_path / "m.keras")], capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not marker.exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- the reverse direction
def test_pth_to_keras_to_pth_is_bit_identical(tmp_path, capfd, config_b_state):
    assert run_cli(capfd, "convert", CONFIG_B_FOLDER, "-o", tmp_path / "m.keras")[0] == 0
    code, _, err = run_cli(capfd, "export-torch", tmp_path / "m.keras", "-o", tmp_path / "back.pth")
    assert code == 0, err
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert list(back) == list(config_b_state)
    assert all(back[k].dtype == torch.float32 and torch.equal(back[k], config_b_state[k]) for k in back)


@pytest.mark.slow
def test_export_folder_is_what_the_original_writes(tmp_path, capfd):
    assert run_cli(capfd, "convert", ETTH1_FOLDER, "-o", tmp_path / "m.keras")[0] == 0
    code, _, err = run_cli(capfd, "export-torch", tmp_path / "m.keras", "-o", tmp_path / "folder", "--folder")
    assert code == 0, err
    assert leftovers(tmp_path / "folder") == ["args.json", "checkpoint.pth", "scale_statistic.pkl"]
    assert json.loads((tmp_path / "folder" / "args.json").read_text()) == \
        json.loads((ETTH1_FOLDER / "args.json").read_text())
    assert (tmp_path / "folder" / "scale_statistic.pkl").read_bytes() != b""
    original = torch.load(ETTH1_FOLDER / "checkpoint.pth", weights_only=True)
    exported = torch.load(tmp_path / "folder" / "checkpoint.pth", weights_only=True)
    assert all(torch.equal(original[k], exported[k]) for k in original) and list(original) == list(exported)
    # And the folder converts again, with the same statistic.
    assert run_cli(capfd, "convert", tmp_path / "folder", "-o", tmp_path / "again.keras")[0] == 0
    again = keras.saving.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(again.scale_statistic["std"], keras.saving.load_model(tmp_path / "m.keras")
                                  .scale_statistic["std"])


def test_export_refuses_bad_models(tmp_path, capfd):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    code, _, err = run_cli(capfd, "export-torch", tmp_path / "junk.keras", "-o", tmp_path / "w.pth")
    assert_one_line_error(code, err, "junk.keras", "not a readable .keras model")
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    code, _, err = run_cli(capfd, "export-torch", tmp_path / "other.keras", "-o", tmp_path / "w.pth")
    assert_one_line_error(code, err, "not a keras_model.Crossformer")
    assert sorted(leftovers(tmp_path)) == ["junk.keras", "other.keras"]


# ------------------------------------------------------------------------------- the Python API
def test_python_api(tmp_path):
    config, weights = load_checkpoint(CONFIG_B_FOLDER)
    assert config["seg_len"] == 4 and all(v.dtype == np.float32 for v in weights.values())
    with pytest.raises(ConfigError, match="--n-heads"):
        load_checkpoint(CONFIG_B_FOLDER / "checkpoint.pth")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing")
    model = torch_to_keras(weights, config)
    back = keras_to_torch(model)
    assert isinstance(back, reference_torch.Crossformer)
    assert all(torch.equal(back.state_dict()[k], torch.from_numpy(weights[k])) for k in weights)
    extra = dict(weights, **{"extra.weight": np.zeros(2, np.float32)})
    with pytest.raises(WeightMapError, match="unexpected 1 key"):
        torch_to_keras(extra, config)
    report = convert(CONFIG_B_FOLDER, tmp_path / "m.keras")
    assert report.verify.passed and report.parameters == 134_380


def test_keras_model_round_trip_through_torch_keeps_outputs():
    torch_model = seeded_torch_model(CONFIG_B)
    model = torch_to_keras(torch_model)
    x = seeded_series(CONFIG_B, 2).astype("float32")
    with torch.no_grad():
        again = keras_to_torch(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(again, torch_model(torch.from_numpy(x)).detach().numpy())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_scale_statistic_pickles_of_any_protocol_are_read(tmp_path, protocol):
    """Protocol 2 spells array bytes as _codecs.encode(text, 'latin1'), protocol 5 uses _frombuffer; both are
    admitted in exactly those forms (Python 3.14 pickles with protocol 5 by default)."""
    from converter.checkpoint_files import read_scale_statistic

    statistic = {"mean": np.linspace(-1, 1, 7), "std": np.linspace(0.5, 2, 7)}
    (tmp_path / "s.pkl").write_bytes(pickle.dumps(statistic, protocol=protocol))
    read = read_scale_statistic(tmp_path / "s.pkl")
    assert all(np.array_equal(read[k], statistic[k]) for k in statistic)


def test_codecs_encode_is_admitted_for_latin1_only(tmp_path):
    import codecs

    from converter.checkpoint_files import read_scale_statistic

    class OtherCodec:
        def __reduce__(self):
            return (codecs.encode, ("payload", "rot13"))

    (tmp_path / "s.pkl").write_bytes(pickle.dumps({"mean": OtherCodec(), "std": np.ones(3)}, protocol=2))
    with pytest.raises(CheckpointError, match="_codecs.encode with encoding 'rot13'"):
        read_scale_statistic(tmp_path / "s.pkl")
