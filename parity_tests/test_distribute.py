"""Data-parallel training (`crossformer train --distribute data`, forecasting.distribution) is the single-device
run: the same per-step losses, per-epoch losses, test metrics and final weights within
converter.parity.tolerances.DATA_PARALLEL_TOLERANCE (float64, 1e-12 absolute), on 2 virtual CPU devices in one
process and on two processes joined over localhost (JAX distributed, gloo collectives); and it is refused, one line
and exit 2, where it cannot run.

One small float64 configuration on an ETTh1 slice: 14 train windows in global batches of 7 (2 steps an epoch,
2 epochs), 7 validation and 7 test windows, dropout 0.2 (the dropout masks must not depend on the sharding).
A batch of 7 does not divide by 2 devices: every step is padded to 8 windows with a zero-weighted window, so the
padding is exercised at every step; every batch has one shape, so each run compiles one training step.
The runs are subprocesses (the device count, float64 and the process group are fixed when JAX starts); the
single-device reference and the 2-virtual-device run share one process, and the two-process run is compared
with the same reference. XLA's backend optimisation level 0 roughly halves the CPU compilations, which are
most of the cost; every run of a comparison uses the same flags.

Measured (largest differences to the single-device run): 2 virtual devices: per-step losses 1.3e-15, epoch losses
4.4e-16, test metrics 2.8e-14, weights 4.2e-13 (an attention key-projection bias, whose exact gradient is 0);
2 processes: the same, and exactly 0 against the 2-virtual-device run. On the loaded 2-core machine the module
took 438 s (193 s for the two runs of the fixture, 236 s for the two-process run, 6 s for the refusals).
"""
import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from converter.parity.tolerances import DATA_PARALLEL_TOLERANCE
from crossformer.startup import STARTUP_NOISE

from conftest import ETTH1_CSV, REPO, run_cli

SETTING = "Crossformer_slice_il24_ol12_sl6_win2_fa10_dm16_nh2_el1_itr0"
TIMEOUT = 900  # seconds a run may take on a loaded 2-core machine
FAST_XLA = "--xla_backend_optimization_level=0"
OPTIONS = dict(data="slice", data_path="slice.csv", data_split="49,18,18", in_len=24, out_len=12, seg_len=6,
               d_model=16, d_ff=16, n_heads=2, e_layers=1, train_epochs=2, learning_rate=1e-3, batch_size=7, seed=3,
               verbose=0)
# The single-device run (XLA, as the data-parallel step is), then the same on both virtual devices.
BOTH_RUNS = """
import sys
from forecasting import train
options = dict({options}, root_path=sys.argv[1])
train(**options, checkpoints=sys.argv[2], jit_compile=True)
train(**options, checkpoints=sys.argv[3], distribute="data")
"""


def environment(home, devices=1, **extra):
    """A float64 JAX process (KERAS_HOME's keras.json says floatx float64) with ``devices`` virtual CPU devices."""
    flags = FAST_XLA + (f" --xla_force_host_platform_device_count={devices}" if devices > 1 else "")
    return {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1", "KERAS_HOME": str(home), "XLA_FLAGS": flags,
            "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def cli_argv(data, runs, *extra):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.items()]
    return ["-m", "crossformer", "train", *flags, f"--root-path={data}", f"--checkpoints={runs}", *extra]


def run_record(folder):
    """Per-step and per-epoch losses, test metrics and weights (model.keras's weight file, read directly) of a run."""
    import h5py

    report = json.loads((folder / "metrics.json").read_text())
    with zipfile.ZipFile(folder / "model.keras") as archive:
        stored = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        weights = {}
        stored.visititems(lambda name, item: weights.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return {"steps": np.array([h["step_losses"] for h in report["history"]]),
            "epochs": np.array([(h["train_loss"], h["vali_loss"], h["test_loss"]) for h in report["history"]]),
            "test": np.array([report["test"][k] for k in sorted(report["test"])]), "weights": weights,
            "report": report}


def differences(run, reference):
    """Max abs difference of each compared quantity, and the weight where the weights differ most."""
    assert run["steps"].shape == reference["steps"].shape == (2, 2)
    assert sorted(run["weights"]) == sorted(reference["weights"])
    by_weight = {name: float(np.max(np.abs(run["weights"][name] - value)))
                 for name, value in reference["weights"].items() if value.size}
    worst = max(by_weight, key=by_weight.get)
    return {"step_losses": float(np.max(np.abs(run["steps"] - reference["steps"]))),
            "epoch_losses": float(np.max(np.abs(run["epochs"] - reference["epochs"]))),
            "test_metrics": float(np.max(np.abs(run["test"] - reference["test"]))),
            "weights": by_weight[worst], "worst_weight": worst}


def assert_equivalent(run, reference, label):
    found = differences(run, reference)
    print(f"{label}: {found}")  # the figures the README quotes (pytest -s shows them)
    for key in ("step_losses", "epoch_losses", "test_metrics", "weights"):
        assert DATA_PARALLEL_TOLERANCE.passes(found[key]), (label, key, found)
    assert all(w.dtype == np.float64 for w in run["weights"].values())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The single-device reference and the 2-virtual-device run, in one subprocess."""
    tmp = tmp_path_factory.mktemp("distribute")
    (tmp / "data").mkdir()
    (tmp / "data" / "slice.csv").write_text("\n".join(ETTH1_CSV.read_text().splitlines()[:121]) + "\n")
    (tmp / "home").mkdir()
    (tmp / "home" / "keras.json").write_text(json.dumps({"floatx": "float64", "backend": "jax"}))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", BOTH_RUNS.format(options=OPTIONS), tmp / "data", tmp / "single",
                           tmp / "virtual"], cwd=REPO, env=environment(tmp / "home", devices=2), capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    print(f"single-device and 2-virtual-device runs: {time.perf_counter() - started:.0f} s")
    return {"tmp": tmp, "log": done.stdout, "single": run_record(tmp / "single" / SETTING),
            "virtual": run_record(tmp / "virtual" / SETTING)}


@pytest.mark.slow
def test_two_virtual_devices_train_what_one_device_trains(runs):
    assert runs["virtual"]["report"]["devices"] == 2 and runs["single"]["report"]["devices"] == 1
    assert "data-parallel over 2 devices (1 process): global batch 7, each step padded to 8 windows" in runs["log"]
    assert_equivalent(runs["virtual"], runs["single"], "2 virtual devices vs 1 device")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_what_one_device_trains(runs):
    tmp, port = runs["tmp"], free_port()
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, *cli_argv(tmp / "data", tmp / "two", "--distribute=data",
                                                             f"--coordinator=127.0.0.1:{port}", "--num-processes=2",
                                                             f"--process-id={index}")],
                                  cwd=REPO, env=environment(tmp / "home"), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for index in range(2)]
    deadline = time.monotonic() + TIMEOUT
    while any(p.poll() is None for p in processes):
        if any(p.returncode not in (None, 0) for p in processes) or time.monotonic() > deadline:
            for p in processes:  # one failed (or time is up): the other would wait for it in a collective
                if p.poll() is None:
                    p.kill()
            break
        time.sleep(0.2)
    outputs = [p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[1][-3000:] for o in outputs]
    print(f"two-process run: {time.perf_counter() - started:.0f} s; process 0 said:\n{outputs[0][0]}")
    assert "data-parallel over 2 devices (2 processes)" in outputs[0][0]
    # process 0 speaks for the run (gloo's C++ line about the connection is not ours to silence)
    assert [line for line in outputs[1][0].splitlines() if not line.startswith("[Gloo]")] == []
    # Exactly one writer: the run folder alone (no lock, no state, no temporary left behind).
    assert sorted(p.name for p in (tmp / "two").iterdir()) == [SETTING]
    two = run_record(tmp / "two" / SETTING)
    assert two["report"]["devices"] == 2 and two["report"]["processes"] == 2
    assert_equivalent(two, runs["single"], "2 processes vs 1 device")
    assert_equivalent(two, runs["virtual"], "2 processes vs 2 virtual devices")


@pytest.mark.slow
def test_distribution_is_refused_where_it_cannot_run(tmp_path, capfd):
    """One line, exit 2, nothing written: one device (this process's JAX, or any other backend's), or process
    options that do not make a process group."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "slice.csv").write_text("\n".join(ETTH1_CSV.read_text().splitlines()[:121]) + "\n")
    argv = cli_argv(data, tmp_path / "runs")[2:]
    cases = [(argv + ["--process-id=1"], "--process-id needs --distribute data"),
             (argv + ["--distribute=data", "--coordinator=127.0.0.1:1234"], "--num-processes is missing"),
             (argv + ["--distribute=data", "--coordinator=nowhere", "--num-processes=2", "--process-id=0"],
              "--coordinator must be HOST:PORT"),
             (argv + ["--distribute=data", "--coordinator=127.0.0.1:1234", "--num-processes=2", "--process-id=2"],
              "--process-id must be in 0..1"),
             (argv + ["--distribute=pipeline"], "invalid choice")]
    for case, expected in cases:
        try:
            code, _, err = run_cli(capfd, *case)
        except SystemExit as parser_exit:  # argparse's own errors leave through sys.exit
            code, err = parser_exit.code, capfd.readouterr().err
        lines = [line for line in err.splitlines() if not STARTUP_NOISE.match(line)]  # TensorFlow's, if imported here
        assert code == 2 and len(lines) == 1 and lines[0].startswith("crossformer train: error: "), (case, err)
        assert expected in lines[0], (expected, err)
    # Other backends are refused before Keras starts; JAX with its one CPU device once it has started.
    for backend, devices, expected in (
            ("torch", 2, "needs the JAX backend (KERAS_BACKEND=jax), not torch: Keras's distribution API runs on JAX"),
            ("tensorflow", 2, "needs the JAX backend (KERAS_BACKEND=jax), not tensorflow"),
            ("jax", 1, "needs several devices, and JAX sees 1 (cpu:0); on CPU, XLA_FLAGS="
                       "--xla_force_host_platform_device_count=N makes N virtual devices")):
        done = subprocess.run([sys.executable, *cli_argv(data, tmp_path / "runs", "--distribute=data")], cwd=REPO,
                              env=environment(tmp_path, devices, KERAS_BACKEND=backend), capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("crossformer train: error: --distribute data ") and expected in done.stderr
    assert not (tmp_path / "runs").exists()
