"""The original's training loss, nn.MSELoss(), as a Keras loss."""
import keras
from keras import ops

from .numerics import PACKAGE, mean_in_dtype


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanSquaredError(keras.losses.Loss):
    """The mean of the squared error over every element (nn.MSELoss), computed in the prediction's dtype.

    keras.losses.MeanSquaredError takes ops.mean, which computes float64 in float32 on the JAX and torch
    backends (keras-team/keras#23704): float64 training there would then drift from PyTorch's by ~1e-11
    after a few steps. The per-sample means here are sums over the count; Keras's reduction
    (sum_over_batch_size) is itself a sum over a count.
    """

    def __init__(self, name="mean_squared_error", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.squeeze(mean_in_dtype(ops.square(y_pred - y_true), -1), -1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}
