"""Training runs and their folders: `crossformer train` as the original main_crossformer.py runs it, and
reading a run back (our folders, .keras files, original checkpoint folders).

A run folder (CHECKPOINTS/SETTING/) holds model.keras, args.json (the original's format), scale_statistic.json
(the scaler, JSON, not pickle) and metrics.json (per-epoch history and test metrics).
"""
import json
from dataclasses import asdict, field, make_dataclass
from pathlib import Path


import keras_model
from converter.atomic import atomic_write_folder, check_output
from converter.checkpoint_files import load_keras_crossformer, read_args_json, read_run_folder
from converter.configuration import check_runnable
from converter.errors import CheckpointError, ConfigError
from converter.original_args import ORIGINAL_ARGUMENTS, STORE_TRUE

from .data import NAMED_DATASETS, check_variable_count, read_series, resolve_split

# Everything `crossformer train` takes: the original's command line (names, defaults) and this port's own
# options. Typed fields, so train() is callable from Python without argparse.
TrainingOptions = make_dataclass("TrainingOptions", [
    *[(name, bool if kind == STORE_TRUE else object, field(default=default))
      for name, kind, default, _ in ORIGINAL_ARGUMENTS],
    ("seed", int, field(default=0)),  # seeds the batch order
    ("jit_compile", object, field(default=False)),  # XLA for the training step: False, True or "auto"
    ("verbose", int, field(default=1)),  # Keras progress bar: 0, 1 or 2
    ("force", bool, field(default=False)),  # replace an existing run folder
])


def setting_name(args):
    """The original's run name: Crossformer_{data}_il{in}_ol{out}_sl{seg}_win{w}_fa{c}_dm{dm}_nh{H}_el{N}_itr{i}."""
    return (f"Crossformer_{args['data']}_il{args['in_len']}_ol{args['out_len']}_sl{args['seg_len']}_win"
            f"{args['win_size']}_fa{args['factor']}_dm{args['d_model']}_nh{args['n_heads']}_el{args['e_layers']}"
            f"_itr{args['itr_index']}")


def _json_bytes(payload):
    return (json.dumps(payload, indent=True) + "\n").encode()


def _write_folder(folder, files):
    """Write {name: bytes | callable(path)} as a folder, atomically (see converter.atomic)."""
    def write(tmp):
        for name, content in files.items():
            if callable(content):
                content(str(tmp / name))
            else:
                (tmp / name).write_bytes(content)

    atomic_write_folder(folder, write)


def _original_options(options):
    """The original's arguments of a run, with a named dataset's file, variable count and split filled in."""
    args = {name: getattr(options, name) for name, *_ in ORIGINAL_ARGUMENTS}
    for name in ("train_epochs", "batch_size", "itr"):
        if args[name] < 1:
            raise ConfigError(f"--{name} must be >= 1, got {args[name]}")
    if args["data"] in NAMED_DATASETS:
        file_name, data_dim, _ = NAMED_DATASETS[args["data"]]
        args.update(data_path=file_name, data_dim=data_dim, data_split=resolve_split(dataset=args["data"]))
    else:
        args["data_split"] = resolve_split(args["data_split"])
    return args


def train(options=None, log=print, **overrides):
    """Run `crossformer train`: ``itr`` runs of the original recipe, each written to CHECKPOINTS/SETTING/.

    ``options`` is a TrainingOptions (default: the original's defaults), ``overrides`` replace its fields
    (``train(data="ETTh1", root_path="data", in_len=168)``). Returns one report dict per run (setting, window
    counts, test metrics, best epoch, history, seconds)."""
    from .training import fit_original, inference_copy

    options = TrainingOptions(**{**(asdict(options) if options else {}), **overrides})
    args = _original_options(options)
    csv_path = Path(args["root_path"]) / args["data_path"]
    values, _ = read_series(csv_path)
    check_variable_count(values.shape[1], args["data_dim"], csv_path, expected_by="--data_dim is")
    config = {key: args[key] for key in keras_model.ORIGINAL_MODEL_ARGUMENTS}
    check_runnable(dict(config, legacy_mix=False, variant="original"))
    reports = []
    for index in range(args["itr"]):
        setting = setting_name(dict(args, itr_index=index))
        folder = Path(args["checkpoints"]) / setting
        Path(args["checkpoints"]).mkdir(parents=True, exist_ok=True)
        check_output(folder, options.force, folder=True)
        log(f">>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>")
        model = keras_model.Crossformer(**config, training_args={k: v for k, v in args.items()
                                                                 if k not in keras_model.ORIGINAL_MODEL_ARGUMENTS})
        result = fit_original(model, csv_path, args["data_split"], args["batch_size"], args["train_epochs"],
                              args["patience"], args["learning_rate"], args["lradj"], seed=options.seed + index,
                              verbose=options.verbose, log=log, jit_compile=options.jit_compile)
        report = {"setting": setting, "windows": result.windows, "test": result.metrics,
                  "best_epoch": result.best_epoch, "epochs_run": len(result.history), "history": result.history,
                  "seconds": result.seconds}
        _write_folder(folder, {"model.keras": lambda path, trained=model: inference_copy(trained).save(path),
                               "args.json": _json_bytes(args),
                               "scale_statistic.json": _json_bytes(
                                   {k: v.tolist() for k, v in model.scale_statistic.items()}),
                               "metrics.json": _json_bytes(report)})
        m = result.metrics
        log(f"test: mse {m['mse']:.7f} mae {m['mae']:.7f} rmse {m['rmse']:.7f} ({result.windows['test']} windows; "
            f"best epoch {result.best_epoch} of {len(result.history)}; {result.seconds:.0f} s) -> {folder}")
        reports.append(report)
    return reports


# ------------------------------------------------------------------------------------------------ reading
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
        raise CheckpointError(f"{source}: no such checkpoint folder or .keras file")
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

