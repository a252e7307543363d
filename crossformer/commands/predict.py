"""crossformer predict MODEL --input CSV -o OUT.csv: a forecast in the data's scale (forecasting.forecast)."""
from ..arguments import EXIT_OK, add_legacy_mix_flag, add_missing_flag


def register(commands):
    parser = commands.add_parser("predict", help="forecast the out_len steps after a CSV's last in_len rows",
                                 description="Forecast in the data's original scale from the last in_len rows (or "
                                 "those before --end), writing a CSV with continued timestamps and optionally a plot "
                                 "of history, forecast and (when the CSV has it) the truth.")
    parser.add_argument("model", help="a .keras file, one of our run folders, or an original checkpoint folder")
    parser.add_argument("--input", required=True, help="CSV with the date column first")
    parser.add_argument("-o", "--output", required=True, help="forecast CSV to write")
    parser.add_argument("--plot", help="PNG of history, forecast and truth")
    parser.add_argument("--variables", help="comma-separated columns to plot (default: the last)")
    parser.add_argument("--end", type=int, help="forecast from this row (history = the in_len rows before it)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_missing_flag(parser)
    add_legacy_mix_flag(parser)
    parser.set_defaults(run=run)


def run(args):
    from forecasting import forecast

    forecast(args.model, args.input, args.output, end=args.end, variables=args.variables, plot=args.plot,
             force=args.force, legacy_mix=args.legacy_mix, missing=args.missing)
    return EXIT_OK
