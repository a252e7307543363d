"""crossformer export SRC --format F -o OUT: a deployment artifact (SavedModel, LiteRT, ONNX, OpenVINO), run by
its own runtime and checked against reference_torch before it is moved into place."""
import sys

from ..arguments import EXIT_CHECK_FAILED, EXIT_OK, add_model_flags, model_overrides


def register(commands):
    from converter.export.artifact import FORMATS, QUANTIZATIONS  # no TensorFlow: a table of names

    parser = commands.add_parser("export", help="a deployment artifact (SavedModel, LiteRT, ONNX, OpenVINO), "
                                 "verified against reference_torch",
                                 description="Write SRC as a SavedModel folder, a LiteRT .tflite, an ONNX .onnx or an "
                                 "OpenVINO .xml (+ .bin), with the batch axis dynamic and the model configuration and "
                                 "scaler inside; run it with its own runtime at batch 1 and 3 and compare with "
                                 "reference_torch before it is moved into place. Exit 0 written, 1 a check failed "
                                 "(nothing written), 2 bad input. Needs the export extra.")
    parser.add_argument("src", help="a .keras file, one of our run folders, or a PyTorch checkpoint folder or "
                        "weights file (converted and verified now, as convert does)")
    # Formats and quantizations are checked by the export itself, so a wrong one is the usual one-line error.
    parser.add_argument("--format", required=True, metavar="{" + ",".join(FORMATS) + "}", help="the artifact's format")
    parser.add_argument("-o", "--output", required=True, help="the .tflite / .onnx / .xml file, or the SavedModel "
                        "folder")
    parser.add_argument("--quantize", metavar="{" + ",".join(QUANTIZATIONS) + "}", help="dynamic: int8 weights "
                        "(LiteRT); float16: float16 weights (LiteRT, ONNX, OpenVINO). Judged against reference_torch "
                        "by a looser, stated bound; measure it with evaluate")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--config", help="an args.json to use instead of the folder's (PyTorch sources)")
    add_model_flags(parser)
    parser.set_defaults(run=run)


def run(args):
    from converter.export import ExportCheckFailed, export

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
