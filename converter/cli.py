"""The `crossformer` command line (also `python -m converter`).

Exit codes: 0 success, 1 a check failed (parity beyond tolerance), 2 bad input (one line on stderr, nothing
written), 3 an internal error (one line; CROSSFORMER_DEBUG=1 shows the traceback).
"""
import argparse
import os
import re
import sys
import threading

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
# TensorFlow's C++ start-up chatter (absl INFO lines before logging is initialised): not for users' eyes.
ABSL_PREFIX = r"\d{4} \S+\s+\d+ \S+:\d+\] "  # "0000 00:00:1795541527.147683    3978 port.cc:153] "
STARTUP_NOISE = re.compile(rf"^(WARNING: All log messages before absl::InitializeLog|[IW]{ABSL_PREFIX}|"
                           rf"To enable the following instructions:|E{ABSL_PREFIX}.*(cuInit|cuda|cudnn|cublas|cufft))",
                           re.IGNORECASE)


class StartupNoiseFilter:
    """Route fd 2 through a pipe whose reader drops TensorFlow's C++ start-up chatter (absl lines written
    before logging is initialised, which no environment variable silences) and passes everything else on.
    Python's own stderr (our messages, warnings) bypasses the pipe, so its order and immediacy are kept."""

    def __enter__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    for flag, kind in (("--data-dim", int), ("--in-len", int), ("--out-len", int), ("--seg-len", int),
                       ("--win-size", int), ("--factor", int), ("--d-model", int), ("--d-ff", int),
                       ("--n-heads", int), ("--e-layers", int), ("--dropout", float)):
        group.add_argument(flag, type=kind, default=None)
    group.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                       help="the model adds the input's per-series mean (not stored in the tensors)")
    group.add_argument("--legacy-mix", dest="attention_mix", action="store_const", const=True, default=None,
                       help="the checkpoint was trained with the pre-December-2023 release (its head-mixing "
                            "attention); see the README")


def model_overrides(args):
    keys = ("data_dim", "in_len", "out_len", "seg_len", "win_size", "factor", "d_model", "d_ff", "n_heads",
            "e_layers", "dropout", "baseline", "attention_mix")
    return {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}


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

    written = export_torch(args.model, args.output, folder=args.folder, force=args.force)
    what = "checkpoint folder (checkpoint.pth, args.json[, scale_statistic.pkl])" if args.folder else "state_dict"
    print(f"{args.model} -> {written}: {what} that the original release loads with strict=True")
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
    config = checkpoint_config(checkpoint, args.config, model_overrides(args), notes)
    for note in notes:
        print(f"note: {note}")
    torch_model = reference_model(config, checkpoint.weights, dtype)
    if getattr(args, "keras", None):
        saved = load_keras_crossformer(args.keras)
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
    from .parity import MODES, disable_tf32, layerwise_parity

    disable_tf32()
    torch_model, keras_model, config, checkpoint = _source_models(args, args.dtype)
    inputs = _parity_inputs(args, config, checkpoint)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = layerwise_parity(torch_model, keras_model, inputs, args.dtype, modes, batch=args.batch)
    print(report.table())
    print(report.verdict())
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(report.to_json())
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def cmd_summary(args):
    from .parity import format_summary, parameter_summary

    torch_model, keras_model, _, _ = _source_models(args, "float32")
    rows, totals = parameter_summary(torch_model, keras_model, args.depth or None)
    print(format_summary(rows, totals))
    same = all(t == k for _, _, t, k in rows) and len(set(totals)) == 1
    return EXIT_OK if same else EXIT_CHECK_FAILED


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
