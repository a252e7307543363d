"""DecoderLayer and Decoder: the original's cross_models/cross_decoder.py."""
from torch import nn

from .attn import AttentionLayer, TwoStageAttentionLayer, mlp


class DecoderLayer(nn.Module):
    """TSA on the decoder state, cross-attention to one encoder scale, and a per-layer prediction
    (docs/model.md#decoderlayer)."""

    def __init__(self, seg_len, d_model, n_heads, d_ff=None, dropout=0.1, out_seg_num=10, factor=10,
                 legacy_mix=False):
        super().__init__()
        self.self_attention = TwoStageAttentionLayer(seg_num=out_seg_num, factor=factor, d_model=d_model,
                                                     n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                                                     legacy_mix=legacy_mix)
        self.cross_attention = AttentionLayer(d_model=d_model, n_heads=n_heads, dropout=dropout,
                                              legacy_mix=legacy_mix)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        # The decoder MLP's hidden width is d_model, not d_ff (as in the original).
        self.MLP1 = mlp(d_model, d_model)
        self.linear_pred = nn.Linear(d_model, seg_len)

    def forward(self, x, cross):
        batch, ts_d, out_seg_num, d_model = x.shape
        x = self.self_attention(x)
        x = x.reshape(batch * ts_d, out_seg_num, d_model)
        cross = cross.reshape(batch * ts_d, cross.shape[2], d_model)
        tmp = self.cross_attention(x, cross, cross)
        x = self.norm1(x + self.dropout(tmp))
        y = self.MLP1(x)
        dec_output = self.norm2(x + y)
        dec_output = dec_output.reshape(batch, ts_d, out_seg_num, d_model)
        layer_predict = self.linear_pred(dec_output)
        layer_predict = layer_predict.reshape(batch, ts_d * out_seg_num, -1)
        return dec_output, layer_predict


class Decoder(nn.Module):
    """d_layers DecoderLayers chained on the decoder state; layer i attends to encoder output i
    (docs/model.md#decoder)."""

    def __init__(self, seg_len, d_layers, d_model, n_heads, d_ff, dropout, router=False, out_seg_num=10,
                 factor=10, legacy_mix=False):
        super().__init__()
        self.router = router  # stored and unused, as in the original
        self.decode_layers = nn.ModuleList(
            DecoderLayer(seg_len=seg_len, d_model=d_model, n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                         out_seg_num=out_seg_num, factor=factor, legacy_mix=legacy_mix)
            for _ in range(d_layers)
        )

    def forward(self, x, cross):
        batch, ts_d, out_seg_num, _ = x.shape
        final_predict = None
        for i, layer in enumerate(self.decode_layers):
            x, layer_predict = layer(x, cross[i])
            final_predict = layer_predict if final_predict is None else final_predict + layer_predict
        seg_len = final_predict.shape[-1]
        # 'b (out_d seg_num) seg_len -> b (seg_num seg_len) out_d'
        final_predict = final_predict.reshape(batch, ts_d, out_seg_num, seg_len).permute(0, 2, 3, 1)
        return final_predict.reshape(batch, out_seg_num * seg_len, ts_d)
