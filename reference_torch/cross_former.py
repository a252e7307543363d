"""The Crossformer: the original's cross_models/cross_former.py."""
import torch
from torch import nn

from .cross_decoder import Decoder
from .cross_embed import DSW_embedding, TSLibPatchEmbedding
from .cross_encoder import Encoder
from .geometry import CrossformerGeometry


class Crossformer(nn.Module):
    """The full model (docs/model.md#crossformer). Arguments, order and defaults are the original release's.

    ``legacy_mix=True`` reproduces checkpoints trained with the code before December 2023
    (docs/model.md#the-legacy-mix-attention). ``variant="tslib"`` is Time-Series-Library's Crossformer
    (docs/model.md#time-series-library-variant): its embedding keys and sinusoid, the input padded at the end by
    repeating the last step, and the *last* out_len steps kept.
    ``device`` is accepted for signature compatibility and ignored, as the original ignores it in forward.
    """

    def __init__(self, data_dim, in_len, out_len, seg_len, win_size=4, factor=10, d_model=512, d_ff=1024,
                 n_heads=8, e_layers=3, dropout=0.0, baseline=False, device=None, legacy_mix=False,
                 variant="original"):
        super().__init__()
        geometry = CrossformerGeometry(data_dim, in_len, out_len, seg_len, win_size, factor, d_model, d_ff,
                                       n_heads, e_layers, dropout, baseline=baseline, variant=variant)
        self.geometry = geometry
        self.crossformer_config = dict(
            data_dim=data_dim, in_len=in_len, out_len=out_len, seg_len=seg_len, win_size=win_size, factor=factor,
            d_model=d_model, d_ff=d_ff, n_heads=n_heads, e_layers=e_layers, dropout=dropout,
            baseline=bool(baseline), legacy_mix=bool(legacy_mix), variant=variant)
        self.data_dim = data_dim
        self.in_len = in_len
        self.out_len = out_len
        self.seg_len = seg_len
        self.merge_win = win_size
        self.baseline = baseline
        self.device = device
        self.legacy_mix = legacy_mix
        self.variant = variant
        self.pad_in_len = geometry.pad_in_len
        self.pad_out_len = geometry.pad_out_len
        self.in_len_add = geometry.in_len_add

        if variant == "tslib":
            self.enc_value_embedding = TSLibPatchEmbedding(seg_len=seg_len, d_model=d_model)
        else:
            self.enc_value_embedding = DSW_embedding(seg_len=seg_len, d_model=d_model)
        self.enc_pos_embedding = nn.Parameter(torch.randn(1, data_dim, geometry.in_seg_num, d_model))
        self.pre_norm = nn.LayerNorm(d_model)
        self.encoder = Encoder(block_seg_nums=geometry.block_seg_nums, win_size=win_size, d_model=d_model,
                               n_heads=n_heads, d_ff=d_ff, block_depth=1, dropout=dropout, factor=factor,
                               legacy_mix=legacy_mix)
        self.dec_pos_embedding = nn.Parameter(torch.randn(1, data_dim, geometry.out_seg_num, d_model))
        self.decoder = Decoder(seg_len=seg_len, d_layers=e_layers + 1, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
                               dropout=dropout, out_seg_num=geometry.out_seg_num, factor=factor,
                               legacy_mix=legacy_mix)

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
