"""crossformer evaluate CHECKPOINT: test metrics as the original computes them (forecasting.evaluate)."""
from ..arguments import EXIT_OK, add_legacy_mix_flag, add_missing_flag


def register(commands):
    parser = commands.add_parser("evaluate", help="test metrics of a run folder or an original checkpoint folder",
                                 description="MAE, MSE, RMSE, MAPE, MSPE on the test split, as the original "
                                 "computes them (per batch, weighted by batch size). CHECKPOINT is one of our run "
                                 "folders, a .keras file, or an original folder (converted and verified now).")
    parser.add_argument("checkpoint")
    parser.add_argument("--data", help="CSV path, or a dataset name under --root-path (default: args.json's)")
    parser.add_argument("--root-path", "--root_path", dest="root_path")
    parser.add_argument("--data-split", "--data_split", dest="data_split",
                        help="override the split (default: args.json's, as eval_crossformer.py)")
    parser.add_argument("--inverse", action="store_true", help="metrics in the data's original scale")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=32)
    parser.add_argument("--json", help="where to write the metrics (default results/NAME/metrics.json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing metrics file")
    add_missing_flag(parser)
    add_legacy_mix_flag(parser)
    parser.set_defaults(run=run)


def run(args):
    from forecasting import evaluate

    evaluate(args.checkpoint, data=args.data, root_path=args.root_path, data_split=args.data_split,
             inverse=args.inverse, batch_size=args.batch_size, output=args.json, legacy_mix=args.legacy_mix,
             force=args.force, missing=args.missing)
    return EXIT_OK
