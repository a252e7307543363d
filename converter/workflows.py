"""`crossformer train`, `evaluate` and `predict`: the original pipeline's jobs with the Keras Crossformer."""
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_folder, check_output
from .data import NAMED_DATASETS, Scaler, dataset_defaults, load_split, read_series, read_table
from .errors import CheckpointError, ConfigError
from .original_args import ORIGINAL_ARGUMENTS, ORIGINAL_MODEL_ARGUMENTS


def parse_split(text):
    """'0.7,0.1,0.2' or '8640,2880,2880' -> numbers (the original eval()s each part; this only parses)."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        values = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--data_split {text!r}: expected three numbers, ratios or row counts") from None
    if len(values) != 3 or min(values) < 0:
        raise ConfigError(f"--data_split {text!r}: expected three non-negative numbers")
    return values


def _write_folder(folder, files):
    """Write {name: bytes | callable(path)} as a folder, atomically (see converter.atomic)."""
    def write(tmp):
        for name, content in files.items():
            if callable(content):
                content(str(tmp / name))
            else:
                (tmp / name).write_bytes(content)

    atomic_write_folder(folder, write)


def _json_bytes(payload):
    return (json.dumps(payload, indent=True) + "\n").encode()


# -------------------------------------------------------------------------------------------------- train
def run_train(args, log=print):
    import keras_model

    from .training import inference_copy, setting_name, train

    options = {name: getattr(args, name) for name, *_ in ORIGINAL_ARGUMENTS}
    for name in ("train_epochs", "batch_size", "itr"):
        if options[name] < 1:
            raise ConfigError(f"--{name} must be >= 1, got {options[name]}")
    if options["data"] in NAMED_DATASETS:
        file_name, data_dim, split = NAMED_DATASETS[options["data"]]
        options.update(data_path=file_name, data_dim=data_dim, data_split=list(split))
    else:
        options["data_split"] = parse_split(options["data_split"])
    csv_path = Path(options["root_path"]) / options["data_path"]
    values, _ = read_series(csv_path)
    if values.shape[1] != options["data_dim"]:
        raise ConfigError(f"{csv_path} has {values.shape[1]} variables but --data_dim is {options['data_dim']}")
    config = {key: options[key] for key in ORIGINAL_MODEL_ARGUMENTS}
    try:
        keras_model.validate_and_derive(dict(config, attention_mix=False))
    except keras_model.InvalidConfigError as error:
        raise ConfigError(f"configuration the model cannot run: {error}") from None
    results = []
    for index in range(options["itr"]):
        setting = setting_name(dict(options, itr_index=index))
        folder = Path(options["checkpoints"]) / setting
        Path(options["checkpoints"]).mkdir(parents=True, exist_ok=True)
        check_output(folder, args.force, folder=True)
        log(f">>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>")
        model = keras_model.Crossformer(**config, training_args={k: v for k, v in options.items()
                                                                 if k not in ORIGINAL_MODEL_ARGUMENTS})
        result = train(model, csv_path, options["data_split"], options["batch_size"], options["train_epochs"],
                       options["patience"], options["learning_rate"], options["lradj"], seed=args.seed + index,
                       verbose=args.verbose, log=log,
                       jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile])
        saved_args = {name: options[name] for name, *_ in ORIGINAL_ARGUMENTS}
        statistic = {k: v.tolist() for k, v in model.scale_statistic.items()}
        report = {"setting": setting, "windows": result.windows, "test": result.metrics,
                  "best_epoch": result.best_epoch, "epochs_run": len(result.history), "history": result.history,
                  "seconds": result.seconds}
        _write_folder(folder, {"model.keras": lambda path, trained=model: inference_copy(trained).save(path),
                               "args.json": _json_bytes(saved_args), "scale_statistic.json": _json_bytes(statistic),
                               "metrics.json": _json_bytes(report)})
        m = result.metrics
        log(f"test: mse {m['mse']:.7f} mae {m['mae']:.7f} rmse {m['rmse']:.7f} ({result.windows['test']} windows; "
            f"best epoch {result.best_epoch} of {len(result.history)}; {result.seconds:.0f} s) -> {folder}")
        results.append(report)
    return results


# -------------------------------------------------------------------------------------------------- load
def load_run(folder, verify=True, overrides=None):
    """(Keras model, args dict or {}) from one of our run folders (model.keras + args.json +
    scale_statistic.json), a .keras file, or an original checkpoint folder (converted now, verified, with
    ``overrides`` such as {"attention_mix": True} for a pre-December-2023 checkpoint). A deployment artifact
    (.tflite, .onnx, OpenVINO .xml, SavedModel folder) gives a converter.export.Artifact, which runs like the
    model where evaluate and predict need it."""
    from .conversion import convert, load_keras_crossformer
    from .export.artifact import artifact_format_of

    folder = Path(folder)
    if artifact_format_of(folder):  # a deployment artifact: its own runtime, its own configuration and scaler
        from .export import load_artifact

        artifact = load_artifact(folder)
        return artifact, artifact.training_args or {}
    if folder.is_file() and folder.suffix == ".keras":
        return load_keras_crossformer(folder), {}
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder or .keras file")
    args = {}
    if (folder / "args.json").is_file():
        from .checkpoint import read_args_json

        args = read_args_json(folder / "args.json")
    if (folder / "model.keras").is_file():
        model = load_keras_crossformer(folder / "model.keras")
        if model.scale_statistic is None and (folder / "scale_statistic.json").is_file():
            statistic = json.loads((folder / "scale_statistic.json").read_text())
            model._scale_statistic = {k: np.asarray(v, np.float64) for k, v in statistic.items()}
        return model, args
    if (folder / "checkpoint.pth").is_file():
        report = convert(folder, verify=verify, overrides=overrides)
        if report.verify is not None and not report.verify.passed:
            raise CheckpointError(f"{folder}: the on-the-fly conversion failed verification ({report.summary()})")
        return report.model, args
    raise CheckpointError(f"{folder} holds neither model.keras nor checkpoint.pth")


def data_file(args, run_args):
    """The CSV to evaluate on: --data (a path, or a dataset name under --root-path), else args.json's."""
    if args.data:
        if args.data in NAMED_DATASETS:
            return Path(args.root_path or run_args.get("root_path", ".")) / NAMED_DATASETS[args.data][0]
        return Path(args.data)
    if run_args.get("data_path"):
        return Path(args.root_path or run_args.get("root_path", ".")) / run_args["data_path"]
    raise ConfigError("no data: pass --data CSV (the checkpoint's args.json names none)")


def legacy_override(args):
    """--legacy-mix for an original folder converted on the fly (a .keras file carries its own setting)."""
    return {"attention_mix": True} if getattr(args, "legacy_mix", False) else None


# ----------------------------------------------------------------------------------------------- evaluate
def run_evaluate(args, log=print):
    from .training import evaluate_model

    name = Path(args.checkpoint).name if Path(args.checkpoint).is_dir() else Path(args.checkpoint).stem
    out = Path(args.json) if args.json else Path("results") / name / "metrics.json"
    if not args.json:
        out.parent.mkdir(parents=True, exist_ok=True)
    check_output(out, force=True)
    model, run_args = load_run(args.checkpoint, overrides=legacy_override(args))
    csv_path = data_file(args, run_args)
    if args.data_split:
        split_spec = parse_split(args.data_split)
    else:
        split_spec = run_args.get("data_split") or (NAMED_DATASETS[args.data][2] if args.data in NAMED_DATASETS
                                                   else dataset_defaults(csv_path))
    if model.scale_statistic is None:
        raise CheckpointError(f"{args.checkpoint} carries no scale statistic (scale_statistic.pkl/.json)")
    config = model.crossformer_config
    split, scaler = load_split(csv_path, "test", config["in_len"], config["out_len"], split_spec,
                               model.scale_statistic)
    if split.values.shape[1] != config["data_dim"]:
        raise ConfigError(f"{csv_path} has {split.values.shape[1]} variables but the model has {config['data_dim']}")
    metrics, windows = evaluate_model(model, split, args.batch_size, inverse=scaler if args.inverse else None)
    payload = {"checkpoint": str(args.checkpoint), "data": str(csv_path), "data_split": list(split_spec),
               "in_len": config["in_len"], "out_len": config["out_len"], "inverse": bool(args.inverse),
               "windows": windows, "batch_size": args.batch_size, **metrics}
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=1) + "\n"))
    log("  ".join(f"{k} {v:.7f}" for k, v in metrics.items()) + f"  ({windows} test windows of {csv_path.name}"
        f"{', original scale' if args.inverse else ', normalised'}) -> {out}")
    return payload


# ----------------------------------------------------------------------------------------------- predict
def _parse_time(text):
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def _future_stamps(stamps, steps):
    """Timestamps continuing the series at its last step; plain step numbers when the dates do not parse."""
    last, before = (_parse_time(stamps[-1]), _parse_time(stamps[-2])) if len(stamps) > 1 else (None, None)
    if last is None or before is None or last <= before:
        return [f"+{i}" for i in range(1, steps + 1)]
    return [str(last + (last - before) * i) for i in range(1, steps + 1)]


def run_predict(args, log=print):
    output = check_output(args.output, args.force, suffix=".csv")
    if args.plot:
        check_output(args.plot, args.force, suffix=".png")
    model, _ = load_run(args.model, overrides=legacy_override(args))
    config = model.crossformer_config
    values, names, stamps = read_table(args.input)
    end = args.end if args.end is not None else len(values)
    if not config["in_len"] <= end <= len(values):
        raise ConfigError(f"--end {end}: the history needs {config['in_len']} rows before it "
                          f"({args.input} has {len(values)})")
    if len(names) != config["data_dim"]:
        raise ConfigError(f"{args.input} has {len(names)} variables but the model has {config['data_dim']}")
    if model.scale_statistic is None:
        raise CheckpointError(f"{args.model} carries no scale statistic, so forecasts cannot be put back in the "
                              "data's scale")
    chosen = args.variables.split(",") if args.variables else [names[-1]]
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise ConfigError(f"--variables: {', '.join(unknown)} not among {', '.join(names)}")

    history = values[end - config["in_len"]:end]
    scaler = Scaler(model.scale_statistic["mean"], model.scale_statistic["std"])
    normalised = scaler.transform(history).astype(model.compute_dtype)[None]
    forecast = scaler.inverse_transform(np.asarray(model.predict_on_batch(normalised))[0].astype(np.float64))
    truth = values[end:end + config["out_len"]] if end + config["out_len"] <= len(values) else None
    future = _future_stamps(stamps[:end], config["out_len"])
    lines = ["date," + ",".join(names)] + [f"{stamp}," + ",".join(repr(float(v)) for v in row)
                                           for stamp, row in zip(future, forecast)]
    if args.plot:
        atomic_write(args.plot, lambda tmp: plot_forecast(tmp, stamps[:end], history, future, forecast, truth, names,
                                                          chosen))
    atomic_write(output, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    message = f"forecast of {config['out_len']} steps after {stamps[end - 1]} (history rows {end - config['in_len']}" \
              f"..{end - 1} of {Path(args.input).name}) -> {output}"
    if truth is not None:
        message += f"; against the known truth: MAE {np.mean(np.abs(forecast - truth)):.4f}, MSE " \
                   f"{np.mean((forecast - truth) ** 2):.4f} (data scale)"
    if args.plot:
        message += f"; plot -> {args.plot}"
    log(message)
    return forecast


def plot_forecast(path, stamps, history, future, forecast, truth, names, chosen):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps_back = np.arange(-len(history) + 1, 1)
    steps_ahead = np.arange(1, len(forecast) + 1)
    figure, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.8 * len(chosen)), squeeze=False)
    for axis, name in zip(axes[:, 0], chosen):
        column = names.index(name)
        axis.plot(steps_back, history[:, column], color="0.35", label="history")
        axis.plot(steps_ahead, forecast[:, column], color="tab:blue", label="forecast")
        if truth is not None:
            axis.plot(steps_ahead, truth[:, column], color="tab:orange", linestyle="--", label="truth")
        axis.axvline(0.5, color="0.7", linewidth=0.8)
        axis.set_ylabel(name)
        axis.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel(f"steps relative to {stamps[-1]}")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)

