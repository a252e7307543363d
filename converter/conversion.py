"""convert (original checkpoint -> verified .keras) and export_torch (.keras -> state_dict / folder)."""
import json
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import keras_model
import reference_torch

from .bridge import config_of, keras_to_torch
from .checkpoint import MODEL_KEYS, checkpoint_config, read_checkpoint
from .errors import CheckpointError, OutputError
from .tolerances import diff_stats, tolerance_for
from .weight_map import load_state_dict_into_keras

VERIFY_BATCHES = (1, 4, 16)  # several batch sizes, so batch-order bugs (router tiling) cannot hide
# The original command line's arguments, in args.json order (spec 3.2), with its defaults for the ones a
# model does not carry; data/data_path/data_split as the original writes them for a custom dataset.
ORIGINAL_ARGS_DEFAULTS = {
    "data": "custom", "root_path": "./datasets/", "data_path": "custom.csv", "data_split": [0.7, 0.1, 0.2],
    "checkpoints": "./checkpoints/", "in_len": 96, "out_len": 24, "seg_len": 6, "win_size": 2, "factor": 10,
    "data_dim": 7, "d_model": 256, "d_ff": 512, "n_heads": 4, "e_layers": 3, "dropout": 0.2, "baseline": False,
    "num_workers": 0, "batch_size": 32, "train_epochs": 20, "patience": 3, "learning_rate": 1e-4, "lradj": "type1",
    "itr": 1, "save_pred": False, "use_gpu": False, "gpu": 0, "use_multi_gpu": False, "devices": "0,1,2,3",
}


@dataclass
class VerifyResult:
    max_abs: float
    max_rel: float
    dtype: str
    batches: tuple

    @property
    def tolerance(self):
        return tolerance_for(self.dtype).max_abs

    @property
    def passed(self):
        return tolerance_for(self.dtype).passes(self.max_abs)


@dataclass
class ConversionReport:
    config: dict
    parameters: int
    tensors: int
    seconds: float
    dst: Path = None
    verify: VerifyResult = None
    notes: list = field(default_factory=list)

    def summary(self):
        head = f"{self.parameters:,} parameters ({self.tensors} tensors)"
        if self.verify is None:
            check = "not verified (--no-verify)"
        else:
            v = self.verify
            check = (f"verified vs reference_torch on {len(v.batches)} seeded batches ({'+'.join(map(str, v.batches))} "
                     f"series, {v.dtype}): max abs diff {v.max_abs:.2e}, max rel diff {v.max_rel:.2e} "
                     f"(tolerance {v.tolerance:.0e}) {'PASS' if v.passed else 'FAIL'}")
        return f"{head} | {check} | {self.seconds:.1f} s"


# ----------------------------------------------------------------------------------------------- output
def check_output(dst, force, suffix=".keras"):
    """Fail early (before any heavy work) if dst cannot be written."""
    dst = Path(dst)
    if suffix and dst.suffix != suffix:
        raise OutputError(f"{dst}: the output must end in {suffix}")
    if dst.exists() and not force:
        raise OutputError(f"{dst} exists; pass --force to overwrite it")
    if dst.exists() and dst.is_dir() != (suffix is None):
        raise OutputError(f"{dst} exists and is a {'folder' if dst.is_dir() else 'file'}")
    parent = dst.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {dst}: {parent} is not an existing folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise OutputError(f"cannot write {dst}: {error.strerror or error}") from None
    return dst


def _apply_umask(path, mode):
    """mkstemp/mkdtemp create private (0600/0700) entries; give the result the permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _atomic_write(dst, write):
    """write(tmp_path) into a temporary sibling of dst, then rename it over dst; nothing half-written remains."""
    dst = Path(dst)
    handle, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=dst.suffix)
    os.close(handle)
    try:
        write(tmp)
        _apply_umask(tmp, 0o666)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _atomic_write_folder(dst, write):
    """write(tmp_folder) into a temporary sibling folder, then move it to dst (replacing an old one last)."""
    dst = Path(dst)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    try:
        write(tmp)
        _apply_umask(tmp, 0o777)
        if dst.exists():
            old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.old."))
            os.replace(dst, old / dst.name)
            os.replace(tmp, dst)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------------------ convert
def reference_model(config, weights, dtype="float32"):
    """reference_torch built from numpy weights (strict load), in eval mode."""
    model = reference_torch.Crossformer(**config)
    model.load_state_dict({key: torch.from_numpy(np.asarray(value)) for key, value in weights.items()}, strict=True)
    return model.to(getattr(torch, dtype)).eval()


def verify_conversion(model, weights, config, dtype="float32", batches=VERIFY_BATCHES, seed=0):
    """Run reference_torch (same weights) and the Keras model on seeded series; the worst diffs over all batches."""
    import keras

    torch_model = reference_model(config, weights, dtype)
    rng = np.random.default_rng(seed)
    worst_abs = worst_rel = 0.0
    for batch in batches:
        x = rng.standard_normal((batch, config["in_len"], config["data_dim"])).astype(dtype)
        with torch.no_grad():
            expected = torch_model(torch.from_numpy(x)).numpy()
        got = keras.ops.convert_to_numpy(model(x, training=False))
        max_abs, max_rel = diff_stats(got, expected)
        worst_abs, worst_rel = max(worst_abs, max_abs), max(worst_rel, max_rel)
    return VerifyResult(worst_abs, worst_rel, dtype, tuple(batches))


def convert(src, dst=None, config=None, overrides=None, force=False, verify=True, allow_nonfinite=False,
            dtype="float32"):
    """Convert a checkpoint folder or weights file to a .keras file; returns a ConversionReport.

    With ``verify`` (default) the conversion is checked against reference_torch before anything is written;
    a failed check writes nothing (report.verify.passed is False). ``dst=None`` converts without writing.
    """
    start = time.perf_counter()
    if dst is not None:
        check_output(dst, force)
    checkpoint = read_checkpoint(src, allow_nonfinite=allow_nonfinite)
    notes = list(checkpoint.notes)
    model_config = checkpoint_config(checkpoint, config, overrides, notes)
    training_args = None
    if checkpoint.args:
        training_args = {k: v for k, v in checkpoint.args.items() if k not in MODEL_KEYS}
    model = keras_model.Crossformer(**model_config, dtype=dtype, scale_statistic=checkpoint.scale_statistic,
                                    training_args=training_args)
    load_state_dict_into_keras(model, checkpoint.weights)
    report = ConversionReport(model_config, model.count_params(), len(checkpoint.weights), 0.0, notes=notes)
    if model_config["attention_mix"]:
        notes.append("pre-December-2023 attention (--legacy-mix): heads and positions mixed as that code did")
    if model_config["variant"] == "tslib":
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        notes.append(f"the count includes the {report.parameters - trainable:,} sinusoid values (pe rows) Keras "
                     f"stores; {trainable:,} trainable parameters, as PyTorch counts them")
    if checkpoint.scale_statistic is not None:
        notes.append("scale_statistic.pkl (mean, std) travels with the model: model.scale_statistic")
    if verify:
        report.verify = verify_conversion(model, checkpoint.weights, model_config, dtype)
    if dst is not None and (report.verify is None or report.verify.passed):
        _atomic_write(dst, model.save)
        report.dst = Path(dst)
    report.seconds = time.perf_counter() - start
    report.model = model
    return report


# ----------------------------------------------------------------------------------------- export
def load_keras_crossformer(path):
    """A .keras file holding a keras_model.Crossformer (safe_mode: no lambdas are deserialised)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    try:
        # compile=False: parity, export and inference need no optimizer state (and it is not read at all).
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        first_line = str(error).splitlines()[0][:160] if str(error) else ""
        raise CheckpointError(f"{path} is not a readable .keras model ({type(error).__name__}: {first_line})") from None
    if not isinstance(model, keras_model.Crossformer):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a keras_model.Crossformer")
    return model


def original_args(model):
    """args.json as the original writes it: every CLI key in its order, the model's values for model keys."""
    args = dict(ORIGINAL_ARGS_DEFAULTS)
    args.update({k: v for k, v in (model.training_args or {}).items()})
    config = config_of(model)
    args.update({k: config[k] for k in MODEL_KEYS if k not in ("attention_mix", "variant")})
    if config["attention_mix"]:
        args["attention_mix"] = True
    return args


def export_torch(model_path, dst, folder=False, force=False):
    """Write the .keras model's weights as a state_dict the original (or, for the tslib variant, Time-Series-
    Library) loads strictly, or a whole folder in the original's layout; returns (path, model config)."""
    check_output(dst, force, suffix=None if folder else ".pth")
    model = load_keras_crossformer(model_path)
    if folder and model.variant == "tslib":
        raise OutputError("Time-Series-Library checkpoints are a bare state_dict: export without --folder")
    state = keras_to_torch(model).state_dict()  # strict load into reference_torch checks every key and shape

    if not folder:
        _atomic_write(dst, lambda tmp: torch.save(state, tmp))
        return Path(dst), config_of(model)

    def write_folder(tmp):
        torch.save(state, tmp / "checkpoint.pth")
        (tmp / "args.json").write_text(json.dumps(original_args(model), indent=True))
        if model.scale_statistic is not None:
            (tmp / "scale_statistic.pkl").write_bytes(pickle.dumps(model.scale_statistic))

    _atomic_write_folder(dst, write_folder)
    return Path(dst), config_of(model)
