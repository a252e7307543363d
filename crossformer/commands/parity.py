"""crossformer parity SRC: every module of reference_torch against its Keras twin, chained and isolated."""
from pathlib import Path

from ..arguments import EXIT_CHECK_FAILED, EXIT_OK, add_missing_flag, add_source_arguments, model_overrides


def register(commands):
    parser = commands.add_parser("parity", help="layer-by-layer comparison of reference_torch and the Keras model",
                                 description="Run reference_torch and the Keras model on the same inputs and compare "
                                 "every module's output, chained (each on its own activations) and isolated (each "
                                 "Keras layer fed the PyTorch layer's inputs). Exit 0 pass, 1 fail, 2 bad input.")
    add_source_arguments(parser)
    parser.add_argument("--keras", help="a converted .keras model to check against SRC (default: convert SRC now)")
    parser.add_argument("--samples", type=int, default=8, help="input series (default 8)")
    parser.add_argument("--batch", type=int, default=4, help="series per forward pass (default 4)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--data", help="a CSV (date column first): use its first test windows, normalised as the "
                        "original pipeline does, instead of seeded random series")
    parser.add_argument("--mode", choices=("chained", "isolated", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    add_missing_flag(parser)
    parser.add_argument("--json", help="write the whole report here (for CI)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --json report")
    parser.set_defaults(run=run)


def parity_inputs(args, pair):
    """Seeded random series, or the first test windows of --data (the checkpoint's split and scaler)."""
    import numpy as np

    from forecasting.data import first_test_windows, resolve_split

    config = pair.config
    if not args.data:
        return np.random.default_rng(args.seed).standard_normal((args.samples, config["in_len"], config["data_dim"]))
    data_split = resolve_split((pair.checkpoint.args or {}).get("data_split"), csv_path=args.data)
    scale_statistic = pair.checkpoint.scale_statistic
    inputs = first_test_windows(args.data, config, args.samples, data_split, scale_statistic, args.missing)
    print(f"inputs: the first {args.samples} test windows of {args.data} (split {list(data_split)}, "
          f"{'the checkpoint scaler' if scale_statistic is not None else 'scaler fit on the train rows'})")
    return inputs


def run(args):
    from converter.atomic import atomic_write, check_output
    from converter.parity import MODES, layerwise_parity
    from converter.parity.pair import load_pair
    from converter.precision import disable_tf32
    from converter.validation import check_parity_arguments

    check_parity_arguments(args.samples, args.batch, args.seed)
    if args.json:
        check_output(args.json, args.force, suffix=".json")
    disable_tf32()
    pair = load_pair(args.src, args.keras, args.config, model_overrides(args), args.dtype)
    for note in pair.notes:
        print(f"note: {note}")
    inputs = parity_inputs(args, pair)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = layerwise_parity(pair.torch_model, pair.keras_model, inputs, args.dtype, modes, batch=args.batch)
    print(report.table())
    print(report.verdict())
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(report.to_json()))
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED
