"""The encoder: segment merging between scales, and blocks of TSA layers.

docs/model.md (sections SegMerging, scale_block, Encoder); the original is cross_models/cross_encoder.py.
"""
import keras
from keras import layers, ops

from .attention import TwoStageAttentionLayer
from .numerics import PACKAGE, torch_layer_norm, torch_linear


@keras.saving.register_keras_serializable(package=PACKAGE)
class SegMerging(layers.Layer):
    """Merge win_size neighbouring segments: [B, D, L, d_model] -> [B, D, ceil(L/w), d_model]."""

    def __init__(self, *, d_model, win_size, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.win_size = d_model, win_size
        self.linear_trans = torch_linear(d_model, win_size * d_model, "linear_trans", self.dtype_policy)
        self.norm = torch_layer_norm("norm", self.dtype_policy)

    def build(self, input_shape):
        self.norm.build((None, self.win_size * self.d_model))
        self.linear_trans.build((None, self.win_size * self.d_model))

    def pad_segments(self, x):
        """Re-append the last (-L mod w) segments in their order (not the last one repeated)."""
        seg_num = x.shape[2]
        pad_num = -seg_num % self.win_size
        if not pad_num:
            return x
        return ops.concatenate([x, x[:, :, seg_num - pad_num:, :]], axis=2)

    def call(self, x):
        x = self.pad_segments(x)
        # Merged segment j = concat(s[j*w], ..., s[j*w + w - 1]) on features: a row-major reshape.
        merged = ops.reshape(x, (-1, x.shape[1], x.shape[2] // self.win_size, self.win_size * self.d_model))
        return self.linear_trans(self.norm(merged))

    def get_config(self):
        return {**super().get_config(), "d_model": self.d_model, "win_size": self.win_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaleBlock(layers.Layer):
    """Optional SegMerging (win_size > 1), then ``depth`` TSA layers (the original's ``scale_block``)."""

    def __init__(self, *, win_size, d_model, n_heads, d_ff, depth, dropout, seg_num=10, factor=10, legacy_mix=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.win_size, self.d_model, self.n_heads, self.d_ff, self.depth = win_size, d_model, n_heads, d_ff, depth
        self.dropout_rate, self.seg_num, self.factor, self.legacy_mix = dropout, seg_num, factor, legacy_mix
        policy = self.dtype_policy
        self.merge_layer = (SegMerging(d_model=d_model, win_size=win_size, name="merge_layer", dtype=policy)
                            if win_size > 1 else None)
        self.encode_layers = [
            TwoStageAttentionLayer(seg_num=seg_num, factor=factor, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                                   dropout=dropout, legacy_mix=legacy_mix, name=f"encode_layers-{i}", dtype=policy)
            for i in range(depth)
        ]

    def build(self, input_shape):
        if self.merge_layer is not None:
            self.merge_layer.build(input_shape)
        for layer in self.encode_layers:
            layer.build(input_shape)

    def call(self, x, training=None):
        if self.merge_layer is not None:
            x = self.merge_layer(x)
        for layer in self.encode_layers:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "win_size": self.win_size, "d_model": self.d_model, "n_heads": self.n_heads,
                "d_ff": self.d_ff, "depth": self.depth, "dropout": self.dropout_rate, "seg_num": self.seg_num,
                "factor": self.factor, "legacy_mix": self.legacy_mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Encoder(layers.Layer):
    """Block 0 (no merge) and merging blocks; returns [input, block_0 out, ..., block_N out].

    ``block_seg_nums`` lists the segment count each block computes on (keras_model.config derives it)."""

    def __init__(self, *, block_seg_nums, win_size, d_model, n_heads, d_ff, block_depth, dropout, factor=10,
                 legacy_mix=False, **kwargs):
        super().__init__(**kwargs)
        self.block_seg_nums = list(block_seg_nums)
        self.win_size, self.d_model, self.n_heads, self.d_ff = win_size, d_model, n_heads, d_ff
        self.block_depth, self.dropout_rate, self.factor, self.legacy_mix = block_depth, dropout, factor, legacy_mix
        self.encode_blocks = [
            ScaleBlock(win_size=1 if i == 0 else win_size, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                       depth=block_depth, dropout=dropout, seg_num=seg_num, factor=factor, legacy_mix=legacy_mix,
                       name=f"encode_blocks-{i}", dtype=self.dtype_policy)
            for i, seg_num in enumerate(self.block_seg_nums)
        ]

    def build(self, input_shape):
        for block in self.encode_blocks:
            block.build(input_shape)

    def call(self, x, training=None):
        encode_x = [x]
        for block in self.encode_blocks:
            x = block(x, training=training)
            encode_x.append(x)
        return encode_x

    def get_config(self):
        return {**super().get_config(), "block_seg_nums": self.block_seg_nums, "win_size": self.win_size,
                "d_model": self.d_model, "n_heads": self.n_heads, "d_ff": self.d_ff, "block_depth": self.block_depth,
                "dropout": self.dropout_rate, "factor": self.factor, "legacy_mix": self.legacy_mix}
