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
