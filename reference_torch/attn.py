"""FullAttention, AttentionLayer and the Two-Stage Attention layer: the original's cross_models/attn.py
(docs/model.md, sections FullAttention to TwoStageAttentionLayer)."""
import math

import torch
from torch import nn


class FullAttention(nn.Module):
    """Softmax attention on pre-split heads: [B,L,H,E] x [B,S,H,E] -> [B,L,H,E] (docs/model.md#fullattention)."""

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
    """Multi-head attention with contiguous head slices (docs/model.md#attentionlayer).

    ``legacy_mix=True`` reproduces the release before c10c8ea (the original's ``mix`` argument;
    docs/model.md#the-legacy-mix-attention): the [B,L,H,dk] attention output is transposed to [B,H,L,dk]
    before the row-major view to [B,L,H*dk], which scrambles heads and positions.
    """

    def __init__(self, d_model, n_heads, d_keys=None, d_values=None, dropout=0.1, legacy_mix=False):
        super().__init__()
        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)
        self.inner_attention = FullAttention(scale=None, attention_dropout=dropout)
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads
        self.legacy_mix = legacy_mix

    def forward(self, queries, keys, values):
        batch, query_len, _ = queries.shape
        _, key_len, _ = keys.shape
        heads = self.n_heads
        queries = self.query_projection(queries).view(batch, query_len, heads, -1)
        keys = self.key_projection(keys).view(batch, key_len, heads, -1)
        values = self.value_projection(values).view(batch, key_len, heads, -1)
        out = self.inner_attention(queries, keys, values)
        if self.legacy_mix:
            out = out.transpose(2, 1).contiguous()
        out = out.view(batch, query_len, -1)
        return self.out_projection(out)


def mlp(d_in, d_hidden):
    """Sequential(Linear, GELU, Linear): the TSA and decoder MLPs (keys 0, 1, 2)."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_in))


class TwoStageAttentionLayer(nn.Module):
    """Cross-time then cross-dimension (router) attention on [b, D, L, dm]
    (docs/model.md#twostageattentionlayer)."""

    def __init__(self, seg_num, factor, d_model, n_heads, d_ff=None, dropout=0.1, legacy_mix=False):
        super().__init__()
        d_ff = d_ff or 4 * d_model
        attention = dict(d_model=d_model, n_heads=n_heads, dropout=dropout, legacy_mix=legacy_mix)
        self.time_attention = AttentionLayer(**attention)
        self.dim_sender = AttentionLayer(**attention)
        self.dim_receiver = AttentionLayer(**attention)
        self.router = nn.Parameter(torch.randn(seg_num, factor, d_model))
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.norm4 = nn.LayerNorm(d_model)
        self.MLP1 = mlp(d_model, d_ff)
        self.MLP2 = mlp(d_model, d_ff)

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
