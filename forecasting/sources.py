"""Reading a run back: one of our run folders (model.keras + args.json + scale_statistic.json), a .keras
file, or an original checkpoint folder (converted now and verified); and what a run says without loading it
(its configuration and scaler, so data can be checked before a model is loaded)."""
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.checkpoint_files import load_keras_crossformer, read_args_json
from converter.errors import CheckpointError, ConfigError

from .data import NAMED_DATASETS


def load_run(source, verify=True, legacy_mix=False):
    """(Keras model, args dict or {}) from one of our run folders (model.keras + args.json +
    scale_statistic.json), a .keras file, or an original checkpoint folder (converted now and verified;
    ``legacy_mix`` for one trained before December 2023: a .keras file carries its own setting)."""
    from converter.conversion import convert

    source = Path(source)
    if source.is_file() and source.suffix == ".keras":
        return load_keras_crossformer(source), {}
    if not source.is_dir():
        raise CheckpointError(f"{source}: no such checkpoint folder or .keras file")
    args = read_args_json(source / "args.json") if (source / "args.json").is_file() else {}
    if (source / "model.keras").is_file():
        model = load_keras_crossformer(source / "model.keras")
        if model.scale_statistic is None and (source / "scale_statistic.json").is_file():
            statistic = json.loads((source / "scale_statistic.json").read_text())
            model.scale_statistic = {k: np.asarray(v, np.float64) for k, v in statistic.items()}
        return model, args
    if (source / "checkpoint.pth").is_file():
        report = convert(source, verify=verify, overrides={"legacy_mix": True} if legacy_mix else None)
        if report.verify is not None and not report.verify.passed:
            raise CheckpointError(f"{source}: the on-the-fly conversion failed verification ({report.summary()})")
        return report.model, args
    raise CheckpointError(f"{source} holds neither model.keras nor checkpoint.pth")


def data_file(data, root_path, run_args):
    """The CSV a job reads: ``data`` (a path, or a dataset name under ``root_path``), else the run's args.json's."""
    if data:
        if data in NAMED_DATASETS:
            return Path(root_path or run_args.get("root_path", ".")) / NAMED_DATASETS[data][0]
        return Path(data)
    if run_args.get("data_path"):
        return Path(root_path or run_args.get("root_path", ".")) / run_args["data_path"]
    raise ConfigError("no data: pass --data CSV (the checkpoint's args.json names none)")



def check_source(source):
    """``source`` as a Path when it can be a checkpoint (a .keras file or a folder); CheckpointError otherwise."""
    source = Path(source)
    if not (source.is_dir() or (source.is_file() and source.suffix == ".keras")):
        raise CheckpointError(f"{source}: no such checkpoint folder or .keras file")
    return source


def run_args(source):
    """The args.json of a checkpoint folder ({} for a .keras file or a folder without one)."""
    source = Path(source)
    return read_args_json(source / "args.json") if source.is_dir() and (source / "args.json").is_file() else {}


@dataclass
class RunPreview:
    """What a model file says about itself, read without building the model."""

    crossformer_config: dict
    scale_statistic: dict = None


def preview_run(source):
    """The RunPreview of a .keras file or one of our run folders (its config.json inside the zip); None when
    there is none to read cheaply (an original folder, an unreadable file: load_run then says why)."""
    source = Path(source)
    path = source / "model.keras" if source.is_dir() else source
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
        arguments = {key: config[key] for key in ("data_dim", "in_len", "out_len")}
        statistic = config.get("scale_statistic")
        if statistic is None and source.is_dir() and (source / "scale_statistic.json").is_file():
            statistic = json.loads((source / "scale_statistic.json").read_text())
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None
    return RunPreview(arguments, statistic)
