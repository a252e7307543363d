"""The decoder: layers that attend to one encoder scale each and add up their segment predictions.

docs/model.md (sections DecoderLayer, Decoder); the original is cross_models/cross_decoder.py.
"""
import keras
from keras import layers, ops

from .attention import AttentionLayer, TwoStageAttentionLayer
from .numerics import PACKAGE, torch_layer_norm, torch_linear, torch_mlp


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderLayer(layers.Layer):
    """TSA on the decoder state, cross-attention to one encoder scale, per-layer prediction.

    Returns (the new decoder state [B, D, out_seg_num, d_model], this layer's prediction
    [B, D * out_seg_num, seg_len])."""

    def __init__(self, *, seg_len, d_model, n_heads, d_ff=None, dropout=0.1, out_seg_num=10, factor=10,
                 legacy_mix=False, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_model, self.n_heads, self.d_ff = seg_len, d_model, n_heads, d_ff
        self.dropout_rate, self.out_seg_num, self.factor, self.legacy_mix = dropout, out_seg_num, factor, legacy_mix
        policy = self.dtype_policy
        self.self_attention = TwoStageAttentionLayer(seg_num=out_seg_num, factor=factor, d_model=d_model,
                                                     n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                                                     legacy_mix=legacy_mix, name="self_attention", dtype=policy)
        self.cross_attention = AttentionLayer(d_model=d_model, n_heads=n_heads, dropout=dropout,
                                              legacy_mix=legacy_mix, name="cross_attention", dtype=policy)
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
                "factor": self.factor, "legacy_mix": self.legacy_mix}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Decoder(layers.Layer):
    """Decoder layers chained on the state; layer i reads encoder output i; their predictions summed."""

    def __init__(self, *, seg_len, d_layers, d_model, n_heads, d_ff, dropout, out_seg_num=10, factor=10,
                 legacy_mix=False, **kwargs):
        super().__init__(**kwargs)
        self.seg_len, self.d_layers, self.d_model, self.n_heads, self.d_ff = seg_len, d_layers, d_model, n_heads, d_ff
        self.dropout_rate, self.out_seg_num, self.factor, self.legacy_mix = dropout, out_seg_num, factor, legacy_mix
        self.decode_layers = [
            DecoderLayer(seg_len=seg_len, d_model=d_model, n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                         out_seg_num=out_seg_num, factor=factor, legacy_mix=legacy_mix, name=f"decode_layers-{i}",
                         dtype=self.dtype_policy)
            for i in range(d_layers)
        ]

    def build(self, x_shape, cross_shape=None):
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
                "out_seg_num": self.out_seg_num, "factor": self.factor, "legacy_mix": self.legacy_mix}
