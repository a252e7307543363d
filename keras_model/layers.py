"""Crossformer building blocks in Keras 3 (keras.layers / keras.ops only; any backend).

Every layer is named after the PyTorch attribute it mirrors (ModuleList item i of ``attr`` as ``attr-i``),
so a weight's Keras path (``crossformer/encoder/encode_blocks-1/merge_layer/linear_trans/kernel``) spells its
state_dict key (``encoder.encode_blocks.1.merge_layer.linear_trans.weight``). Shapes are static except the batch axis;
every reshape that involves the batch puts it outermost, as einops does in the original.
"""
import math
import warnings

import keras
import numpy as np
from keras import initializers, layers, ops

PACKAGE = "crossformer"
LAYER_NORM_EPSILON = 1e-5  # PyTorch's nn.LayerNorm default; Keras's own default (1e-3) is wrong here.
SQRT_HALF = 0.7071067811865476  # 1/sqrt(2) in double precision


def torch_linear(units, fan_in, name, dtype):
    """A Dense initialised like nn.Linear: kernel and bias ~ U(+-1/sqrt(fan_in)) (kaiming_uniform, a=sqrt 5)."""
    bound = 1.0 / math.sqrt(fan_in)
    return layers.Dense(
        units,
        kernel_initializer=initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform"),
        bias_initializer=initializers.RandomUniform(-bound, bound),
        name=name,
        dtype=dtype,
    )


def mean_in_dtype(x, axis):
    """Mean over one axis (kept); a float64 mean is computed in float64.

    ops.mean computes in result_type(x.dtype, "float32"), i.e. in float32 for float64 inputs on JAX and torch
    (keras-team/keras#23704); there a sum divided by the count stays in float64, as torch.mean does. Other dtypes
    keep ops.mean (which sums half precision in float32).
    """
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        return ops.mean(x, axis=axis, keepdims=True)
    return ops.sum(x, axis=axis, keepdims=True) / x.shape[axis]


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerNormalization(layers.LayerNormalization):
    """Keras's LayerNormalization, kept in float64 when it computes in float64.

    ops.layer_normalization computes in backend.result_type(x.dtype, "float32"), which is float32 for float64
    inputs on every backend but TensorFlow (keras-team/keras#23704), so a float64 model on JAX would be
    normalised in float32 (6e-8 off). In float64 this computes the same formula in float64 for the plain
    last-axis LayerNorm (nn.LayerNorm(d_model), the only one the Crossformer has); everything else goes
    through Keras's own op unchanged.
    """

    def call(self, inputs):
        rank = len(inputs.shape)
        plain_last_axis = ([axis % rank for axis in self.axis] == [rank - 1] and self.center and self.scale
                           and not self.rms_scaling)
        if self.compute_dtype != "float64" or keras.backend.backend() == "tensorflow" or not plain_last_axis:
            return super().call(inputs)
        centered = inputs - mean_in_dtype(inputs, -1)
        variance = mean_in_dtype(ops.square(centered), -1)
        return centered * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta


def torch_layer_norm(name, dtype):
    return LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GELU(layers.Layer):
    """GELU with the variant stated, never a default: the original uses the exact erf form.

    The exact form is computed here as PyTorch does, x * 0.5 * (1 + erf(x / sqrt 2)), rather than with
    ops.gelu: TensorFlow's gelu casts 1/sqrt(2) through float32 (tf.cast of a Python float), which puts a
    5e-9 error into every float64 activation.
    """

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = approximate

    def call(self, x):
        if self.approximate:
            return ops.gelu(x, approximate=True)
        return x * 0.5 * (1.0 + ops.erf(x * SQRT_HALF))

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


def torch_mlp(d_in, d_hidden, name, dtype):
    """Sequential(Linear, GELU, Linear), named 0/1/2 like the PyTorch Sequential's keys."""
    return keras.Sequential(
        [torch_linear(d_hidden, d_in, "0", dtype), GELU(name="1", dtype=dtype),
         torch_linear(d_in, d_hidden, "2", dtype)],
        name=name,
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class FullAttention(layers.Layer):
    """softmax(QK^T / sqrt(E)) V on pre-split heads [B, L, H, E] (spec 1.1), dropout on the probabilities."""

    def __init__(self, attention_dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.attention_dropout = attention_dropout
        self.dropout = layers.Dropout(attention_dropout, name="dropout", dtype=self.dtype_policy)

    def call(self, queries, keys, values, training=None):
        scale = 1.0 / math.sqrt(queries.shape[-1])
        queries = ops.transpose(queries, (0, 2, 1, 3))  # [B, H, L, E]
        keys = ops.transpose(keys, (0, 2, 3, 1))  # [B, H, E, S]
        values = ops.transpose(values, (0, 2, 1, 3))  # [B, H, S, E]
        # The scale multiplies the scores after the matmul, as in the original.
        scores = scale * ops.matmul(queries, keys)
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
    """Multi-head attention, head h = feature slice [h*dk, (h+1)*dk) (spec 1.2).

    Projection width is (d_model // n_heads) * n_heads, which is < d_model when n_heads does not divide it.
    ``mix=True`` emulates the pre-c10c8ea release (spec 1.3): [B,L,H,dk] is transposed to [B,H,L,dk] before the
    row-major reshape to [B, L, H*dk].
    """

    def __init__(self, d_model, n_heads, dropout=0.1, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.n_heads, self.dropout_rate, self.mix = d_model, n_heads, dropout, mix
        self.head_dim = d_model // n_heads
        width = self.head_dim * n_heads
        policy = self.dtype_policy
        self.inner_attention = FullAttention(dropout, name="inner_attention", dtype=policy)
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
        """[B, L, H, dk] -> [B, L, H*dk], heads concatenated in order (or the pre-fix release's scramble)."""
        query_len = out.shape[1]
        if self.mix:
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
                "dropout": self.dropout_rate, "mix": self.mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TwoStageAttentionLayer(layers.Layer):
    """Cross-time, then cross-dimension attention through per-segment routers, on [b, D, L, dm] (spec 1.4)."""

    def __init__(self, seg_num, factor, d_model, n_heads, d_ff, dropout=0.1, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.seg_num, self.factor, self.d_model, self.n_heads = seg_num, factor, d_model, n_heads
        self.d_ff, self.dropout_rate, self.mix = d_ff, dropout, mix
        policy = self.dtype_policy
        self.time_attention = AttentionLayer(d_model, n_heads, dropout, mix, name="time_attention", dtype=policy)
        self.dim_sender = AttentionLayer(d_model, n_heads, dropout, mix, name="dim_sender", dtype=policy)
        self.dim_receiver = AttentionLayer(d_model, n_heads, dropout, mix, name="dim_receiver", dtype=policy)
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
                "n_heads": self.n_heads, "d_ff": self.d_ff, "dropout": self.dropout_rate, "mix": self.mix}


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

    def __init__(self, seg_num, d_model, **kwargs):
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
    """Dimension-segment-wise embedding [B, T, D] -> [B, D, T/Ls, dm] (spec 1.5); T must be padded already.

    ``variant="tslib"``: TSLib's PatchEmbedding (spec 6): ``value_embedding`` without bias plus the sinusoid
    ``position_embedding`` (the same for every variable), under TSLib's key names."""

    def __init__(self, seg_len, d_model, variant="original", seg_num=None, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_model, self.variant, self.seg_num = seg_len, d_model, variant, seg_num
        policy = self.dtype_policy
        if variant == "tslib":
            self.value_embedding = layers.Dense(
                d_model, use_bias=False, name="value_embedding", dtype=policy,
                kernel_initializer=initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"))
            self.position_embedding = PositionalEmbedding(seg_num, d_model, name="position_embedding", dtype=policy)
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class SegMerging(layers.Layer):
    """Merge win_size neighbouring segments: [B, D, L, dm] -> [B, D, ceil(L/w), dm] (spec 1.6)."""

    def __init__(self, d_model, win_size, **kwargs):
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
    """Optional SegMerging (win_size > 1), then ``depth`` TSA layers (spec 1.7)."""

    def __init__(self, win_size, d_model, n_heads, d_ff, depth, dropout, seg_num, factor, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.win_size, self.d_model, self.n_heads, self.d_ff, self.depth = win_size, d_model, n_heads, d_ff, depth
        self.dropout_rate, self.seg_num, self.factor, self.mix = dropout, seg_num, factor, mix
        policy = self.dtype_policy
        self.merge_layer = SegMerging(d_model, win_size, name="merge_layer", dtype=policy) if win_size > 1 else None
        self.encode_layers = [
            TwoStageAttentionLayer(seg_num, factor, d_model, n_heads, d_ff, dropout, mix,
                                   name=f"encode_layers-{i}", dtype=policy)
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
                "factor": self.factor, "mix": self.mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Encoder(layers.Layer):
    """Block 0 (no merge) and merging blocks; returns [input, block_0 out, ..., block_N out] (spec 1.8)."""

    def __init__(self, block_seg_nums, win_size, d_model, n_heads, d_ff, dropout, factor, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.block_seg_nums = list(block_seg_nums)
        self.win_size, self.d_model, self.n_heads, self.d_ff = win_size, d_model, n_heads, d_ff
        self.dropout_rate, self.factor, self.mix = dropout, factor, mix
        self.encode_blocks = [
            ScaleBlock(1 if i == 0 else win_size, d_model, n_heads, d_ff, 1, dropout, seg_num, factor, mix,
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
                "d_model": self.d_model, "n_heads": self.n_heads, "d_ff": self.d_ff, "dropout": self.dropout_rate,
                "factor": self.factor, "mix": self.mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderLayer(layers.Layer):
    """TSA on the decoder state, cross-attention to one encoder scale, per-layer prediction (spec 1.9)."""

    def __init__(self, seg_len, d_model, n_heads, d_ff, dropout, out_seg_num, factor, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_model, self.n_heads, self.d_ff = seg_len, d_model, n_heads, d_ff
        self.dropout_rate, self.out_seg_num, self.factor, self.mix = dropout, out_seg_num, factor, mix
        policy = self.dtype_policy
        self.self_attention = TwoStageAttentionLayer(out_seg_num, factor, d_model, n_heads, d_ff, dropout, mix,
                                                     name="self_attention", dtype=policy)
        self.cross_attention = AttentionLayer(d_model, n_heads, dropout, mix, name="cross_attention", dtype=policy)
        self.norm1 = torch_layer_norm("norm1", policy)
        self.norm2 = torch_layer_norm("norm2", policy)
        self.dropout = layers.Dropout(dropout, name="dropout", dtype=policy)
        self.MLP1 = torch_mlp(d_model, d_model, "MLP1", policy)  # hidden width d_model, not d_ff
        self.linear_pred = torch_linear(seg_len, d_model, "linear_pred", policy)

    def build(self, x_shape, cross_shape=None):
        token = (None, None, self.d_model)
        self.self_attention.build(x_shape)
        self.cross_attention.build(token, token, token)
        for sublayer in (self.norm1, self.norm2, self.MLP1, self.linear_pred):
            sublayer.build(token)

    def call(self, x, cross, training=None):
        ts_d, out_seg_num, d_model = x.shape[1], x.shape[2], x.shape[3]
        x = self.self_attention(x, training=training)
        x = ops.reshape(x, (-1, out_seg_num, d_model))
        cross = ops.reshape(cross, (-1, cross.shape[2], d_model))
        tmp = self.cross_attention(x, cross, cross, training=training)
        x = self.norm1(x + self.dropout(tmp, training=training))
        dec_output = self.norm2(x + self.MLP1(x))  # no dropout on this MLP's output
        dec_output = ops.reshape(dec_output, (-1, ts_d, out_seg_num, d_model))
        layer_predict = self.linear_pred(dec_output)
        return dec_output, ops.reshape(layer_predict, (-1, ts_d * out_seg_num, self.seg_len))

    def get_config(self):
        return {**super().get_config(), "seg_len": self.seg_len, "d_model": self.d_model, "n_heads": self.n_heads,
                "d_ff": self.d_ff, "dropout": self.dropout_rate, "out_seg_num": self.out_seg_num,
                "factor": self.factor, "mix": self.mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Decoder(layers.Layer):
    """Decoder layers chained on the state; layer i reads encoder output i; predictions summed (spec 1.10)."""

    def __init__(self, seg_len, d_layers, d_model, n_heads, d_ff, dropout, out_seg_num, factor, mix=False, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_layers, self.d_model, self.n_heads, self.d_ff = seg_len, d_layers, d_model, n_heads, d_ff
        self.dropout_rate, self.out_seg_num, self.factor, self.mix = dropout, out_seg_num, factor, mix
        self.decode_layers = [
            DecoderLayer(seg_len, d_model, n_heads, d_ff, dropout, out_seg_num, factor, mix,
                         name=f"decode_layers-{i}", dtype=self.dtype_policy)
            for i in range(d_layers)
        ]

    def build(self, x_shape, cross_shapes=None):
        for layer in self.decode_layers:
            layer.build(x_shape)

    def call(self, x, cross, training=None):
        ts_d, out_seg_num = x.shape[1], x.shape[2]
        final_predict = None
        for layer, cross_enc in zip(self.decode_layers, cross):
            x, layer_predict = layer(x, cross_enc, training=training)
            final_predict = layer_predict if final_predict is None else final_predict + layer_predict
        # 'b (out_d seg_num) seg_len -> b (seg_num seg_len) out_d'
        final_predict = ops.reshape(final_predict, (-1, ts_d, out_seg_num, self.seg_len))
        final_predict = ops.transpose(final_predict, (0, 2, 3, 1))
        return ops.reshape(final_predict, (-1, out_seg_num * self.seg_len, ts_d))

    def get_config(self):
        return {**super().get_config(), "seg_len": self.seg_len, "d_layers": self.d_layers, "d_model": self.d_model,
                "n_heads": self.n_heads, "d_ff": self.d_ff, "dropout": self.dropout_rate,
                "out_seg_num": self.out_seg_num, "factor": self.factor, "mix": self.mix}
