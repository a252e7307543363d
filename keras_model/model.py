"""The Crossformer as a Keras 3 Model, mirroring reference_torch.Crossformer name for name.

The forward pass: docs/model.md#crossformer; the original is cross_models/cross_former.py.
"""
import warnings

import keras
import numpy as np
from keras import initializers, ops

from .config import validate_and_derive, with_current_names
from .decoder import Decoder
from .embedding import DSWEmbedding
from .encoder import Encoder
from .numerics import PACKAGE, mean_in_dtype, torch_layer_norm
from .scaling import ScaleStatistic

# Keras (3.15) computes float64 ops.matmul (so Dense) in float32 on the torch backend (keras-team/keras#23704), so a
# float64 model is float64 end to end only on these (on JAX with the float64 means and LayerNorm of numerics.py).
FLOAT64_EXACT_BACKENDS = ("tensorflow", "jax")


@keras.saving.register_keras_serializable(package=PACKAGE)
class Crossformer(keras.Model):
    """Crossformer with the original release's arguments, order and defaults.

    Input [batch, in_len, data_dim] -> forecast [batch, out_len, data_dim]. The model is built at construction,
    so its weights exist (and can be copied into) before the first call. ``dtype`` ("float32" or "float64", or
    any Keras dtype policy) sets the variables' and computation's precision. ``legacy_mix=True`` reproduces
    checkpoints trained with the release before December 2023 (docs/model.md#the-legacy-mix-attention).
    ``variant="tslib"`` is Time-Series-Library's Crossformer (docs/model.md#time-series-library-variant).
    ``device`` is accepted and ignored, as the original ignores it.

    ``scale_statistic`` ({"mean": [D], "std": [D]}, the training split's scaler) travels with the model through
    save/load; ``normalize`` / ``denormalize`` apply it as the original pipeline does. ``training_args`` keeps the
    original run's other arguments (data, split, learning rate, ...) so an export can write its args.json back.
    """

    def __init__(self, data_dim, in_len, out_len, seg_len, win_size=4, factor=10, d_model=512, d_ff=1024, n_heads=8,
                 e_layers=3, dropout=0.0, baseline=False, device=None, legacy_mix=False, variant="original",
                 scale_statistic=None, training_args=None, **kwargs):
        kwargs.setdefault("name", "crossformer")
        super().__init__(**kwargs)
        config = dict(data_dim=data_dim, in_len=in_len, out_len=out_len, seg_len=seg_len, win_size=win_size,
                      factor=factor, d_model=d_model, d_ff=d_ff, n_heads=n_heads, e_layers=e_layers, dropout=dropout,
                      baseline=bool(baseline), legacy_mix=bool(legacy_mix), variant=variant)
        self.derived = validate_and_derive(config)
        self.crossformer_config = config
        for name, value in config.items():
            setattr(self, name, value)
        self.merge_win = win_size
        self.scale_statistic = scale_statistic
        self.training_args = dict(training_args) if training_args else None
        self.pad_in_len = self.derived["pad_in_len"]
        self.pad_out_len = self.derived["pad_out_len"]
        self.in_len_add = self.derived["in_len_add"]

        policy = self.dtype_policy
        if policy.compute_dtype == "float64":
            _check_float64_backend()
        shared = dict(d_model=d_model, n_heads=n_heads, d_ff=d_ff, dropout=dropout, factor=factor,
                      legacy_mix=self.legacy_mix, dtype=policy)
        self.enc_value_embedding = DSWEmbedding(seg_len=seg_len, d_model=d_model, variant=variant,
                                                seg_num=self.derived["in_seg_num"], name="enc_value_embedding",
                                                dtype=policy)
        self.pre_norm = torch_layer_norm("pre_norm", policy)
        self.encoder = Encoder(block_seg_nums=self.derived["block_seg_nums"], win_size=win_size, block_depth=1,
                               name="encoder", **shared)
        self.decoder = Decoder(seg_len=seg_len, d_layers=e_layers + 1, out_seg_num=self.derived["out_seg_num"],
                               name="decoder", **shared)
        self.build((None, in_len, data_dim))

    def build(self, input_shape):
        if self.built:  # built at construction; load_model's build_from_config finds it done
            return
        standard_normal = initializers.RandomNormal(0.0, 1.0)
        self.enc_pos_embedding = self.add_weight(
            shape=(1, self.data_dim, self.derived["in_seg_num"], self.d_model), initializer=standard_normal,
            name="enc_pos_embedding")
        self.dec_pos_embedding = self.add_weight(
            shape=(1, self.data_dim, self.derived["out_seg_num"], self.d_model), initializer=standard_normal,
            name="dec_pos_embedding")
        embedded = (None, self.data_dim, self.derived["in_seg_num"], self.d_model)
        self.enc_value_embedding.build((None, self.pad_in_len, self.data_dim))
        self.pre_norm.build(embedded)
        self.encoder.build(embedded)
        self.decoder.build((None, self.data_dim, self.derived["out_seg_num"], self.d_model))

    def pad_input(self, x_seq):
        """Pad to a whole number of segments: the original repeats the first time step in front (paper,
        appendix D.1); TSLib repeats the last one at the end (ReplicationPad1d)."""
        if not self.in_len_add:
            return x_seq
        if self.variant == "tslib":
            return ops.concatenate([x_seq, ops.repeat(x_seq[:, -1:, :], self.in_len_add, axis=1)], axis=1)
        return ops.concatenate([ops.repeat(x_seq[:, :1, :], self.in_len_add, axis=1), x_seq], axis=1)

    def call(self, x_seq, training=None):
        x_seq = ops.convert_to_tensor(x_seq, dtype=self.compute_dtype)
        batch = ops.shape(x_seq)[0]
        # Baseline: the per-series time mean of the unpadded input.
        base = mean_in_dtype(x_seq, 1) if self.baseline else 0.0
        x = self.enc_value_embedding(self.pad_input(x_seq))
        x = self.pre_norm(x + self.enc_pos_embedding)
        enc_out = self.encoder(x, training=training)

        # The decoder input is only the learned positional embedding, tiled over the batch.
        dec_in = ops.broadcast_to(self.dec_pos_embedding, (batch,) + tuple(self.dec_pos_embedding.shape[1:]))
        predict_y = self.decoder(dec_in, enc_out, training=training)
        if self.variant == "tslib":
            return predict_y[:, -self.out_len:, :]  # TSLib keeps the last pred_len steps
        return base + predict_y[:, : self.out_len, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.out_len, self.data_dim)

    @property
    def scale_statistic(self):
        """{"mean": float64 array [D], "std": float64 array [D]} of the training data, or None."""
        return None if self._scale_statistic is None else self._scale_statistic.as_dict()

    @scale_statistic.setter
    def scale_statistic(self, statistic):
        """Set from a {"mean", "std"} dict or a ScaleStatistic (None clears it); shapes must be [data_dim]."""
        if statistic is not None and not isinstance(statistic, ScaleStatistic):
            statistic = ScaleStatistic.from_dict(statistic, self.data_dim)
        elif statistic is not None and statistic.mean.shape != (self.data_dim,):
            raise ValueError(f"scale_statistic has shape {statistic.mean.shape}, expected ({self.data_dim},)")
        self._scale_statistic = statistic

    def normalize(self, series):
        """(series - mean) / std over the last (variable) axis, as the original's StandardScaler.transform."""
        return self._require_scale_statistic().normalize(series)

    def denormalize(self, series):
        """series * std + mean: forecasts back to the data's original scale (the original's inverse_transform)."""
        return self._require_scale_statistic().denormalize(series)

    def _require_scale_statistic(self):
        if self._scale_statistic is None:
            raise ValueError("this model carries no scale statistic (convert from a folder with scale_statistic.pkl)")
        return self._scale_statistic

    def get_config(self):
        extra = {"training_args": self.training_args}
        if self._scale_statistic is not None:
            # Python floats serialise to JSON exactly (shortest round-trip repr), so float64 survives save/load.
            extra["scale_statistic"] = self._scale_statistic.as_lists()
        return {**super().get_config(), **self.crossformer_config, **extra}

    @classmethod
    def from_config(cls, config):
        return cls(**with_current_names(config))  # .keras files of version 0.1 say attention_mix


def _check_float64_backend():
    backend = keras.backend.backend()
    probe = ops.convert_to_tensor(np.zeros(1), dtype="float64")
    if keras.backend.standardize_dtype(probe.dtype) != "float64":  # JAX without x64 turns float64 into float32
        raise ValueError(f"float64 is switched off on the {backend} backend (it gave {probe.dtype}); "
                         "for JAX set JAX_ENABLE_X64=1 before importing keras")
    if backend not in FLOAT64_EXACT_BACKENDS:
        warnings.warn(f"float64 Crossformer on the {backend} backend: Keras computes its matmuls in float32 "
                      f"there (keras-team/keras#23704); use the {' or '.join(FLOAT64_EXACT_BACKENDS)} backend "
                      "for float64 precision", stacklevel=3)

