"""PyTorch reference Crossformer, state_dict-compatible with Thinklab-SJTU/Crossformer (c10c8ea)."""
from .geometry import CrossformerGeometry, InvalidConfigError
from .model import (AttentionLayer, Crossformer, Decoder, DecoderLayer, DSW_embedding, Encoder, FullAttention,
                    SegMerging, TwoStageAttentionLayer, scale_block)

__all__ = ["AttentionLayer", "Crossformer", "CrossformerGeometry", "Decoder", "DecoderLayer", "DSW_embedding",
           "Encoder", "FullAttention", "InvalidConfigError", "SegMerging", "TwoStageAttentionLayer", "scale_block"]
