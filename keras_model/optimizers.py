"""Optimizers that step exactly as PyTorch's do, so training in Keras follows training in PyTorch."""
import keras
import numpy as np
from keras import ops

from .numerics import PACKAGE

# Flat moments are kept in chunks of at most this many bytes (a variable larger than that is a chunk of its own).
# One 45 MB chunk (ETTh1, 11.3M float32 parameters) streams every elementwise op through DRAM: 239 ms per
# update against 77 ms per variable; 4 MiB chunks stay in the 32 MiB L3 cache of the machine measured: 56 ms,
# with 12 chunks' worth of ops to trace (bench/optimizer_chunks.py, one run).
FLAT_CHUNK_BYTES = 4 << 20


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchAdam(keras.optimizers.Optimizer):
    """Adam with torch.optim.Adam's update (the original release's optimizer).

    keras.optimizers.Adam adds epsilon to sqrt(v) *before* the bias correction of v is divided out, so its
    effective epsilon is eps / sqrt(1 - beta_2^t) (31x PyTorch's at step 1). PyTorch computes
    p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps), and so does this class. Bias
    corrections are computed in float64 from exactly converted constants (casting a Python float through
    float32 would cost 1e-8 relative precision in float64 training).

    The moments live in flat variables (``momentum_<dtype>_<k>``, ``velocity_<dtype>_<k>``: runs of consecutive
    variables of one dtype, FLAT_CHUNK_BYTES at most), each updated by a handful of whole-vector ops, where
    per-variable moments cost ~20 traced ops per variable. Measured (TensorFlow graph, batch 32): ETTh1 (373
    variables), both layouts training in one process, steps interleaved: first step 24.5 -> 11.7 s, step
    1.568 -> 1.467 s; the small configuration (269 variables): first step 12.1 / 14.0 s -> 6.7 / 7.8 s; the
    update alone, bench/optimizer_chunks.py. The arithmetic is
    elementwise and in torch's order either way: eager steps and traced float32 steps are bit-identical to a
    per-variable update; in a traced float64 step grappler's arithmetic optimizer rounds 1-3 elements in 70 one
    ulp (1e-16) differently (measured, 1-4 steps).

    A variable without a gradient in a step keeps its weight and moments, as in torch; the bias corrections
    count the optimizer's steps (``iterations``), where torch counts each parameter's own. The two differ only
    after a step that left some parameter without a gradient, which Crossformer training never does.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False, name="torch_adam",
                 **kwargs):
        if amsgrad:
            raise ValueError("TorchAdam follows torch.optim.Adam(amsgrad=False); amsgrad is not supported")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._groups = []  # FlatGroups: per dtype, runs of consecutive variables of up to FLAT_CHUNK_BYTES each

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        by_dtype = {}
        for variable in variables:
            by_dtype.setdefault(variable.dtype, []).append(variable)
        for dtype, members in by_dtype.items():
            limit = FLAT_CHUNK_BYTES // np.dtype(dtype).itemsize
            chunks, filled = [[]], 0
            for variable in members:
                size = int(np.prod(variable.shape))
                if chunks[-1] and filled + size > limit:
                    chunks, filled = chunks + [[]], 0
                chunks[-1].append(variable)
                filled += size
            for k, chunk in enumerate(chunks):
                group = FlatGroup(dtype, [self._get_variable_index(v) for v in chunk], [tuple(v.shape) for v in chunk])
                group.momentum = self.add_variable((group.offsets[-1],), dtype=dtype, name=f"momentum_{dtype}_{k}")
                group.velocity = self.add_variable((group.offsets[-1],), dtype=dtype, name=f"velocity_{dtype}_{k}")
                self._groups.append(group)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Replaces the per-variable update_step loop (and, on TensorFlow, its tf.distribute merge: this project
        # distributes with keras.distribution, where the optimizer runs once on global values).
        if getattr(getattr(self, "_distribution_strategy", None), "num_replicas_in_sync", 1) > 1:
            raise ValueError("TorchAdam does not support tf.distribute strategies; use keras.distribution")
        given = {self._get_variable_index(v): (g, v) for g, v in zip(grads, trainable_variables)}
        for group in self._groups:
            self._update_group(group, given, learning_rate)

    def _update_group(self, group, given, learning_rate):
        present = [i in given for i in group.indices]
        if not any(present):
            return
        dtype = group.dtype
        step_size, correction_2_sqrt = self.step_factors(learning_rate, dtype)
        gradient = ops.concatenate([
            ops.reshape(ops.cast(given[i][0], dtype), (-1,)) if has else ops.zeros((size,), dtype)
            for i, size, has in zip(group.indices, group.sizes, present)])
        m, v = ops.convert_to_tensor(group.momentum), ops.convert_to_tensor(group.velocity)  # read once each
        # The scalars as tensors of the group's dtype: Keras's torch backend turns a bare Python float into
        # float32 first, which moved float64 steps by 1e-10.
        one_minus_beta_1, beta_2, one_minus_beta_2, epsilon = (
            ops.convert_to_tensor(value, dtype=dtype)
            for value in (1.0 - self.beta_1, self.beta_2, 1.0 - self.beta_2, self.epsilon))
        # m.lerp_(g, 1 - beta_1); v.mul_(beta_2).addcmul_(g, g, value=1 - beta_2), as torch writes them.
        new_m = m + one_minus_beta_1 * (gradient - m)
        new_v = v * beta_2 + one_minus_beta_2 * gradient * gradient
        if not all(present):  # torch leaves a parameter without a gradient, and its moments, as they are
            has_gradient = np.repeat(present, group.sizes)
            new_m, new_v = ops.where(has_gradient, new_m, m), ops.where(has_gradient, new_v, v)
        self.assign(group.momentum, new_m)
        self.assign(group.velocity, new_v)
        update = step_size * (new_m / (ops.sqrt(new_v) / correction_2_sqrt + epsilon))
        pieces = ops.split(update, group.offsets[1:-1]) if len(group.sizes) > 1 else [update]
        for i, piece, shape, has in zip(group.indices, pieces, group.shapes, present):
            if has:
                self.assign_sub(given[i][1], ops.reshape(piece, shape))

    def step_factors(self, learning_rate, dtype):
        """(lr / (1 - beta_1^t), sqrt(1 - beta_2^t)) of this step in ``dtype``, computed in float64."""
        step = ops.cast(self.iterations + 1, "float64")
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype="float64")
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype="float64")
        return (ops.cast(ops.cast(learning_rate, "float64") / (1.0 - ops.power(beta_1, step)), dtype),
                ops.cast(ops.sqrt(1.0 - ops.power(beta_2, step)), dtype))

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)


class FlatGroup:
    """A run of variables of one dtype (optimizer indices, shapes) and its flat moment variables (set by build)."""

    def __init__(self, dtype, indices, shapes):
        self.dtype, self.indices, self.shapes = dtype, indices, shapes
        self.momentum = self.velocity = None
        self.sizes = [int(np.prod(shape)) for shape in shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
