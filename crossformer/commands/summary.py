"""crossformer summary SRC: per-module parameter counts, torchinfo and Keras side by side."""
from ..arguments import EXIT_CHECK_FAILED, EXIT_OK, add_source_arguments, model_overrides


def register(commands):
    parser = commands.add_parser("summary", help="per-module parameter counts, torchinfo and Keras side by side")
    add_source_arguments(parser)
    parser.add_argument("--depth", type=int, default=3, help="deepest module level shown (0: all; default 3)")
    parser.set_defaults(run=run)


def run(args):
    from converter.parity import format_summary, parameter_summary
    from converter.parity.pair import load_pair
    from converter.validation import check_depth

    check_depth(args.depth)
    pair = load_pair(args.src, None, args.config, model_overrides(args))
    for note in pair.notes:
        print(f"note: {note}")
    rows, totals = parameter_summary(pair.torch_model, pair.keras_model, args.depth or None)
    print(format_summary(rows, totals))
    same = all(t == k for _, _, t, k in rows) and len(set(totals[:3])) == 1
    return EXIT_OK if same else EXIT_CHECK_FAILED
