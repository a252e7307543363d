"""Numerics that must match PyTorch's to the last bit: the building bricks every Crossformer layer uses.

Keras's own layers and ops are used wherever they compute what PyTorch computes. Four places where they do
not (measured while porting; docs/model.md#initialisation describes the initialisers) get a small
replacement here, and one where they are slower than they need be:

- ``torch_linear``: a Dense initialised like nn.Linear (Keras's defaults are Glorot and zeros), and a
  ``Dense`` that multiplies a rank > 2 input as a 2-D matrix (no tf.tensordot shape arithmetic on TensorFlow);
- ``LayerNormalization``: epsilon 1e-5, and float64 kept in float64 on JAX and torch (Keras computes a
  float64 LayerNorm in float32 there, keras-team/keras#23704);
- ``GELU``: the exact erf form computed as PyTorch does (TensorFlow's casts 1/sqrt(2) through float32);
- ``mean_in_dtype``: a float64 mean that stays in float64 on every backend.
"""
import math

import keras
from keras import initializers, layers, ops

PACKAGE = "crossformer"  # the registration package of every serialisable class ("crossformer>Crossformer")
LAYER_NORM_EPSILON = 1e-5  # PyTorch's nn.LayerNorm default; Keras's own default (1e-3) is wrong here.
SQRT_HALF = 0.7071067811865476  # 1/sqrt(2) in double precision


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dense(layers.Dense):
    """keras.layers.Dense that multiplies a rank > 2 input as one 2-D matrix [rows, features].

    On TensorFlow, Dense on a rank > 2 input goes through tf.tensordot, which builds its reshapes from the
    runtime shape (Shape, GatherV2, Prod, ConcatV2 ... around every MatMul, in both directions of a training
    step). Here the inner dimensions are static (only the batch is unknown), so a plain reshape to 2-D, the
    MatMul, and a reshape back do the same arithmetic, in the same order, with no shape arithmetic at run time.
    Same weights (kernel, bias) and names as Dense; the class keeps Dense's name because a .keras file keys the
    weights of a Sequential's layers by class name (torch_mlp's layers are saved under layers/dense).
    """

    def call(self, inputs, training=None):
        inner = tuple(inputs.shape[1:-1])
        if len(inputs.shape) <= 2 or None in inner:
            return super().call(inputs)
        rows = ops.reshape(inputs, (-1, inputs.shape[-1]))
        return ops.reshape(super().call(rows), (-1, *inner, self.units))


def torch_linear(units, fan_in, name, dtype):
    """A Dense initialised like nn.Linear: kernel and bias ~ U(+-1/sqrt(fan_in)) (kaiming_uniform, a=sqrt 5)."""
    bound = 1.0 / math.sqrt(fan_in)
    return Dense(
        units,
        kernel_initializer=initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform"),
        bias_initializer=initializers.RandomUniform(-bound, bound),
        name=name,
        dtype=dtype,
    )


def mean_in_dtype(x, axis):
    """Mean over one axis (kept); a float64 mean is computed in float64.

    ops.mean computes in result_type(x.dtype, "float32"), i.e. in float32 for float64 inputs on JAX and torch
    (keras-team/keras#23704); there a sum divided by the count stays in float64, as torch.mean does. Other dtypes
    keep ops.mean (which sums half precision in float32).
    """
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        return ops.mean(x, axis=axis, keepdims=True)
    return ops.sum(x, axis=axis, keepdims=True) / x.shape[axis]


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerNormalization(layers.LayerNormalization):
    """Keras's LayerNormalization, kept in float64 when it computes in float64.

    ops.layer_normalization computes in backend.result_type(x.dtype, "float32"), which is float32 for float64
    inputs on every backend but TensorFlow (keras-team/keras#23704), so a float64 model on JAX would be
    normalised in float32 (6e-8 off). In float64 this computes the same formula in float64 for the plain
    last-axis LayerNorm (nn.LayerNorm(d_model), the only one the Crossformer has); everything else goes
    through Keras's own op unchanged.
    """

    def call(self, inputs):
        rank = len(inputs.shape)
        plain_last_axis = ([axis % rank for axis in self.axis] == [rank - 1] and self.center and self.scale
                           and not self.rms_scaling)
        if self.compute_dtype != "float64" or keras.backend.backend() == "tensorflow" or not plain_last_axis:
            return super().call(inputs)
        centered = inputs - mean_in_dtype(inputs, -1)
        variance = mean_in_dtype(ops.square(centered), -1)
        return centered * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta


def torch_layer_norm(name, dtype):
    """nn.LayerNorm(d_model): epsilon 1e-5 (read at call time, so a test can plant Keras's 1e-3)."""
    return LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GELU(layers.Layer):
    """GELU with the variant stated, never a default: the original uses the exact erf form.

    The exact form is computed here as PyTorch does, x * 0.5 * (1 + erf(x / sqrt 2)), rather than with
    ops.gelu: TensorFlow's gelu casts 1/sqrt(2) through float32 (tf.cast of a Python float), which puts a
    5e-9 error into every float64 activation.
    """

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = approximate

    def call(self, x):
        if self.approximate:
            return ops.gelu(x, approximate=True)
        return x * 0.5 * (1.0 + ops.erf(x * SQRT_HALF))

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


def torch_mlp(d_in, d_hidden, name, dtype):
    """Sequential(Linear, GELU, Linear), named 0/1/2 like the PyTorch Sequential's keys."""
    return keras.Sequential(
        [torch_linear(d_hidden, d_in, "0", dtype), GELU(name="1", dtype=dtype),
         torch_linear(d_in, d_hidden, "2", dtype)],
        name=name,
    )
