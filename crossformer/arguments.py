"""Flags several commands share: the model arguments (checked against a checkpoint's tensors) and SRC."""
import argparse

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
TSLIB_FLAG_NAMES = {"--data-dim": "--enc-in", "--in-len": "--seq-len", "--out-len": "--pred-len"}
MODEL_FLAGS = (("--data-dim", int), ("--in-len", int), ("--out-len", int), ("--seg-len", int), ("--win-size", int),
               ("--factor", int), ("--d-model", int), ("--d-ff", int), ("--n-heads", int), ("--e-layers", int),
               ("--dropout", float))
LEGACY_MIX_HELP = ("the checkpoint was trained with the release before December 2023 (its head-mixing "
                   "attention); see the README")


def add_model_flags(parser):
    group = parser.add_argument_group("model arguments (checked against the tensors; needed where they cannot "
                                      "tell them)")
    for flag, kind in MODEL_FLAGS:
        spellings = [flag] + ([TSLIB_FLAG_NAMES[flag]] if flag in TSLIB_FLAG_NAMES else [])
        group.add_argument(*spellings, type=kind, default=None,
                           help=f"(Time-Series-Library's name: {TSLIB_FLAG_NAMES[flag]})"
                           if flag in TSLIB_FLAG_NAMES else None)
    group.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                       help="the model adds the input's per-series mean (not stored in the tensors)")
    group.add_argument("--legacy-mix", dest="legacy_mix", action="store_const", const=True, default=None,
                       help=LEGACY_MIX_HELP)


def add_missing_flag(parser):
    """--missing: what to do with missing values in the rows a command uses (forecasting.validation)."""
    from converter.validation import MISSING_POLICIES

    parser.add_argument("--missing", choices=MISSING_POLICIES, default="error",
                        help="missing values (empty or NaN cells) in the rows used: error (default: refuse, naming "
                        "the line and column), ffill (carry each column's last value forward) or drop-windows "
                        "(leave out every window that touches one)")


def add_legacy_mix_flag(parser):
    """--legacy-mix for commands that may convert an original folder on the fly."""
    parser.add_argument("--legacy-mix", dest="legacy_mix", action="store_true", help=LEGACY_MIX_HELP)


def model_overrides(args):
    """The model arguments given as flags: {argument: value} (the ones not given are left out)."""
    from keras_model.config import MODEL_ARGUMENTS  # here, not at the top: --help need not load Keras

    return {key: getattr(args, key) for key in MODEL_ARGUMENTS if getattr(args, key, None) is not None}


def add_source_arguments(parser):
    parser.add_argument("src", help="checkpoint folder or weights file (as for convert)")
    parser.add_argument("--config", help="an args.json to use instead of the folder's")
    add_model_flags(parser)


def parse_bool(text):
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
