"""Training that is reproducible and survives being killed: the same --seed gives the same run, bit for bit;
a run killed with SIGKILL or stopped with Ctrl-C and resumed ends exactly where an uninterrupted run ends;
a run being trained is locked against a second `train`.

One small configuration on an ETTh1 slice, chosen so that every batch is full (fewer graph traces): 256
train windows (8 steps of 32), 32 validation and 32 test windows, dropout 0.2 (so the dropout seed
generators matter), type1 schedule (the rate halves after epoch 2), 3 epochs. The runs are shared by the
tests of this file (module fixture): an uninterrupted run in this process, the same in a subprocess, one
killed after epoch 1 and resumed, one stopped with SIGINT after epoch 1 or 2 and resumed.
"""
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest

from forecasting import TrainingOptions, train
from forecasting.resume import TrainingState
from forecasting.runs import _fingerprint, _original_options

from conftest import ETTH1_CSV, REPO, run_cli

SETTING = "Crossformer_slice_il24_ol12_sl6_win2_fa10_dm16_nh2_el1_itr0"
TIMEOUT = 900  # seconds a subprocess may take on a loaded 2-core machine


def train_argv(data, runs, *extra):
    return ["train", "--data", "slice", "--root-path", data, "--data-path", "slice.csv", "--data-split", "291,43,43",
            "--in-len", "24", "--out-len", "12", "--seg-len", "6", "--d-model", "16", "--d-ff", "16", "--n-heads", "2",
            "--e-layers", "1", "--train-epochs", "3", "--learning-rate", "1e-3", "--seed", "7", "--checkpoints", runs,
            "--verbose", "0", *extra]


def start(tmp_path, name, argv):
    """`python -m crossformer ARGV` in a subprocess (SIGINT behaving as at a terminal), output to files."""
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "crossformer", *map(str, argv)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_epoch(state, process, epoch):
    """Poll until the run's resumable state holds ``epoch`` complete epochs."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it was interrupted"
        if state.exists() and TrainingState.load(state).epoch >= epoch:
            return
        time.sleep(0.05)
    raise AssertionError(f"no state after epoch {epoch} within {TIMEOUT} s")


def wait_for_path(path, process):
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)


def run_record(folder):
    """(per-epoch losses, test metrics, model weights) of a finished run folder."""
    report = json.loads((folder / "metrics.json").read_text())
    losses = [(h["train_loss"], h["vali_loss"], h["test_loss"]) for h in report["history"]]
    weights = keras.saving.load_model(folder / "model.keras").get_weights()
    return {"losses": losses, "test": report["test"], "weights": weights, "report": report}


def biggest_difference(a, b):
    """Max abs difference of the losses, the test metrics and every weight of two run records."""
    losses = float(np.max(np.abs(np.subtract(a["losses"], b["losses"]))))
    metrics = max(abs(a["test"][k] - b["test"][k]) for k in a["test"])
    weights = max(float(np.max(np.abs(x - y))) for x, y in zip(a["weights"], b["weights"]))
    return max(losses, metrics, weights)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    (tmp / "data").mkdir()
    (tmp / "data" / "slice.csv").write_text("\n".join(ETTH1_CSV.read_text().splitlines()[:1201]) + "\n")
    data, result = tmp / "data", {"tmp": tmp}

    # Killed with SIGKILL after epoch 1; meanwhile a second `train` into the same run is refused by the lock.
    killed = start(tmp, "killed", train_argv(data, tmp / "killed"))
    wait_for_path(tmp / "killed" / f"{SETTING}.lock", killed)
    result["locked_out"] = run_cli_in_process(train_argv(data, tmp / "killed"))
    killed_state = tmp / "killed" / f"{SETTING}.resume.npz"
    wait_for_epoch(killed_state, killed, 1)
    killed.kill()
    killed.wait(TIMEOUT)
    # What was saved when the kill landed (another epoch may have ended between the poll and the signal).
    result["killed_after"] = TrainingState.load(killed_state).epoch
    # (a temporary state file, if the kill came mid-write, is hidden; the resumed run removes it)
    result["killed_left"] = sorted(p.name for p in (tmp / "killed").iterdir() if not p.name.startswith("."))

    # The same run uninterrupted in a subprocess, and stopped with Ctrl-C once epoch 1 is saved: two epochs
    # still to go, so the signal lands before the run ends even on a loaded machine (after epoch 2, it once
    # arrived only as epoch 3 ended). The epoch it names is read from the state it left.
    whole = start(tmp, "whole", train_argv(data, tmp / "whole"))
    assert whole.wait(TIMEOUT) == 0, (tmp / "whole.log").read_text()
    interrupted = start(tmp, "interrupted", train_argv(data, tmp / "interrupted"))
    interrupted_state = tmp / "interrupted" / f"{SETTING}.resume.npz"
    wait_for_epoch(interrupted_state, interrupted, 1)
    interrupted.send_signal(signal.SIGINT)
    result["interrupted_code"] = interrupted.wait(TIMEOUT)
    result["interrupted_after"] = TrainingState.load(interrupted_state).epoch
    result["interrupted_output"] = (tmp / "interrupted.log").read_text()
    result["interrupted_left"] = sorted(p.name for p in (tmp / "interrupted").iterdir())

    # Both resumed here; and the uninterrupted run once more, in this process.
    for name in ("killed", "interrupted"):
        result[f"{name}_resume_code"] = run_cli_in_process(train_argv(data, tmp / name, "--resume"))
    train(**train_options(data, tmp / "here"), log=lambda message: None)
    for name in ("whole", "here", "killed", "interrupted"):
        result[name] = run_record(tmp / name / SETTING)
    return result


def train_options(data, runs):
    return dict(data="slice", root_path=str(data), data_path="slice.csv", data_split="291,43,43", in_len=24,
                out_len=12, seg_len=6, d_model=16, d_ff=16, n_heads=2, e_layers=1, train_epochs=3,
                learning_rate=1e-3, seed=7, checkpoints=str(runs), verbose=0)


def run_cli_in_process(argv):
    """`crossformer ARGV` in this process from a module fixture (no capfd there): stdout through sys.stdout,
    stderr at file descriptor 2, where the command line writes its errors."""
    from crossformer.main import main

    out = io.StringIO()
    with tempfile.TemporaryFile() as err:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            with redirect_stdout(out):
                code = main([str(a) for a in argv])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        return code, out.getvalue(), err.read().decode()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_run_bit_for_bit(runs):
    whole, here = runs["whole"], runs["here"]
    assert whole["losses"] == here["losses"] and whole["test"] == here["test"]
    assert biggest_difference(whole, here) == 0.0
    assert whole["report"]["seed"] == 7 and len(whole["losses"]) == 3


@pytest.mark.slow
def test_a_run_killed_after_epoch_1_resumes_to_the_uninterrupted_result(runs):
    assert runs["killed_after"] >= 1 and runs["killed_left"] == [f"{SETTING}.lock", f"{SETTING}.resume.npz"]
    code, out, err = runs["killed_resume_code"]
    assert code == 0, err
    assert f"resuming {SETTING} after epoch {runs['killed_after']}" in out
    resumed = runs["killed"]
    assert resumed["report"]["resumed_after"] == [runs["killed_after"]]
    assert resumed["losses"] == runs["whole"]["losses"] and biggest_difference(resumed, runs["whole"]) == 0.0
    assert sorted(p.name for p in (runs["tmp"] / "killed").iterdir()) == [SETTING]  # state and lock removed


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_state_and_says_how_to_resume(runs):
    assert runs["interrupted_code"] == 130 and 1 <= runs["interrupted_after"] < 3
    last = runs["interrupted_output"].strip().splitlines()[-1]
    assert last == (f"crossformer train: interrupted: stopped after epoch {runs['interrupted_after']}, which is saved "
                    f"in {runs['tmp'] / 'interrupted' / SETTING}.resume.npz: run the same command with --resume to "
                    "continue"), last
    assert "Traceback" not in runs["interrupted_output"]
    assert runs["interrupted_left"] == [f"{SETTING}.resume.npz"]  # the lock is gone, nothing half-written
    code, _, err = runs["interrupted_resume_code"]
    assert code == 0, err
    assert biggest_difference(runs["interrupted"], runs["whole"]) == 0.0


@pytest.mark.slow
def test_a_run_being_trained_is_locked_against_a_second_train(runs):
    code, _, err = runs["locked_out"]
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{SETTING} is being trained by another process (pid " in err


def test_a_state_is_refused_without_resume_and_with_other_arguments(tmp_path, capfd):
    """Without --resume a state is not overwritten; with --resume and other arguments it is not continued."""
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    (data / "slice.csv").write_text("\n".join(ETTH1_CSV.read_text().splitlines()[:400]) + "\n")
    runs.mkdir()
    options = TrainingOptions(**train_options(data, runs))
    args = _original_options(options)
    TrainingState(_fingerprint(args, options, 7, data / "slice.csv"), epoch=2).save(runs / f"{SETTING}.resume.npz")
    code, _, err = run_cli(capfd, *train_argv(data, runs))
    assert code == 2 and "holds an interrupted run (2 epochs done): pass --resume to continue it" in err, err
    code, _, err = run_cli(capfd, *train_argv(data, runs, "--resume", "--learning-rate", "1e-2"))
    assert code == 2 and "continues a run with --learning_rate 0.001, not 0.01" in err, err
    assert sorted(p.name for p in runs.iterdir()) == [f"{SETTING}.resume.npz"]
    assert os.path.getsize(runs / f"{SETTING}.resume.npz") > 0


def test_the_lock_refuses_a_second_holder_and_is_removed_after(tmp_path):
    from converter.errors import OutputError
    from forecasting.resume import run_lock

    folder = tmp_path / "run"
    with run_lock(folder) as lock:
        assert lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(OutputError, match=rf"run is being trained by another process \(pid {os.getpid()};"):
            with run_lock(folder):
                pass
    assert not lock.exists()
    with run_lock(folder):  # free again
        pass


def test_the_state_round_trips_exactly_and_is_written_atomically(tmp_path):
    from forecasting.training import OriginalEpochEnd

    rng = np.random.default_rng(0)
    arrays = {name: [rng.standard_normal((3, 2)).astype("float32"), np.array([7, 9], "uint32")]
              for name in ("model", "optimizer", "best_weights")}
    loop = OriginalEpochEnd(None, None, None, 3, 1e-3, "type1")
    loop.history = [{"epoch": 1, "train_loss": 0.1 + 0.2, "vali_loss": 1 / 3, "test_loss": 2.0, "seconds": 1.5}]
    loop.stopping.best, loop.stopping.counter, loop.best_epoch = -1 / 3, 2, 1
    loop.best_weights = arrays["best_weights"]
    state = loop.capture(TrainingState({"seed": 7}, epoch=1, stopped=True, seconds=2.5, resumed_after=[1],
                                       model=arrays["model"], optimizer=arrays["optimizer"]))
    state.save(tmp_path / "s.resume.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["s.resume.npz"]
    loaded = TrainingState.load(tmp_path / "s.resume.npz")
    again = OriginalEpochEnd(None, None, None, 3, 1e-3, "type1")
    again.restore(loaded)
    assert again.history == loop.history and again.best_epoch == 1 and again.stopping.counter == 2
    assert again.stopping.best == -1 / 3 and (loaded.epoch, loaded.stopped, loaded.seconds) == (1, True, 2.5)
    for name, values in arrays.items():
        for got, want in zip(getattr(loaded, name), values):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    (tmp_path / "bad.resume.npz").write_bytes(b"not a state")
    with pytest.raises(Exception, match="cannot read the resumable state .*pass --force to start the run over"):
        TrainingState.load(tmp_path / "bad.resume.npz")
