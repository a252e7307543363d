"""Keras 3 port of the Crossformer (keras.layers / keras.ops only: TensorFlow, JAX or torch backend)."""
from .config import InvalidConfigError, validate_and_derive
from .layers import (AttentionLayer, Decoder, DecoderLayer, DSWEmbedding, Encoder, FullAttention, GELU,
                     PositionalEmbedding, ScaleBlock, SegMerging, TwoStageAttentionLayer)
from .losses import MeanSquaredError
from .model import ARGUMENTS, FLOAT64_EXACT_BACKENDS, Crossformer
from .optimizers import TorchAdam

__all__ = ["ARGUMENTS", "FLOAT64_EXACT_BACKENDS", "AttentionLayer", "Crossformer", "Decoder", "DecoderLayer",
           "DSWEmbedding", "Encoder", "FullAttention", "GELU", "InvalidConfigError", "MeanSquaredError",
           "PositionalEmbedding", "ScaleBlock", "SegMerging", "TorchAdam", "TwoStageAttentionLayer",
           "validate_and_derive"]
