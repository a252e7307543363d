"""Attention: FullAttention, the multi-head AttentionLayer and the Two-Stage Attention (TSA) layer.

What each computes, with shapes: docs/model.md (sections FullAttention, AttentionLayer, The legacy mix
attention, TwoStageAttentionLayer); the original is cross_models/attn.py.
"""
import math
import warnings

import keras
from keras import initializers, layers, ops

from .numerics import PACKAGE, torch_layer_norm, torch_linear, torch_mlp


@keras.saving.register_keras_serializable(package=PACKAGE)
class FullAttention(layers.Layer):
    """softmax(QK^T / sqrt(E)) V on pre-split heads [B, L, H, E], dropout on the probabilities."""

    def __init__(self, *, attention_dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.attention_dropout = attention_dropout
        self.dropout = layers.Dropout(attention_dropout, name="dropout", dtype=self.dtype_policy)

    def call(self, queries, keys, values, training=None):
        scale = 1.0 / math.sqrt(queries.shape[-1])
        queries = ops.transpose(queries, (0, 2, 1, 3))  # [B, H, L, E]
        keys = ops.transpose(keys, (0, 2, 1, 3))  # [B, H, S, E]
        values = ops.transpose(values, (0, 2, 1, 3))  # [B, H, S, E]
        # The scale multiplies the scores after the matmul, as in the original. The keys are transposed as
        # [B, H, S, E] and then on their last two axes, not in one (0, 2, 3, 1) permutation: torch 2.13's
        # inductor takes any permutation of the keys there for key.transpose(-2, -1) and rewrites the chain into
        # scaled_dot_product_attention with the wrong axes (pytorch/pytorch#195320), which made torch.compile of
        # the Keras torch-backend model fail. TensorFlow folds the second transpose into the batch matmul.
        scores = scale * ops.matmul(queries, ops.swapaxes(keys, -2, -1))
        if scores.shape[-1] == 1:
            # One key (a single segment or router): softmax is 1, as in the original; Keras would warn about it.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="You are using a softmax over axis")
                attention = ops.softmax(scores, axis=-1)
        else:
            attention = ops.softmax(scores, axis=-1)
        attention = self.dropout(attention, training=training)
        return ops.transpose(ops.matmul(attention, values), (0, 2, 1, 3))  # [B, L, H, E]

    def get_config(self):
        return {**super().get_config(), "attention_dropout": self.attention_dropout}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionLayer(layers.Layer):
    """Multi-head attention, head h = feature slice [h*dk, (h+1)*dk).

    Projection width is (d_model // n_heads) * n_heads, which is < d_model when n_heads does not divide it.
    ``legacy_mix=True`` emulates the release before December 2023: [B,L,H,dk] is transposed to [B,H,L,dk]
    before the row-major reshape to [B, L, H*dk] (docs/model.md#the-legacy-mix-attention).
    """

    def __init__(self, *, d_model, n_heads, dropout=0.1, legacy_mix=False, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.n_heads, self.dropout_rate, self.legacy_mix = d_model, n_heads, dropout, legacy_mix
        self.head_dim = d_model // n_heads
        width = self.head_dim * n_heads
        policy = self.dtype_policy
        self.inner_attention = FullAttention(attention_dropout=dropout, name="inner_attention", dtype=policy)
        self.query_projection = torch_linear(width, d_model, "query_projection", policy)
        self.key_projection = torch_linear(width, d_model, "key_projection", policy)
        self.value_projection = torch_linear(width, d_model, "value_projection", policy)
        self.out_projection = torch_linear(d_model, width, "out_projection", policy)

    def build(self, queries_shape, keys_shape=None, values_shape=None):
        for projection in (self.query_projection, self.key_projection, self.value_projection):
            projection.build((None, self.d_model))
        self.out_projection.build((None, self.head_dim * self.n_heads))

    def split_heads(self, x):
        """[B, L, H*dk] -> [B, L, H, dk]: head h is the contiguous feature slice [h*dk, (h+1)*dk)."""
        return ops.reshape(x, (-1, x.shape[1], self.n_heads, self.head_dim))

    def merge_heads(self, out):
        """[B, L, H, dk] -> [B, L, H*dk], heads concatenated in order (or the legacy release's scramble)."""
        query_len = out.shape[1]
        if self.legacy_mix:
            out = ops.transpose(out, (0, 2, 1, 3))
        return ops.reshape(out, (-1, query_len, self.n_heads * self.head_dim))

    def call(self, queries, keys, values, training=None):
        out = self.inner_attention(
            self.split_heads(self.query_projection(queries)),
            self.split_heads(self.key_projection(keys)),
            self.split_heads(self.value_projection(values)),
            training=training,
        )
        return self.out_projection(self.merge_heads(out))

    def get_config(self):
        return {**super().get_config(), "d_model": self.d_model, "n_heads": self.n_heads,
                "dropout": self.dropout_rate, "legacy_mix": self.legacy_mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TwoStageAttentionLayer(layers.Layer):
    """Cross-time, then cross-dimension attention through per-segment routers, on [b, D, L, d_model]."""

    def __init__(self, *, seg_num, factor, d_model, n_heads, d_ff=None, dropout=0.1, legacy_mix=False, **kwargs):
        super().__init__(**kwargs)
        d_ff = d_ff or 4 * d_model  # the original's default
        self.seg_num, self.factor, self.d_model, self.n_heads = seg_num, factor, d_model, n_heads
        self.d_ff, self.dropout_rate, self.legacy_mix = d_ff, dropout, legacy_mix
        policy = self.dtype_policy
        attention = dict(d_model=d_model, n_heads=n_heads, dropout=dropout, legacy_mix=legacy_mix, dtype=policy)
        self.time_attention = AttentionLayer(**attention, name="time_attention")
        self.dim_sender = AttentionLayer(**attention, name="dim_sender")
        self.dim_receiver = AttentionLayer(**attention, name="dim_receiver")
        # One dropout layer used at the four residual sites, as in the original.
        self.dropout = layers.Dropout(dropout, name="dropout", dtype=policy)
        self.norm1 = torch_layer_norm("norm1", policy)
        self.norm2 = torch_layer_norm("norm2", policy)
        self.norm3 = torch_layer_norm("norm3", policy)
        self.norm4 = torch_layer_norm("norm4", policy)
        self.MLP1 = torch_mlp(d_model, d_ff, "MLP1", policy)
        self.MLP2 = torch_mlp(d_model, d_ff, "MLP2", policy)

    def build(self, input_shape):
        self.router = self.add_weight(shape=(self.seg_num, self.factor, self.d_model),
                                      initializer=initializers.RandomNormal(0.0, 1.0), name="router")
        token = (None, None, self.d_model)
        for attention in (self.time_attention, self.dim_sender, self.dim_receiver):
            attention.build(token, token, token)
        for sublayer in (self.norm1, self.norm2, self.norm3, self.norm4, self.MLP1, self.MLP2):
            sublayer.build(token)

    def tile_router(self, batch):
        """The routers for '(b seg_num)' rows, batch index outer: row i*seg_num + s holds router[s]."""
        tiled = ops.broadcast_to(self.router[None], (batch, self.seg_num, self.factor, self.d_model))
        return ops.reshape(tiled, (-1, self.factor, self.d_model))

    def call(self, x, training=None):
        ts_d, seg_num, d_model = x.shape[1], x.shape[2], x.shape[3]
        # Cross-time stage on '(b ts_d) seg_num d_model'.
        time_in = ops.reshape(x, (-1, seg_num, d_model))
        time_enc = self.time_attention(time_in, time_in, time_in, training=training)
        dim_in = self.norm1(time_in + self.dropout(time_enc, training=training))
        dim_in = self.norm2(dim_in + self.dropout(self.MLP1(dim_in), training=training))

        # Cross-dimension stage on '(b seg_num) ts_d d_model'.
        dim_send = ops.transpose(ops.reshape(dim_in, (-1, ts_d, seg_num, d_model)), (0, 2, 1, 3))
        dim_send = ops.reshape(dim_send, (-1, ts_d, d_model))
        batch_router = self.tile_router(ops.shape(x)[0])
        dim_buffer = self.dim_sender(batch_router, dim_send, dim_send, training=training)
        dim_receive = self.dim_receiver(dim_send, dim_buffer, dim_buffer, training=training)
        dim_enc = self.norm3(dim_send + self.dropout(dim_receive, training=training))
        dim_enc = self.norm4(dim_enc + self.dropout(self.MLP2(dim_enc), training=training))

        dim_enc = ops.reshape(dim_enc, (-1, seg_num, ts_d, d_model))
        return ops.transpose(dim_enc, (0, 2, 1, 3))

    def get_config(self):
        return {**super().get_config(), "seg_num": self.seg_num, "factor": self.factor, "d_model": self.d_model,
                "n_heads": self.n_heads, "d_ff": self.d_ff, "dropout": self.dropout_rate,
                "legacy_mix": self.legacy_mix}
