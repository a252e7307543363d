"""Reading a run back: one of our run folders (model.keras + args.json + scale_statistic.json), a .keras
file, or an original checkpoint folder (converted now and verified); and what a run says without loading it
(its configuration and scaler, so data can be checked before a model is loaded)."""
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from converter.checkpoint_files import load_keras_crossformer, read_args_json, read_run_folder
from converter.errors import CheckpointError, ConfigError

from .data import NAMED_DATASETS


def load_run(source, verify=True, legacy_mix=False):
    """(model, args dict or {}) from one of our run folders (model.keras + args.json + scale_statistic.json), a
    .keras file, an original checkpoint folder (converted now and verified; ``legacy_mix`` for one trained before
    December 2023: a .keras file carries its own setting), or a deployment artifact (.tflite, .onnx, OpenVINO
    .xml, SavedModel folder): a converter.export.Artifact, which predicts as the model does, with its own
    runtime, configuration and scaler."""
    from converter.conversion import convert
    from converter.export.artifact import artifact_format_of

    source = Path(source)
    if artifact_format_of(source):
        from converter.export import load_artifact

        artifact = load_artifact(source)
        return artifact, artifact.training_args or {}
    if source.is_file() and source.suffix == ".keras":
        return load_keras_crossformer(source), {}
    if not source.is_dir():
        raise CheckpointError(f"{source}: no such checkpoint folder, .keras file or exported artifact")
    if (source / "model.keras").is_file():
        return read_run_folder(source)
    args = read_args_json(source / "args.json") if (source / "args.json").is_file() else {}
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
    from converter.export.artifact import artifact_format_of

    source = Path(source)
    if not (source.is_dir() or (source.is_file() and source.suffix == ".keras") or artifact_format_of(source)):
        raise CheckpointError(f"{source}: no such checkpoint folder, .keras file or exported artifact")
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


def describe_source(source, legacy_mix=False):
    """(description, args, model) of a checkpoint for a job that checks its data before paying for a model:
    the RunPreview read from the file when there is one (model None: load_run it once the data is good), else
    the model itself, loaded now (an original folder is converted first; an artifact describes itself)."""
    source = check_source(source)
    preview = preview_run(source)
    if preview is not None:
        return preview, run_args(source), None
    model, args = load_run(source, legacy_mix=legacy_mix)
    return model, args, model
