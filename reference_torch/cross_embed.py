"""The segment embeddings: the original's DSW_embedding (cross_models/cross_embed.py) and
Time-Series-Library's PatchEmbedding with its fixed sinusoid (layers/Embed.py there)."""
import math

import torch
from torch import nn


class DSW_embedding(nn.Module):
    """Dimension-segment-wise embedding: [B, T, D] -> [B, D, T/Ls, dm] (docs/model.md#dsw-embedding)."""

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
    """Time-Series-Library's embedding (docs/model.md#time-series-library-variant): segments -> Linear without
    bias, plus the sinusoid pe[:L] (the same for every variable). Input [B, T, D] already padded; output
    [B, D, T/Ls, dm]."""

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
