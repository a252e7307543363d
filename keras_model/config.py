"""Validation and derived lengths for the Keras Crossformer.

Kept independent of reference_torch (which must not be imported here: it pulls in torch). The test suite
checks that this module and reference_torch/geometry.py accept and reject exactly the same configurations.
"""
import math
import numbers

INT_ARGUMENTS = {  # argument -> smallest value the original can build with
    "data_dim": 1, "in_len": 1, "out_len": 1, "seg_len": 1, "win_size": 1, "factor": 1,
    "d_model": 1, "d_ff": 1, "n_heads": 1, "e_layers": 0,
}


VARIANTS = ("original", "tslib")  # the Thinklab-SJTU release, Time-Series-Library's Crossformer


class InvalidConfigError(ValueError):
    """A configuration the original Crossformer cannot build or run."""


def validate_and_derive(config):
    """Check a Crossformer configuration dict; return the derived lengths as a dict.

    Raises InvalidConfigError with a one-line message naming the offending argument.
    """
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

    seg_len, win = config["seg_len"], config["win_size"]
    in_seg_num = math.ceil(config["in_len"] / seg_len)
    out_seg_num = math.ceil(config["out_len"] / seg_len)
    # Segment count entering each encoder block: block 0 keeps in_seg_num, block i merges by win_size.
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
    return {
        "pad_in_len": in_seg_num * seg_len,
        "pad_out_len": out_seg_num * seg_len,
        "in_len_add": in_seg_num * seg_len - config["in_len"],
        "in_seg_num": in_seg_num,
        "out_seg_num": out_seg_num,
        "block_seg_nums": block_seg_nums,
    }
