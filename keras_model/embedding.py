"""The input embedding: series cut into segments, each mapped to d_model features.

docs/model.md#dsw-embedding (the original, cross_models/cross_embed.py) and
docs/model.md#time-series-library-variant (TSLib's PatchEmbedding with its fixed sinusoid).
"""
import math

import keras
import numpy as np
from keras import initializers, layers, ops

from .numerics import PACKAGE, Dense, torch_linear


def tslib_sinusoid(seg_num, d_model):
    """Time-Series-Library's positional table pe[:seg_num] (layers/Embed.py), computed in float32."""
    position = np.arange(seg_num, dtype=np.float32)[:, None]
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * np.float32(-(math.log(10000.0) / d_model)))
    table = np.zeros((seg_num, d_model), np.float32)
    table[:, 0::2] = np.sin(position * div_term)
    table[:, 1::2] = np.cos(position * div_term)
    return table[None]


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionalEmbedding(layers.Layer):
    """TSLib's fixed sinusoid as a non-trainable weight ``pe`` [1, seg_num, d_model]: the rows the model uses
    of TSLib's [1, 5000, d_model] buffer. Converted models carry the checkpoint's exact float32 values."""

    def __init__(self, *, seg_num, d_model, **kwargs):
        super().__init__(**kwargs)
        self.seg_num, self.d_model = seg_num, d_model

    def build(self, input_shape=None):
        self.pe = self.add_weight(shape=(1, self.seg_num, self.d_model), trainable=False, name="pe",
                                  initializer=initializers.Constant(tslib_sinusoid(self.seg_num, self.d_model)))

    def call(self, segments):
        return self.pe

    def get_config(self):
        return {**super().get_config(), "seg_num": self.seg_num, "d_model": self.d_model}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DSWEmbedding(layers.Layer):
    """Dimension-segment-wise embedding [B, T, D] -> [B, D, T/seg_len, d_model]; T must be padded already.

    ``variant="tslib"``: TSLib's PatchEmbedding: ``value_embedding`` without bias plus the sinusoid
    ``position_embedding`` (the same for every variable), under TSLib's key names; ``seg_num`` rows of it."""

    def __init__(self, *, seg_len, d_model, variant="original", seg_num=None, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_model, self.variant, self.seg_num = seg_len, d_model, variant, seg_num
        policy = self.dtype_policy
        if variant == "tslib":
            self.value_embedding = Dense(
                d_model, use_bias=False, name="value_embedding", dtype=policy,
                kernel_initializer=initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"))
            self.position_embedding = PositionalEmbedding(seg_num=seg_num, d_model=d_model,
                                                          name="position_embedding", dtype=policy)
        else:
            self.linear = torch_linear(d_model, seg_len, "linear", policy)

    def build(self, input_shape):
        if self.variant == "tslib":
            self.value_embedding.build((None, self.seg_len))
            self.position_embedding.build()
        else:
            self.linear.build((None, self.seg_len))

    def call(self, x):
        ts_len, ts_dim = x.shape[1], x.shape[2]
        seg_num = ts_len // self.seg_len
        segments = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, ts_dim, seg_num, self.seg_len))
        if self.variant == "tslib":
            # TSLib's layout: '(b d) seg_num seg_len' through its sublayers, then back to [b, d, seg_num, d_model].
            segments = ops.reshape(segments, (-1, seg_num, self.seg_len))
            embedded = self.value_embedding(segments) + self.position_embedding(segments)
            return ops.reshape(embedded, (-1, ts_dim, seg_num, self.d_model))
        return self.linear(segments)

    def get_config(self):
        return {**super().get_config(), "seg_len": self.seg_len, "d_model": self.d_model, "variant": self.variant,
                "seg_num": self.seg_num}
