"""The `crossformer` command line (also `python -m converter`).

Exit codes: 0 success, 1 a check failed (parity beyond tolerance), 2 bad input (one line on stderr, nothing
written), 3 an internal error (one line; CROSSFORMER_DEBUG=1 shows the traceback).
"""
import argparse
import os
import re
import sys
import threading
from pathlib import Path

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
# TensorFlow's C++ start-up chatter (absl INFO lines before logging is initialised): not for users' eyes.
ABSL_PREFIX = r"\d{4} \S+\s+\d+ \S+:\d+\] "  # "0000 00:00:1795541527.147683    3978 port.cc:153] "
STARTUP_NOISE = re.compile(rf"^(WARNING: All log messages before absl::InitializeLog|[IW]{ABSL_PREFIX}|"
                           rf"To enable the following instructions:|E{ABSL_PREFIX}.*(cuInit|cuda|cudnn|cublas|cufft)|"
                           r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU)",
                           re.IGNORECASE)


class StartupNoiseFilter:
    """Route fd 2 through a pipe whose reader drops TensorFlow's C++ start-up chatter (absl lines written
    before logging is initialised, which no environment variable silences) and passes everything else on.
    Python's own stderr (our messages, warnings) bypasses the pipe, so its order and immediacy are kept."""

    def __enter__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("JAX_ENABLE_X64", "1")  # --dtype float64 under KERAS_BACKEND=jax; no effect elsewhere
        sys.stderr.flush()
        self.saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self.python_stderr, sys.stderr = sys.stderr, os.fdopen(os.dup(self.saved), "w", buffering=1)
        self.pump = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self.pump.start()
        return self

    def _pump(self, read_fd):
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in pipe:
                if not STARTUP_NOISE.match(raw.decode("utf-8", "replace")):
                    os.write(self.saved, raw)

    def __exit__(self, *exc):
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = self.python_stderr
        os.dup2(self.saved, 2)  # drops the pipe's last write end: the pump reads to EOF and stops
        self.pump.join(timeout=5)
        os.close(self.saved)
        return False


def _add_model_flags(parser):
    group = parser.add_argument_group("model arguments (checked against the tensors; needed where they cannot "
                                      "tell them)")
    tslib_names = {"--data-dim": "--enc-in", "--in-len": "--seq-len", "--out-len": "--pred-len"}
    for flag, kind in (("--data-dim", int), ("--in-len", int), ("--out-len", int), ("--seg-len", int),
                       ("--win-size", int), ("--factor", int), ("--d-model", int), ("--d-ff", int),
                       ("--n-heads", int), ("--e-layers", int), ("--dropout", float)):
        spellings = [flag] + ([tslib_names[flag]] if flag in tslib_names else [])
        group.add_argument(*spellings, type=kind, default=None,
                           help=f"(Time-Series-Library's name: {tslib_names[flag]})" if flag in tslib_names else None)
    group.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                       help="the model adds the input's per-series mean (not stored in the tensors)")
    group.add_argument("--legacy-mix", dest="attention_mix", action="store_const", const=True, default=None,
                       help="the checkpoint was trained with the pre-December-2023 release (its head-mixing "
                            "attention); see the README")


def model_overrides(args):
    from .checkpoint import MODEL_KEYS

    return {key: getattr(args, key) for key in MODEL_KEYS if getattr(args, key, None) is not None}


def cmd_convert(args):
    from .conversion import convert

    report = convert(args.src, args.output, config=args.config, overrides=model_overrides(args), force=args.force,
                     verify=not args.no_verify, allow_nonfinite=args.allow_nonfinite, dtype=args.dtype)
    for note in report.notes:
        print(f"note: {note}")
    if report.verify is not None and not report.verify.passed:
        print(f"FAILED: {report.summary()} | nothing written", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{args.src} -> {args.output}: {report.summary()}")
    return EXIT_OK


def cmd_export_torch(args):
    from .conversion import export_torch

    written, config = export_torch(args.model, args.output, folder=args.folder, force=args.force)
    what = "checkpoint folder (checkpoint.pth, args.json[, scale_statistic.pkl])" if args.folder else "state_dict"
    if config["variant"] == "tslib":
        print(f"{args.model} -> {written}: {what} that Time-Series-Library's Crossformer loads with strict=True")
    else:
        print(f"{args.model} -> {written}: {what} that the original release loads with strict=True")
    if config["attention_mix"]:
        print("note: the model uses the pre-December-2023 attention (--legacy-mix): any release loads these weights, "
              "but only code before c10c8ea (or reference_torch with attention_mix=True) computes the same function")
    return EXIT_OK


def _source_models(args, dtype):
    """(torch reference, Keras model, config, checkpoint) for a SRC (+ optional --keras) and model flags."""
    from .bridge import config_of, torch_to_keras
    from .checkpoint import checkpoint_config, read_checkpoint
    from .conversion import load_keras_crossformer, reference_model
    from .errors import ConfigError
    from .weight_map import keras_to_state_dict

    checkpoint = read_checkpoint(args.src, allow_nonfinite=getattr(args, "allow_nonfinite", False))
    notes = list(checkpoint.notes)
    overrides = model_overrides(args)
    saved = load_keras_crossformer(args.keras) if getattr(args, "keras", None) else None
    if saved is not None and "attention_mix" not in overrides:
        overrides["attention_mix"] = saved.attention_mix  # the .keras file knows which attention it has
    config = checkpoint_config(checkpoint, args.config, overrides, notes)
    for note in notes:
        print(f"note: {note}")
    torch_model = reference_model(config, checkpoint.weights, dtype)
    if saved is not None:
        different = {k: (v, config[k]) for k, v in config_of(saved).items() if k != "dropout" and v != config[k]}
        if different:
            key, (got, expected) = next(iter(different.items()))
            raise ConfigError(f"{args.keras} was built with {key}={got} but {args.src} needs {expected}")
        return torch_model, torch_to_keras(keras_to_state_dict(saved), config, dtype=dtype), config, checkpoint
    return torch_model, torch_to_keras(checkpoint.weights, config, dtype=dtype), config, checkpoint


def _parity_inputs(args, config, checkpoint):
    import numpy as np

    from .data import dataset_defaults, load_split
    from .errors import ConfigError

    if args.samples < 1 or args.batch < 1:
        raise ConfigError("--samples and --batch must be >= 1")
    if not args.data:
        return np.random.default_rng(args.seed).standard_normal((args.samples, config["in_len"], config["data_dim"]))
    data_split = (checkpoint.args or {}).get("data_split") or dataset_defaults(args.data)
    split, _ = load_split(args.data, "test", config["in_len"], config["out_len"], data_split,
                          checkpoint.scale_statistic)
    if split.values.shape[1] != config["data_dim"]:
        raise ConfigError(f"{args.data} has {split.values.shape[1]} variables but the model has {config['data_dim']}")
    if len(split) < args.samples:
        raise ConfigError(f"{args.data} has {len(split)} test windows, fewer than --samples {args.samples}")
    print(f"inputs: the first {args.samples} test windows of {args.data} (split {list(data_split)}, "
          f"{'the checkpoint scaler' if checkpoint.scale_statistic is not None else 'scaler fit on the train rows'})")
    return split.windows(0, args.samples)[0]


def cmd_parity(args):
    from .atomic import atomic_write, check_output
    from .parity import MODES, disable_tf32, layerwise_parity

    if args.json:
        check_output(args.json, force=True)
    disable_tf32()
    torch_model, keras_model, config, checkpoint = _source_models(args, args.dtype)
    inputs = _parity_inputs(args, config, checkpoint)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = layerwise_parity(torch_model, keras_model, inputs, args.dtype, modes, batch=args.batch)
    print(report.table())
    print(report.verdict())
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(report.to_json()))
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def cmd_summary(args):
    from .parity import format_summary, parameter_summary

    torch_model, keras_model, _, _ = _source_models(args, "float32")
    rows, totals = parameter_summary(torch_model, keras_model, args.depth or None)
    print(format_summary(rows, totals))
    same = all(t == k for _, _, t, k in rows) and len(set(totals[:3])) == 1
    return EXIT_OK if same else EXIT_CHECK_FAILED


def cmd_export(args):
    from .export import ExportCheckFailed, export

    try:
        report = export(args.src, args.output, args.format, quantize=args.quantize, force=args.force,
                        config=args.config, overrides=model_overrides(args))
    except ExportCheckFailed as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    for note in report.notes:
        print(f"note: {note}")
    if not report.written:
        print(f"FAILED: {report.summary()} | nothing written", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{args.src} -> {args.output}: {report.summary()}")
    return EXIT_OK


def cmd_train(args):
    from .workflows import run_train

    run_train(args, log=lambda message: print(message, flush=True))
    return EXIT_OK


def cmd_evaluate(args):
    from .workflows import run_evaluate

    run_evaluate(args)
    return EXIT_OK


def cmd_predict(args):
    from .workflows import run_predict

    run_predict(args)
    return EXIT_OK


def _bool(text):
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_train_parser(commands):
    from .original_args import BOOL_VALUE, FLAG, ORIGINAL_ARGUMENTS

    train = commands.add_parser("train", help="train the Keras Crossformer as the original main_crossformer.py does",
                                description="Train with the original command line's arguments and defaults (both "
                                "--in_len and --in-len spellings): Adam (PyTorch's update), MSE, early stopping on "
                                "the validation loss, the type1/type2/fixed schedule. Writes CHECKPOINTS/SETTING/ "
                                "with model.keras, args.json, scale_statistic.json and metrics.json.")
    for name, kind, default, text in ORIGINAL_ARGUMENTS:
        spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if kind == FLAG:
            train.add_argument(*spellings, dest=name, action="store_true", help=text)
        else:
            train.add_argument(*spellings, dest=name, type=_bool if kind == BOOL_VALUE else kind, default=default,
                               help=f"{text} (default {default})")
    train.add_argument("--seed", type=int, default=0, help="seed of the batch order (default 0)")
    # Measured (bench/benchmark.py, ETTh1 configuration, batch 32, 2 cores, two runs): the compiled graph trains
    # at 1.09-1.18x PyTorch's speed, XLA at 0.96-1.12x after a ~50 s compilation, so XLA is opt-in.
    train.add_argument("--jit-compile", dest="jit_compile", choices=("auto", "on", "off"), default="off",
                       help="XLA compilation of the training step (default off: the plain compiled graph is faster "
                       "here)")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bar (default 1)")
    train.add_argument("--force", action="store_true", help="replace an existing run folder")
    train.set_defaults(handler=cmd_train)


def _add_evaluate_parsers(commands):
    evaluate = commands.add_parser("evaluate", help="test metrics of a run folder or an original checkpoint folder",
                                   description="MAE, MSE, RMSE, MAPE, MSPE on the test split, as the original "
                                   "computes them (per batch, weighted by batch size). CHECKPOINT is one of our run "
                                   "folders, a .keras file, or an original folder (converted and verified now).")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--data", help="CSV path, or a dataset name under --root-path (default: args.json's)")
    evaluate.add_argument("--root-path", "--root_path", dest="root_path")
    evaluate.add_argument("--data-split", "--data_split", dest="data_split",
                          help="override the split (default: args.json's, as eval_crossformer.py)")
    evaluate.add_argument("--inverse", action="store_true", help="metrics in the data's original scale")
    evaluate.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=32)
    evaluate.add_argument("--json", help="where to write the metrics (default results/NAME/metrics.json)")
    evaluate.add_argument("--legacy-mix", action="store_true", help="an original folder trained before "
                          "December 2023 (see convert --legacy-mix)")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", help="forecast the out_len steps after a CSV's last in_len rows",
                                  description="Forecast in the data's original scale from the last in_len rows (or "
                                  "those before --end), writing a CSV with continued timestamps and optionally a plot "
                                  "of history, forecast and (when the CSV has it) the truth.")
    predict.add_argument("model", help="a .keras file, one of our run folders, or an original checkpoint folder")
    predict.add_argument("--input", required=True, help="CSV with the date column first")
    predict.add_argument("-o", "--output", required=True, help="forecast CSV to write")
    predict.add_argument("--plot", help="PNG of history, forecast and truth")
    predict.add_argument("--variables", help="comma-separated columns to plot (default: the last)")
    predict.add_argument("--end", type=int, help="forecast from this row (history = the in_len rows before it)")
    predict.add_argument("--force", action="store_true", help="overwrite existing outputs")
    predict.add_argument("--legacy-mix", action="store_true", help="an original folder trained before "
                         "December 2023 (see convert --legacy-mix)")
    predict.set_defaults(handler=cmd_predict)


def _add_export_parser(commands):
    from .export.artifact import FORMATS, QUANTIZATIONS  # no TensorFlow: a table of names

    export = commands.add_parser("export", help="a deployment artifact (SavedModel, LiteRT, ONNX, OpenVINO), "
                                 "verified against reference_torch",
                                 description="Write SRC as a SavedModel folder, a LiteRT .tflite, an ONNX .onnx or an "
                                 "OpenVINO .xml (+ .bin), with the batch axis dynamic and the model configuration and "
                                 "scaler inside; run it with its own runtime at batch 1 and 3 and compare with "
                                 "reference_torch before it is moved into place. Exit 0 written, 1 a check failed "
                                 "(nothing written), 2 bad input. Needs the export extra.")
    export.add_argument("src", help="a .keras file, one of our run folders, or a PyTorch checkpoint folder or "
                        "weights file (converted and verified now, as convert does)")
    # Formats and quantizations are checked by the export itself, so a wrong one is the usual one-line error.
    export.add_argument("--format", required=True, metavar="{" + ",".join(FORMATS) + "}", help="the artifact's format")
    export.add_argument("-o", "--output", required=True, help="the .tflite / .onnx / .xml file, or the SavedModel "
                        "folder")
    export.add_argument("--quantize", metavar="{" + ",".join(QUANTIZATIONS) + "}", help="dynamic: int8 weights (LiteRT); float16: "
                        "float16 weights (LiteRT, ONNX, OpenVINO). Judged against reference_torch by a looser, "
                        "stated bound; measure it with evaluate")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.add_argument("--config", help="an args.json to use instead of the folder's (PyTorch sources)")
    _add_model_flags(export)
    export.set_defaults(handler=cmd_export)


def _add_source_arguments(parser):
    parser.add_argument("src", help="checkpoint folder or weights file (as for convert)")
    parser.add_argument("--config", help="an args.json to use instead of the folder's")
    _add_model_flags(parser)


def build_parser():
    parser = argparse.ArgumentParser(prog="crossformer", description="Crossformer checkpoints: PyTorch <-> Keras 3, "
                                     "with parity checks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser("convert", help="an original checkpoint -> a verified .keras file",
                                  description="Convert a checkpoint folder (checkpoint.pth + args.json "
                                  "[+ scale_statistic.pkl]) or a weights file (.pth/.pt/.safetensors) to .keras, "
                                  "verified against reference_torch before it is written.")
    convert.add_argument("src", help="checkpoint folder or weights file")
    convert.add_argument("-o", "--output", required=True, help="the .keras file to write")
    convert.add_argument("--config", help="an args.json to use instead of the folder's")
    convert.add_argument("--force", action="store_true", help="overwrite an existing output")
    convert.add_argument("--no-verify", action="store_true", help="skip the parity check against reference_torch")
    convert.add_argument("--allow-nonfinite", action="store_true", help="convert NaN/Inf weights instead of refusing")
    convert.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                         help="the Keras model's precision (default float32)")
    _add_model_flags(convert)
    convert.set_defaults(handler=cmd_convert)

    export = commands.add_parser("export-torch", help="a .keras Crossformer -> a state_dict the original loads",
                                 description="Write the weights of a .keras Crossformer as a PyTorch state_dict "
                                 "(or, with --folder, a checkpoint folder in the original release's layout).")
    export.add_argument("model", help="the .keras file")
    export.add_argument("-o", "--output", required=True, help="the .pth file (or folder, with --folder) to write")
    export.add_argument("--folder", action="store_true", help="write checkpoint.pth + args.json "
                        "[+ scale_statistic.pkl] into the folder OUT")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.set_defaults(handler=cmd_export_torch)

    parity = commands.add_parser("parity", help="layer-by-layer comparison of reference_torch and the Keras model",
                                 description="Run reference_torch and the Keras model on the same inputs and compare "
                                 "every module's output, chained (each on its own activations) and isolated (each "
                                 "Keras layer fed the PyTorch layer's inputs). Exit 0 pass, 1 fail, 2 bad input.")
    _add_source_arguments(parity)
    parity.add_argument("--keras", help="a converted .keras model to check against SRC (default: convert SRC now)")
    parity.add_argument("--samples", type=int, default=8, help="input series (default 8)")
    parity.add_argument("--batch", type=int, default=4, help="series per forward pass (default 4)")
    parity.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parity.add_argument("--data", help="a CSV (date column first): use its first test windows, normalised as the "
                        "original pipeline does, instead of seeded random series")
    parity.add_argument("--mode", choices=("chained", "isolated", "both"), default="both")
    parity.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parity.add_argument("--json", help="write the whole report here (for CI)")
    parity.set_defaults(handler=cmd_parity)

    summary = commands.add_parser("summary", help="per-module parameter counts, torchinfo and Keras side by side")
    _add_source_arguments(summary)
    summary.add_argument("--depth", type=int, default=3, help="deepest module level shown (0: all; default 3)")
    summary.set_defaults(handler=cmd_summary)

    _add_export_parser(commands)
    _add_train_parser(commands)
    _add_evaluate_parsers(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with StartupNoiseFilter():
        return run(args)


def run(args):
    from .errors import CrossformerInputError

    try:
        return args.handler(args)
    except CrossformerInputError as error:
        print(f"crossformer {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("CROSSFORMER_DEBUG"):
            raise
        print(f"crossformer {args.command}: internal error: {type(error).__name__}: {error} "
              "(CROSSFORMER_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
