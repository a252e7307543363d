"""convert (original checkpoint -> verified .keras) and export_torch (.keras -> state_dict / folder)."""
import json
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import keras_model

from .atomic import atomic_write, atomic_write_folder, check_output
from .bridge import config_of, keras_to_torch, reference_model
from .checkpoint_files import load_keras_crossformer, read_checkpoint
from .configuration import checkpoint_config
from .errors import OutputError
from .original_args import ORIGINAL_DEFAULTS
from .parity.tolerances import diff_stats, tolerance_for
from .weight_map import load_state_dict_into_keras

VERIFY_BATCHES = (1, 4, 16)  # several batch sizes, so batch-order bugs (router tiling) cannot hide
# args.json for a model whose training run is unknown: the original's defaults, and its custom-data fields.
EXPORT_ARGS_DEFAULTS = dict(ORIGINAL_DEFAULTS, data="custom", data_path="custom.csv", data_split=[0.7, 0.1, 0.2])


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
    model: object = None  # the converted keras_model.Crossformer

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


# ------------------------------------------------------------------------------------------ convert
def verify_conversion(model, weights, config, dtype="float32", batches=VERIFY_BATCHES, seed=0):
    """Run reference_torch (same weights) and the Keras model on seeded series; the worst diffs over all batches."""
    import keras

    from .precision import disable_tf32

    disable_tf32()  # on a GPU, TF32 matmuls would move float32 results by ~1e-3
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
    """Convert a checkpoint folder or weights file to a .keras file; returns a ConversionReport (resolved config,
    parameter and tensor counts, notes, the verification, the converted model, the written path).

    ``config`` (an args.json-style dict or path) replaces the folder's args.json; ``overrides`` are model
    arguments stated as flags ({"n_heads": 4, "legacy_mix": True}); ``dtype`` is the Keras model's precision.
    With ``verify`` (default) the conversion is checked against reference_torch before anything is written;
    a failed check writes nothing (report.verify.passed is False). ``dst=None`` converts without writing.
    Bad input raises a CrossformerInputError (CheckpointError, ConfigError, OutputError) naming the problem.
    """
    start = time.perf_counter()
    if dst is not None:
        check_output(dst, force, suffix=".keras")
    checkpoint = read_checkpoint(src, allow_nonfinite=allow_nonfinite)
    notes = list(checkpoint.notes)
    model_config = checkpoint_config(checkpoint, config, overrides, notes)
    training_args = None
    if checkpoint.args:
        training_args = {k: v for k, v in checkpoint.args.items() if k not in keras_model.MODEL_ARGUMENTS}
    model = keras_model.Crossformer(**model_config, dtype=dtype, scale_statistic=checkpoint.scale_statistic,
                                    training_args=training_args)
    load_state_dict_into_keras(model, checkpoint.weights)
    report = ConversionReport(model_config, model.count_params(), len(checkpoint.weights), 0.0, notes=notes,
                              model=model)
    if model_config["legacy_mix"]:
        notes.append("pre-December-2023 attention (--legacy-mix): heads and positions mixed as that code did")
    if model_config["variant"] == "tslib":
        from .parity.summary import trainable_count

        trainable = trainable_count(model)
        notes.append(f"the count includes the {report.parameters - trainable:,} sinusoid values (pe rows) Keras "
                     f"stores; {trainable:,} trainable parameters, as PyTorch counts them")
    if checkpoint.scale_statistic is not None:
        notes.append("scale_statistic.pkl (mean, std) travels with the model: model.scale_statistic")
    if verify:
        report.verify = verify_conversion(model, checkpoint.weights, model_config, dtype)
    if dst is not None and (report.verify is None or report.verify.passed):
        atomic_write(dst, model.save)
        report.dst = Path(dst)
    report.seconds = time.perf_counter() - start
    return report


# ----------------------------------------------------------------------------------------- export
def args_json_for(model):
    """args.json as the original writes it: every CLI key in its order, the model's values for model keys."""
    args = dict(EXPORT_ARGS_DEFAULTS)
    args.update({k: v for k, v in (model.training_args or {}).items()})
    config = config_of(model)
    args.update({k: config[k] for k in keras_model.ORIGINAL_MODEL_ARGUMENTS})
    if config["legacy_mix"]:
        args["legacy_mix"] = True
    return args


def export_torch(model_path, dst, folder=False, force=False):
    """Write the .keras model's weights as a state_dict the original (or, for the tslib variant, Time-Series-
    Library) loads strictly, or a whole folder in the original's layout; returns (path, model config)."""
    check_output(dst, force, suffix=None if folder else ".pth", folder=folder)
    model = load_keras_crossformer(model_path)
    if folder and model.variant == "tslib":
        raise OutputError("Time-Series-Library checkpoints are a bare state_dict: export without --folder")
    state = keras_to_torch(model).state_dict()  # strict load into reference_torch checks every key and shape

    if not folder:
        atomic_write(dst, lambda tmp: torch.save(state, tmp))
        return Path(dst), config_of(model)

    def write_folder(tmp):
        torch.save(state, tmp / "checkpoint.pth")
        (tmp / "args.json").write_text(json.dumps(args_json_for(model), indent=True))
        if model.scale_statistic is not None:
            # Protocol 4: what the original's Python 3.7 pickle.dump wrote, readable by every Python since 3.4.
            (tmp / "scale_statistic.pkl").write_bytes(pickle.dumps(model.scale_statistic, protocol=4))

    atomic_write_folder(dst, write_folder)
    return Path(dst), config_of(model)
