"""Shared cases and helpers for the parity suite."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported anywhere
os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 cases under KERAS_BACKEND=jax (read when jax is imported)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from reference_torch.testing import ETTH1_CONFIGURATION  # noqa: E402

# pytest-xdist's workers share the cores: each takes its share of threads, or PyTorch's OpenMP pool (which spins
# while it waits) and TensorFlow's oversubscribe them. Measured on 2 cores with other work running: one
# reference_torch forward of the ETTh1 fixture model took 0.71 s with 2 threads, 0.075 s with 1.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # the subprocesses tests start
torch.set_num_threads(THREADS)


def pytest_configure(config):
    """TensorFlow's thread pools too, in every process that runs tests; pytest-xdist's controller runs none and
    is spared the import (about 5 s before any worker starts)."""
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")
    if not controller and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ORIGINAL_FIXTURES = SHARED / "fixtures" / "original"
# Checkpoint folders written by the original release (their README in ../shared/fixtures says what each covers).
ORIGINAL_FOLDERS = sorted(path for path in ORIGINAL_FIXTURES.glob("*") if (path / "checkpoint.pth").is_file())
ETTH1_FOLDER = ORIGINAL_FIXTURES / "Crossformer_ETTh1_il96_ol24_sl12_win2_fa10_dm64_nh2_el3_itr0"  # trained 1 epoch
CONFIG_B_FOLDER = ORIGINAL_FIXTURES / "config_b_random"
ETTH1_CSV = SHARED / "data" / "ETT-small" / "ETTh1.csv"
ETTH1_SPLIT = (8640, 2880, 2880)  # the original's split of ETTh1 (row counts)

ETTH1 = ETTH1_CONFIGURATION
CONFIG_B = dict(data_dim=3, in_len=50, out_len=13, seg_len=4, win_size=3, factor=3, d_model=32, d_ff=64, n_heads=2,
                e_layers=2)
# The configurations every weight-copy parity test runs on.
PARITY_CASES = {
    "etth1": ETTH1,
    "config_b": CONFIG_B,
    "baseline": dict(CONFIG_B, baseline=True),
    # d_model as config B's (32 over 3 heads: 10 wide each, 30 in all): on JAX, where each op is compiled for
    # each new shape, shapes shared with config B are compiled once (d_model 30 cost the JAX probe 20 s more).
    "heads_not_dividing_d_model": dict(CONFIG_B, n_heads=3),
    "e_layers_1": dict(CONFIG_B, e_layers=1),
    "win_size_1": dict(CONFIG_B, win_size=1),
}


def seeded_torch_model(config, seed=0):
    """reference_torch with seeded weights, biases and norms perturbed off their defaults."""
    from reference_torch.testing import perturbed_model

    return perturbed_model(config, seed)


def original_reference_model(folder):
    """reference_torch built from an original folder's args.json, loaded strictly from its checkpoint.pth."""
    import reference_torch
    from keras_model.config import ORIGINAL_MODEL_ARGUMENTS

    args = json.loads((folder / "args.json").read_text())
    model = reference_torch.Crossformer(**{key: args[key] for key in ORIGINAL_MODEL_ARGUMENTS})
    model.load_state_dict(torch.load(folder / "checkpoint.pth", map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def seeded_series(config, batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, config["in_len"], config["data_dim"]))


def torch_forward(model, x, dtype, device="cpu"):
    model = model.to(device="cuda" if device == "gpu" else "cpu", dtype=getattr(torch, dtype))
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype=dtype)).to(model.enc_pos_embedding.device)).cpu().numpy()


def keras_forward(model, x, device="cpu"):
    import keras

    with keras.device(f"{device}:0"):
        return keras.ops.convert_to_numpy(model(np.asarray(x, dtype=model.compute_dtype), training=False))


def max_abs_diff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the suite needs ../shared beside the repository")
    return SHARED


# Measured differences, printed as one table at the end of the run (the closing notes quote it).
PARITY_RECORDS = []


def record_parity(case, dtype, batch, diff):
    PARITY_RECORDS.append((case, dtype, batch, diff))


def pytest_sessionfinish(session):
    """Under pytest-xdist, hand this worker's records to the controller (see pytest_testnodedown)."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["parity_records"] = json.dumps(PARITY_RECORDS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    PARITY_RECORDS.extend(tuple(r) for r in json.loads(getattr(node, "workeroutput", {}).get("parity_records", "[]")))


def pytest_terminal_summary(terminalreporter):
    if not PARITY_RECORDS:
        return
    terminalreporter.section("measured output max abs diffs (Keras vs reference_torch)")
    for case, dtype, batch, diff in sorted(PARITY_RECORDS, key=lambda r: (r[0], r[1], str(r[2]))):
        terminalreporter.write_line(f"{case:<44} {dtype:<8} batch {batch!s:<4} {diff:.3e}")


def gpu_unavailable_reason():
    """Why GPU cases cannot run here, or None when both PyTorch and the Keras backend see a GPU."""
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to PyTorch"
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return "TensorFlow sees no GPU"
    elif backend == "jax":
        import jax

        if not any(d.platform == "gpu" for d in jax.devices()):
            return "JAX sees no GPU"
    return None


# CPU and GPU: the same cases; GPU ones are skipped (with the reason) where no GPU is visible.
GPU_UNAVAILABLE = gpu_unavailable_reason()
DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(GPU_UNAVAILABLE is not None,
                                                                reason=str(GPU_UNAVAILABLE)))]
if GPU_UNAVAILABLE is None:  # on a GPU machine, Keras may run any test there: no TF32 anywhere in the suite
    from converter.parity import disable_tf32

    disable_tf32()


def run_cli(capfd, *argv):
    """Run `crossformer ARGV...` in-process; (exit code, stdout, stderr) as captured at the file descriptors."""
    from crossformer.main import main

    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def slow_except(quick, values):
    """``values`` for pytest.mark.parametrize with all but ``quick`` marked slow: the quick loop
    (`pytest -m "not slow"`) runs one case of the test, the full suite every case."""
    assert quick in values, (quick, values)
    return [value if value == quick else pytest.param(value, marks=pytest.mark.slow) for value in values]
