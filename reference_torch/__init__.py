"""Crossformer (Zhang & Yan, ICLR 2023) in PyTorch, state_dict-compatible with the original release.

Written from the description in docs/model.md of Thinklab-SJTU/Crossformer at c10c8ea, one module per file of
the original's cross_models/ (attn, cross_embed, cross_encoder, cross_decoder, cross_former), so each can be
read against its original. Attribute names are the original's because they form the state_dict keys. einops is
not used: every rearrange is spelled out as reshape/permute with the batch index outermost, exactly as einops
orders it. Never imports TensorFlow or Keras.
"""
from .attn import AttentionLayer, FullAttention, TwoStageAttentionLayer
from .cross_decoder import Decoder, DecoderLayer
from .cross_embed import DSW_embedding, PositionalEmbedding, TSLibPatchEmbedding
from .cross_encoder import Encoder, SegMerging, scale_block
from .cross_former import Crossformer
from .geometry import CrossformerGeometry, InvalidConfigError

__all__ = ["AttentionLayer", "Crossformer", "CrossformerGeometry", "Decoder", "DecoderLayer", "DSW_embedding",
           "Encoder", "FullAttention", "InvalidConfigError", "PositionalEmbedding", "SegMerging", "TSLibPatchEmbedding",
           "TwoStageAttentionLayer", "scale_block"]
