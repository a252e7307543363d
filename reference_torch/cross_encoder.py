"""SegMerging, scale_block and the Encoder: the original's cross_models/cross_encoder.py."""
import torch
from torch import nn

from .attn import TwoStageAttentionLayer


class SegMerging(nn.Module):
    """Merge win_size adjacent segments: [B, D, L, dm] -> [B, D, ceil(L/w), dm] (docs/model.md#segmerging)."""

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
    """Optional SegMerging followed by ``depth`` TSA layers (docs/model.md#scale_block)."""

    def __init__(self, win_size, d_model, n_heads, d_ff, depth, dropout, seg_num=10, factor=10, legacy_mix=False):
        super().__init__()
        self.merge_layer = SegMerging(d_model=d_model, win_size=win_size) if win_size > 1 else None
        self.encode_layers = nn.ModuleList(
            TwoStageAttentionLayer(seg_num=seg_num, factor=factor, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                                   dropout=dropout, legacy_mix=legacy_mix)
            for _ in range(depth)
        )

    def forward(self, x):
        if self.merge_layer is not None:
            x = self.merge_layer(x)
        for layer in self.encode_layers:
            x = layer(x)
        return x


class Encoder(nn.Module):
    """Block 0 without merging, then merging blocks; returns [input, out_1, ..., out_N] (docs/model.md#encoder).

    The original's Encoder takes e_blocks and in_seg_num and computes each block's segment count itself;
    here ``block_seg_nums`` (from CrossformerGeometry) lists them, so the rules live in one place."""

    def __init__(self, block_seg_nums, win_size, d_model, n_heads, d_ff, block_depth, dropout, factor=10,
                 legacy_mix=False):
        super().__init__()
        self.encode_blocks = nn.ModuleList(
            scale_block(win_size=1 if i == 0 else win_size, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                        depth=block_depth, dropout=dropout, seg_num=seg_num, factor=factor, legacy_mix=legacy_mix)
            for i, seg_num in enumerate(block_seg_nums)
        )

    def forward(self, x):
        encode_x = [x]
        for block in self.encode_blocks:
            x = block(x)
            encode_x.append(x)
        return encode_x
