"""Training that survives being killed: a lock on the run, and a resumable state written after every epoch.

Beside a run folder CHECKPOINTS/SETTING/ (written only when the run is complete) live, while it trains:
- SETTING.lock: fcntl.flock'ed by the process training it, so a second `train` into the same run is refused;
  the kernel releases the lock when that process dies, however it dies;
- SETTING.resume.npz: after every epoch, atomically replaced (temporary sibling, fsync, rename): every model
  variable (the weights and the dropout layers' seed-generator states), every optimizer variable (Adam's m and
  v, its step count and learning rate, so the schedule's position), the early-stopping counter, best score,
  best epoch and best weights, the history, and what the run was started with (arguments, seed, data
  checksum). The batch order needs no state: it is a function of (seed, epoch) (forecasting.batches).
  `train --resume` continues from it with fit(initial_epoch=k); the file is removed once the run folder is
  complete.
"""
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from converter.atomic import atomic_write
from converter.errors import CheckpointError, ConfigError, OutputError

# 2: TorchAdam keeps its moments in flat variables, runs of consecutive model variables of one dtype (1 had one
# per model variable; such a state is refused by name rather than misread).
STATE_FORMAT = 2


def state_path(folder):
    return Path(folder).with_name(Path(folder).name + ".resume.npz")


def lock_path(folder):
    return Path(folder).with_name(Path(folder).name + ".lock")


@contextmanager
def run_lock(folder):
    """Hold SETTING.lock for the block; OutputError when another live process holds it."""
    path = lock_path(folder)
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 32).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            raise OutputError(f"{folder} is being trained by another process (pid {holder}; lock {path}); wait for "
                              "it to end, or stop it and continue with --resume") from None
        try:  # the lock file may have been removed by its last holder after we opened it: lock the current one
            if os.stat(path).st_ino == os.fstat(handle).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(handle)
    try:
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.unlink(path)  # before unlocking, so a waiting process re-checks and locks a fresh file
        os.close(handle)


def remove_leftovers(folder):
    """Temporary siblings a killed process left behind (atomic writes of the state or the run folder); only
    called while holding the run's lock, so none of them is being written."""
    import shutil

    for path in Path(folder).parent.glob(f".{Path(folder).name}.*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def data_checksum(path):
    """SHA-256 of a data file: a resumed run must read the same data."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class TrainingState:
    """Everything a run needs to continue after ``epoch`` complete epochs as if it had not stopped."""

    fingerprint: dict  # what the run was started with; a resume must match it
    epoch: int = 0
    stopped: bool = False  # early stopping ended the run at ``epoch``
    seconds: float = 0.0  # training time so far
    resumed_after: list = field(default_factory=list)  # epochs after which earlier processes stopped
    history: list = field(default_factory=list)
    early_stopping: dict = field(default_factory=dict)  # {"best": score, "counter": n}
    best_epoch: int = 0
    model: list = field(default_factory=list)  # model.variables
    optimizer: list = field(default_factory=list)  # optimizer.variables
    best_weights: list = field(default_factory=list)  # model.get_weights() at best_epoch

    ARRAYS = ("model", "optimizer", "best_weights")

    def save(self, path):
        meta = {k: v for k, v in asdict(self).items() if k not in self.ARRAYS}
        arrays = {f"{name}_{i}": value for name in self.ARRAYS for i, value in enumerate(getattr(self, name))}
        counts = {name: len(getattr(self, name)) for name in self.ARRAYS}
        payload = json.dumps(dict(meta, format=STATE_FORMAT, counts=counts))

        def write(tmp):
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=np.array(payload), **arrays)

        atomic_write(path, write)

    @classmethod
    def load(cls, path):
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                if meta.pop("format", None) != STATE_FORMAT:
                    raise ValueError("unknown format")
                counts = meta.pop("counts")
                arrays = {name: [stored[f"{name}_{i}"] for i in range(counts[name])] for name in cls.ARRAYS}
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise CheckpointError(f"cannot read the resumable state {path} ({error}); pass --force to start the "
                                  "run over") from None
        return cls(**meta, **arrays)


def check_fingerprint(state, fingerprint, path):
    """ConfigError naming the first setting a resume would change (the run would not be the one it continues)."""
    for key, value in fingerprint.items():
        before = state.fingerprint.get(key)
        if isinstance(value, dict):
            changed = next((k for k in value if value[k] != (before or {}).get(k)), None)
            if changed is not None:
                raise ConfigError(f"{path} continues a run with --{changed} {(before or {}).get(changed)!r}, not "
                                  f"{value[changed]!r}: pass the same arguments with --resume, or --force to start "
                                  "over")
        elif value != before:
            raise ConfigError(f"{path} continues a run with {key} {before!r}, not {value!r}: pass the same arguments "
                              "with --resume, or --force to start over")


def _assign(variables, values, what, path):
    if [tuple(v.shape) for v in variables] != [tuple(np.shape(a)) for a in values]:
        raise CheckpointError(f"{path}: the stored {what} variables do not fit this model; pass --force to start over")
    for variable, value in zip(variables, values):
        variable.assign(value)


def restore_variables(model, state, path):
    """Put the state's model and optimizer variables into a compiled model (its optimizer built here)."""
    model.optimizer.build(model.trainable_variables)
    _assign(model.variables, state.model, "model", path)
    _assign(model.optimizer.variables, state.optimizer, "optimizer", path)


class EpochState(keras.callbacks.Callback):
    """After each epoch (and after OriginalEpochEnd, which comes before it in the callback list), write the
    state atomically. ``capture(epoch)`` returns the TrainingState at the end of 0-based ``epoch``."""

    def __init__(self, path, capture, writes=True):
        super().__init__()
        self.path, self.capture, self.writes = Path(path), capture, writes
        self.saved_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if self.writes:  # in a multi-process run, process 0 alone writes the state
            self.capture(epoch).save(self.path)
        self.saved_epoch = epoch + 1


def variable_values(variables):
    return [keras.ops.convert_to_numpy(v.value) for v in variables]


class Checkpoint:
    """The resumable state of one run: put into a fresh model before fit() when there is one, and written
    after every epoch (EpochState)."""

    def __init__(self, path, fingerprint, state=None, writes=True):
        self.path, self.fingerprint, self.state, self.writes = Path(path), fingerprint, state, writes
        self.seconds_before = state.seconds if state else 0.0
        self.resumed_after = state.resumed_after + [state.epoch] if state else []
        self.saver = None

    @property
    def epochs_saved(self):
        """Complete epochs on disk (0: none yet)."""
        if self.saver is not None and self.saver.saved_epoch is not None:
            return self.saver.saved_epoch
        return self.state.epoch if self.state else 0

    def restore(self, model, loop):
        """(epochs done, stopped early) after putting the state into ``model`` and ``loop`` (0, False: none)."""
        if self.state is None:
            return 0, False
        restore_variables(model, self.state, self.path)
        loop.restore(self.state)
        return self.state.epoch, self.state.stopped

    def callback(self, model, loop):
        import time

        started = time.perf_counter()

        def capture(epoch):
            state = TrainingState(self.fingerprint, epoch=epoch + 1, stopped=bool(model.stop_training),
                                  seconds=self.seconds_before + time.perf_counter() - started,
                                  resumed_after=self.resumed_after, model=variable_values(model.variables),
                                  optimizer=variable_values(model.optimizer.variables))
            return loop.capture(state)

        self.saver = EpochState(self.path, capture, self.writes)
        return self.saver
