"""Lengths the Crossformer derives from its arguments, and the configurations it cannot run.

Pure Python; the rules are described in docs/model.md (Notation and shapes; Configurations the original cannot
run). The Keras port keeps its own independent implementation of them (keras_model/config.py), on purpose:
each model must stand on its own, and the test suite checks that both accept, reject and derive alike.
"""
import numbers


VARIANTS = ("original", "tslib")


class InvalidConfigError(ValueError):
    """A Crossformer configuration the original release cannot build or run."""


def _ceil_div(a, b):
    return -(-a // b)


def _require_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidConfigError(f"{name} must be >= {minimum}, got {value}")


class CrossformerGeometry:
    """Padded lengths and segment counts of every stage, validated."""

    def __init__(self, data_dim, in_len, out_len, seg_len, win_size, factor, d_model, d_ff, n_heads, e_layers,
                 dropout=0.0, baseline=False, variant="original"):
        for name, value, minimum in (("data_dim", data_dim, 1), ("in_len", in_len, 1), ("out_len", out_len, 1),
                                     ("seg_len", seg_len, 1), ("win_size", win_size, 1), ("factor", factor, 1),
                                     ("d_model", d_model, 1), ("d_ff", d_ff, 1), ("n_heads", n_heads, 1),
                                     ("e_layers", e_layers, 0)):
            _require_int(name, value, minimum)
        if n_heads > d_model:
            raise InvalidConfigError(
                f"n_heads={n_heads} exceeds d_model={d_model}: each head would have d_model//n_heads = 0 features")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= float(dropout) < 1.0:
            raise InvalidConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        if variant not in VARIANTS:
            raise InvalidConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if variant == "tslib" and d_model % 2:
            # TSLib's PositionalEmbedding fills pe[:, 1::2] from ceil(d_model/2) frequencies and fails on odd widths.
            raise InvalidConfigError(f"the tslib variant needs an even d_model (its sinusoid), got {d_model}")
        if variant == "tslib" and baseline:
            raise InvalidConfigError("the tslib variant has no baseline option")

        self.pad_in_len = _ceil_div(in_len, seg_len) * seg_len
        self.pad_out_len = _ceil_div(out_len, seg_len) * seg_len
        self.in_len_add = self.pad_in_len - in_len
        self.in_seg_num = self.pad_in_len // seg_len
        self.out_seg_num = self.pad_out_len // seg_len

        # Block 0 has no merge; block i merges ceil(L/w) from the previous block's L (= ceil(in_seg/w**i)).
        self.block_seg_nums = [self.in_seg_num]
        for _ in range(1, max(e_layers, 1)):
            seg_num = self.block_seg_nums[-1] if win_size > 1 else self.in_seg_num
            if win_size > 1:
                pad = (win_size - seg_num % win_size) % win_size
                if pad > seg_num:
                    # The original's torch.cat of x[:, :, -pad:] would be short and raise (SegMerging).
                    raise InvalidConfigError(
                        f"encoder block {len(self.block_seg_nums)} must merge {seg_num} segment(s) with "
                        f"win_size={win_size}, which needs {pad} re-appended segments but only {seg_num} exist "
                        f"(in_len={in_len}, seg_len={seg_len}, e_layers={e_layers})")
                seg_num = _ceil_div(seg_num, win_size)
            self.block_seg_nums.append(seg_num)
