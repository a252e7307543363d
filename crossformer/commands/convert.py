"""crossformer convert SRC -o OUT.keras: an original checkpoint -> a .keras file verified against reference_torch."""
import sys

from ..arguments import EXIT_CHECK_FAILED, EXIT_OK, add_model_flags, model_overrides


def register(commands):
    parser = commands.add_parser("convert", help="an original checkpoint -> a verified .keras file",
                                 description="Convert a checkpoint folder (checkpoint.pth + args.json "
                                 "[+ scale_statistic.pkl]) or a weights file (.pth/.pt/.safetensors) to .keras, "
                                 "verified against reference_torch before it is written.")
    parser.add_argument("src", help="checkpoint folder or weights file")
    parser.add_argument("-o", "--output", required=True, help="the .keras file to write")
    parser.add_argument("--config", help="an args.json to use instead of the folder's")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--no-verify", action="store_true", help="skip the parity check against reference_torch")
    parser.add_argument("--allow-nonfinite", action="store_true", help="convert NaN/Inf weights instead of refusing")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="the Keras model's precision (default float32)")
    add_model_flags(parser)
    parser.set_defaults(run=run)


def run(args):
    from converter import convert

    report = convert(args.src, args.output, config=args.config, overrides=model_overrides(args), force=args.force,
                     verify=not args.no_verify, allow_nonfinite=args.allow_nonfinite, dtype=args.dtype)
    for note in report.notes:
        print(f"note: {note}")
    if report.verify is not None and not report.verify.passed:
        print(f"FAILED: {report.summary()} | nothing written", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{args.src} -> {args.output}: {report.summary()}")
    return EXIT_OK
