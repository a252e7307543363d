"""The model's arguments, the lengths they imply, and the configurations the Crossformer cannot run.

Rules and derived lengths: docs/model.md (Notation and shapes; Configurations the original cannot run).
Pure Python. reference_torch/geometry.py is an independent implementation of the same rules, on purpose:
the reference must reproduce the original on its own, and the suite checks that the two accept, reject
and derive alike (parity_tests/test_config_validation.py). Code above the models (converter, forecasting)
validates through this module only.
"""
import math
import numbers

# The original release's Crossformer arguments, in its order (what an original args.json holds of the model).
ORIGINAL_MODEL_ARGUMENTS = ("data_dim", "in_len", "out_len", "seg_len", "win_size", "factor", "d_model", "d_ff",
                            "n_heads", "e_layers", "dropout", "baseline")
# Every argument of the models here: the original's, and which of its historical/third-party forms it is.
MODEL_ARGUMENTS = ORIGINAL_MODEL_ARGUMENTS + ("legacy_mix", "variant")
# Names earlier versions of this project wrote for an argument (in .keras files, args.json, golden configs).
FORMER_ARGUMENT_NAMES = {"attention_mix": "legacy_mix"}
VARIANTS = ("original", "tslib")  # the Thinklab-SJTU release, Time-Series-Library's Crossformer
INT_ARGUMENTS = {  # argument -> smallest value the original can build with
    "data_dim": 1, "in_len": 1, "out_len": 1, "seg_len": 1, "win_size": 1, "factor": 1,
    "d_model": 1, "d_ff": 1, "n_heads": 1, "e_layers": 0,
}


class InvalidConfigError(ValueError):
    """A configuration the original Crossformer cannot build or run."""


def with_current_names(arguments):
    """A copy of an arguments dict with former names (FORMER_ARGUMENT_NAMES) read as the current ones."""
    return {FORMER_ARGUMENT_NAMES.get(key, key): value for key, value in arguments.items()}


def _check_arguments(config):
    for name, minimum in INT_ARGUMENTS.items():
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidConfigError(f"{name} must be an integer, got {value!r}")
        if value < minimum:
            raise InvalidConfigError(f"{name} must be >= {minimum}, got {value}")
    d_model, n_heads = config["d_model"], config["n_heads"]
    if n_heads > d_model:
        raise InvalidConfigError(
            f"n_heads={n_heads} exceeds d_model={d_model}: each head would have d_model//n_heads = 0 features")
    dropout = config["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise InvalidConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    variant = config.get("variant", "original")
    if variant not in VARIANTS:
        raise InvalidConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if variant == "tslib":
        if d_model % 2:
            raise InvalidConfigError(f"the tslib variant needs an even d_model (its sinusoid), got {d_model}")
        if config.get("baseline"):
            raise InvalidConfigError("the tslib variant has no baseline option")


def _block_seg_nums(config, in_seg_num):
    """Segment count entering each encoder block: block 0 keeps in_seg_num, block i merges by win_size."""
    seg_len, win = config["seg_len"], config["win_size"]
    block_seg_nums = [in_seg_num]
    for block in range(1, max(config["e_layers"], 1)):
        entering = block_seg_nums[-1]
        if win > 1:
            missing = -entering % win
            if missing > entering:
                raise InvalidConfigError(
                    f"encoder block {block} must merge {entering} segment(s) with win_size={win}, which needs "
                    f"{missing} re-appended segments but only {entering} exist "
                    f"(in_len={config['in_len']}, seg_len={seg_len}, e_layers={config['e_layers']})")
            entering = math.ceil(entering / win)
        block_seg_nums.append(entering)
    return block_seg_nums


def validate_and_derive(config):
    """Check a Crossformer configuration dict; return the derived lengths as a dict.

    Raises InvalidConfigError with a one-line message naming the offending argument.
    """
    _check_arguments(config)
    seg_len = config["seg_len"]
    in_seg_num = math.ceil(config["in_len"] / seg_len)
    out_seg_num = math.ceil(config["out_len"] / seg_len)
    return {
        "pad_in_len": in_seg_num * seg_len,
        "pad_out_len": out_seg_num * seg_len,
        "in_len_add": in_seg_num * seg_len - config["in_len"],
        "in_seg_num": in_seg_num,
        "out_seg_num": out_seg_num,
        "block_seg_nums": _block_seg_nums(config, in_seg_num),
    }
