"""Crossformer (Zhang & Yan, ICLR 2023) in PyTorch, state_dict-compatible with the original release.

Written from the project's spec (../shared/docs/crossformer-reference.md, section 1), which describes
Thinklab-SJTU/Crossformer at c10c8ea. Attribute names are the original's because they form the
state_dict keys. einops is not used: every rearrange is spelled out as reshape/permute with the batch
index outermost, exactly as einops orders it.
"""
import math

import torch
from torch import nn

from .geometry import CrossformerGeometry


class FullAttention(nn.Module):
    """Softmax attention on pre-split heads: [B,L,H,E] x [B,S,H,E] -> [B,L,H,E] (spec 1.1)."""

    def __init__(self, scale=None, attention_dropout=0.1):
        super().__init__()
        self.scale = scale
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, queries, keys, values):
        _, _, _, head_dim = queries.shape
        scale = self.scale or 1.0 / math.sqrt(head_dim)
        scores = torch.einsum("blhe,bshe->bhls", queries, keys)
        attention = self.dropout(torch.softmax(scale * scores, dim=-1))
        return torch.einsum("bhls,bshd->blhd", attention, values).contiguous()


class AttentionLayer(nn.Module):
    """Multi-head attention with contiguous head slices (spec 1.2).

    ``mix=True`` reproduces the pre-c10c8ea release (spec 1.3): the [B,L,H,dk] attention output is
    transposed to [B,H,L,dk] before the row-major view to [B,L,H*dk], which scrambles heads and positions.
    """

    def __init__(self, d_model, n_heads, d_keys=None, d_values=None, dropout=0.1, mix=False):
        super().__init__()
        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)
        self.inner_attention = FullAttention(scale=None, attention_dropout=dropout)
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads
        self.mix = mix

    def forward(self, queries, keys, values):
        batch, query_len, _ = queries.shape
        _, key_len, _ = keys.shape
        heads = self.n_heads
        queries = self.query_projection(queries).view(batch, query_len, heads, -1)
        keys = self.key_projection(keys).view(batch, key_len, heads, -1)
        values = self.value_projection(values).view(batch, key_len, heads, -1)
        out = self.inner_attention(queries, keys, values)
        if self.mix:
            out = out.transpose(2, 1).contiguous()
        out = out.view(batch, query_len, -1)
        return self.out_projection(out)


def _mlp(d_in, d_hidden):
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_in))


class TwoStageAttentionLayer(nn.Module):
    """Cross-time then cross-dimension (router) attention on [b, D, L, dm] (spec 1.4)."""

    def __init__(self, seg_num, factor, d_model, n_heads, d_ff=None, dropout=0.1, mix=False):
        super().__init__()
        d_ff = d_ff or 4 * d_model
        self.time_attention = AttentionLayer(d_model, n_heads, dropout=dropout, mix=mix)
        self.dim_sender = AttentionLayer(d_model, n_heads, dropout=dropout, mix=mix)
        self.dim_receiver = AttentionLayer(d_model, n_heads, dropout=dropout, mix=mix)
        self.router = nn.Parameter(torch.randn(seg_num, factor, d_model))
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.norm4 = nn.LayerNorm(d_model)
        self.MLP1 = _mlp(d_model, d_ff)
        self.MLP2 = _mlp(d_model, d_ff)

    def forward(self, x):
        batch, ts_d, seg_num, d_model = x.shape
        # Cross-time stage: attention over the segments of each (batch, dimension) series.
        time_in = x.reshape(batch * ts_d, seg_num, d_model)
        time_enc = self.time_attention(time_in, time_in, time_in)
        dim_in = self.norm1(time_in + self.dropout(time_enc))
        dim_in = self.norm2(dim_in + self.dropout(self.MLP1(dim_in)))

        # Cross-dimension stage: '(b ts_d) seg d -> (b seg) ts_d d', routers tiled batch-outer.
        dim_send = dim_in.reshape(batch, ts_d, seg_num, d_model).permute(0, 2, 1, 3)
        dim_send = dim_send.reshape(batch * seg_num, ts_d, d_model)
        batch_router = self.router.unsqueeze(0).expand(batch, -1, -1, -1)
        batch_router = batch_router.reshape(batch * seg_num, self.router.shape[1], d_model)
        dim_buffer = self.dim_sender(batch_router, dim_send, dim_send)
        dim_receive = self.dim_receiver(dim_send, dim_buffer, dim_buffer)
        dim_enc = self.norm3(dim_send + self.dropout(dim_receive))
        dim_enc = self.norm4(dim_enc + self.dropout(self.MLP2(dim_enc)))

        dim_enc = dim_enc.reshape(batch, seg_num, ts_d, d_model).permute(0, 2, 1, 3)
        return dim_enc.contiguous()


class DSW_embedding(nn.Module):
    """Dimension-segment-wise embedding: [B, T, D] -> [B, D, T/Ls, dm] (spec 1.5)."""

    def __init__(self, seg_len, d_model):
        super().__init__()
        self.seg_len = seg_len
        self.linear = nn.Linear(seg_len, d_model)

    def forward(self, x):
        batch, ts_len, ts_dim = x.shape
        x_segment = x.permute(0, 2, 1).reshape(batch, ts_dim, ts_len // self.seg_len, self.seg_len)
        return self.linear(x_segment)


class PositionalEmbedding(nn.Module):
    """Time-Series-Library's fixed sinusoid, a persistent buffer pe [1, max_len, d_model] computed in float32
    exactly as layers/Embed.py computes it (so a TSLib state_dict's pe matches it bit for bit)."""

    def __init__(self, d_model, max_len=5000):
        super().__init__()
        pe = torch.zeros(max_len, d_model).float()
        position = torch.arange(0, max_len).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return self.pe[:, : x.size(1)]


class TSLibPatchEmbedding(nn.Module):
    """Time-Series-Library's embedding (spec 6): segments -> Linear without bias, plus the sinusoid pe[:L]
    (the same for every variable). Input [B, T, D] already padded; output [B, D, T/Ls, dm]."""

    def __init__(self, seg_len, d_model):
        super().__init__()
        self.seg_len = seg_len
        self.value_embedding = nn.Linear(seg_len, d_model, bias=False)
        self.position_embedding = PositionalEmbedding(d_model)

    def forward(self, x):
        batch, ts_len, ts_dim = x.shape
        segments = x.permute(0, 2, 1).reshape(batch * ts_dim, ts_len // self.seg_len, self.seg_len)
        embedded = self.value_embedding(segments) + self.position_embedding(segments)
        return embedded.reshape(batch, ts_dim, ts_len // self.seg_len, -1)


class SegMerging(nn.Module):
    """Merge win_size adjacent segments: [B, D, L, dm] -> [B, D, ceil(L/w), dm] (spec 1.6)."""

    def __init__(self, d_model, win_size, norm_layer=nn.LayerNorm):
        super().__init__()
        self.d_model = d_model
        self.win_size = win_size
        self.linear_trans = nn.Linear(win_size * d_model, d_model)
        self.norm = norm_layer(win_size * d_model)

    def forward(self, x):
        seg_num = x.shape[2]
        pad_num = seg_num % self.win_size
        if pad_num != 0:
            # Re-append the last pad_num segments in order (not the last one repeated).
            pad_num = self.win_size - pad_num
            x = torch.cat((x, x[:, :, -pad_num:, :]), dim=-2)
        seg_to_merge = [x[:, :, i :: self.win_size, :] for i in range(self.win_size)]
        x = torch.cat(seg_to_merge, dim=-1)
        return self.linear_trans(self.norm(x))


class scale_block(nn.Module):  # noqa: N801 - the original's class name
    """Optional SegMerging followed by ``depth`` TSA layers (spec 1.7)."""

    def __init__(self, win_size, d_model, n_heads, d_ff, depth, dropout, seg_num=10, factor=10, mix=False):
        super().__init__()
        self.merge_layer = SegMerging(d_model, win_size, nn.LayerNorm) if win_size > 1 else None
        self.encode_layers = nn.ModuleList(
            TwoStageAttentionLayer(seg_num, factor, d_model, n_heads, d_ff, dropout, mix=mix)
            for _ in range(depth)
        )

    def forward(self, x):
        if self.merge_layer is not None:
            x = self.merge_layer(x)
        for layer in self.encode_layers:
            x = layer(x)
        return x


class Encoder(nn.Module):
    """Block 0 without merging, then e_blocks-1 merging blocks; returns [input, out_1, ..., out_N] (spec 1.8)."""

    def __init__(self, block_seg_nums, win_size, d_model, n_heads, d_ff, block_depth, dropout, factor=10,
                 mix=False):
        super().__init__()
        self.encode_blocks = nn.ModuleList(
            scale_block(1 if i == 0 else win_size, d_model, n_heads, d_ff, block_depth, dropout, seg_num,
                        factor, mix=mix)
            for i, seg_num in enumerate(block_seg_nums)
        )

    def forward(self, x):
        encode_x = [x]
        for block in self.encode_blocks:
            x = block(x)
            encode_x.append(x)
        return encode_x


class DecoderLayer(nn.Module):
    """TSA on the decoder state, cross-attention to one encoder scale, and a per-layer prediction (spec 1.9)."""

    def __init__(self, seg_len, d_model, n_heads, d_ff=None, dropout=0.1, out_seg_num=10, factor=10, mix=False):
        super().__init__()
        self.self_attention = TwoStageAttentionLayer(out_seg_num, factor, d_model, n_heads, d_ff, dropout,
                                                     mix=mix)
        self.cross_attention = AttentionLayer(d_model, n_heads, dropout=dropout, mix=mix)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        # The decoder MLP's hidden width is d_model, not d_ff (as in the original).
        self.MLP1 = _mlp(d_model, d_model)
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
    """d_layers DecoderLayers chained on the decoder state; layer i attends to encoder output i (spec 1.10)."""

    def __init__(self, seg_len, d_layers, d_model, n_heads, d_ff, dropout, router=False, out_seg_num=10,
                 factor=10, mix=False):
        super().__init__()
        self.router = router  # stored and unused, as in the original
        self.decode_layers = nn.ModuleList(
            DecoderLayer(seg_len, d_model, n_heads, d_ff, dropout, out_seg_num, factor, mix=mix)
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


class Crossformer(nn.Module):
    """The full model (spec 1.11). Arguments, order and defaults are the original release's.

    ``attention_mix=True`` reproduces checkpoints trained with the pre-December-2023 code (spec 1.3).
    ``variant="tslib"`` is Time-Series-Library's Crossformer (spec 6): its embedding keys and sinusoid, the
    input padded at the end by repeating the last step, and the *last* out_len steps kept.
    ``device`` is accepted for signature compatibility and ignored, as the original ignores it in forward.
    """

    def __init__(self, data_dim, in_len, out_len, seg_len, win_size=4, factor=10, d_model=512, d_ff=1024,
                 n_heads=8, e_layers=3, dropout=0.0, baseline=False, device=None, attention_mix=False,
                 variant="original"):
        super().__init__()
        geometry = CrossformerGeometry(data_dim, in_len, out_len, seg_len, win_size, factor, d_model, d_ff,
                                       n_heads, e_layers, dropout, baseline=baseline, variant=variant)
        self.geometry = geometry
        self.crossformer_config = dict(
            data_dim=data_dim, in_len=in_len, out_len=out_len, seg_len=seg_len, win_size=win_size, factor=factor,
            d_model=d_model, d_ff=d_ff, n_heads=n_heads, e_layers=e_layers, dropout=dropout,
            baseline=bool(baseline), attention_mix=bool(attention_mix), variant=variant)
        self.data_dim = data_dim
        self.in_len = in_len
        self.out_len = out_len
        self.seg_len = seg_len
        self.merge_win = win_size
        self.baseline = baseline
        self.device = device
        self.attention_mix = attention_mix
        self.variant = variant
        self.pad_in_len = geometry.pad_in_len
        self.pad_out_len = geometry.pad_out_len
        self.in_len_add = geometry.in_len_add

        if variant == "tslib":
            self.enc_value_embedding = TSLibPatchEmbedding(seg_len, d_model)
        else:
            self.enc_value_embedding = DSW_embedding(seg_len, d_model)
        self.enc_pos_embedding = nn.Parameter(torch.randn(1, data_dim, geometry.in_seg_num, d_model))
        self.pre_norm = nn.LayerNorm(d_model)
        self.encoder = Encoder(geometry.block_seg_nums, win_size, d_model, n_heads, d_ff, block_depth=1,
                               dropout=dropout, factor=factor, mix=attention_mix)
        self.dec_pos_embedding = nn.Parameter(torch.randn(1, data_dim, geometry.out_seg_num, d_model))
        self.decoder = Decoder(seg_len, e_layers + 1, d_model, n_heads, d_ff, dropout,
                               out_seg_num=geometry.out_seg_num, factor=factor, mix=attention_mix)

    def forward(self, x_seq):
        batch = x_seq.shape[0]
        if self.baseline:
            base = x_seq.mean(dim=1, keepdim=True)
        else:
            base = 0
        if self.in_len_add != 0 and self.variant == "tslib":
            # TSLib: ReplicationPad1d((0, pad)), the last time step repeated at the end.
            x_seq = torch.cat((x_seq, x_seq[:, -1:, :].expand(-1, self.in_len_add, -1)), dim=1)
        elif self.in_len_add != 0:
            # Front-pad by repeating the first time step (paper, appendix D.1).
            x_seq = torch.cat((x_seq[:, :1, :].expand(-1, self.in_len_add, -1), x_seq), dim=1)

        x_seq = self.enc_value_embedding(x_seq)
        x_seq = x_seq + self.enc_pos_embedding
        x_seq = self.pre_norm(x_seq)
        enc_out = self.encoder(x_seq)

        dec_in = self.dec_pos_embedding.expand(batch, -1, -1, -1)
        predict_y = self.decoder(dec_in, enc_out)
        if self.variant == "tslib":
            return predict_y[:, -self.out_len:, :]  # TSLib keeps the last pred_len steps
        return base + predict_y[:, : self.out_len, :]
