"""Keras 3 port of the Crossformer (keras.layers / keras.ops only: TensorFlow, JAX or torch backend).

numerics (bricks that match PyTorch bit for bit) -> attention, embedding -> encoder, decoder -> model;
config (arguments and derived lengths), scaling (the scaler a model carries), losses and optimizers that
step as PyTorch's do. Never imports torch.
"""
from .attention import AttentionLayer, FullAttention, TwoStageAttentionLayer
from .config import MODEL_ARGUMENTS, ORIGINAL_MODEL_ARGUMENTS, InvalidConfigError, validate_and_derive
from .decoder import Decoder, DecoderLayer
from .embedding import DSWEmbedding, PositionalEmbedding
from .encoder import Encoder, ScaleBlock, SegMerging
from .losses import MeanSquaredError
from .model import FLOAT64_EXACT_BACKENDS, Crossformer
from .numerics import GELU, LayerNormalization
from .optimizers import TorchAdam
from .scaling import ScaleStatistic

__all__ = ["AttentionLayer", "Crossformer", "Decoder", "DecoderLayer", "DSWEmbedding", "Encoder",
           "FLOAT64_EXACT_BACKENDS", "FullAttention", "GELU", "InvalidConfigError", "LayerNormalization",
           "MODEL_ARGUMENTS", "MeanSquaredError", "ORIGINAL_MODEL_ARGUMENTS", "PositionalEmbedding", "ScaleBlock",
           "ScaleStatistic", "SegMerging", "TorchAdam", "TwoStageAttentionLayer", "validate_and_derive"]
