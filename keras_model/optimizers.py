"""Optimizers that step exactly as PyTorch's do, so training in Keras follows training in PyTorch."""
import keras
from keras import ops

from .numerics import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchAdam(keras.optimizers.Adam):
    """Adam with torch.optim.Adam's update (the original release's optimizer).

    keras.optimizers.Adam adds epsilon to sqrt(v) *before* the bias correction of v is divided out, so its
    effective epsilon is eps / sqrt(1 - beta_2^t) (31x PyTorch's at step 1). PyTorch computes
    p -= lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + eps), and so does this class. Bias
    corrections are computed in float64 from exactly converted constants (casting a Python float through
    float32 would cost 1e-8 relative precision in float64 training).
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False, name="torch_adam",
                 **kwargs):
        if amsgrad:
            raise ValueError("TorchAdam follows torch.optim.Adam(amsgrad=False); amsgrad is not supported")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=False,
                         name=name, **kwargs)
        self._step_factors = None  # {dtype: step_factors} while a step is being applied

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # The step's scalars (bias corrections, step size) are computed once per step and dtype and shared by
        # every variable: in a traced step they were ~10 graph ops per variable (a third of TorchAdam's trace).
        self._step_factors = {}
        try:
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._step_factors = None

    def step_factors(self, learning_rate, dtype):
        """(lr / (1 - beta_1^t), sqrt(1 - beta_2^t)) of this step in ``dtype``, computed in float64."""
        cached = self._step_factors
        if cached is not None and dtype in cached:
            return cached[dtype]
        step = ops.cast(self.iterations + 1, "float64")
        beta_1 = ops.convert_to_tensor(self.beta_1, dtype="float64")
        beta_2 = ops.convert_to_tensor(self.beta_2, dtype="float64")
        factors = (ops.cast(ops.cast(learning_rate, "float64") / (1.0 - ops.power(beta_1, step)), dtype),
                   ops.cast(ops.sqrt(1.0 - ops.power(beta_2, step)), dtype))
        if cached is not None:
            cached[dtype] = factors
        return factors

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        step_size, correction_2_sqrt = self.step_factors(learning_rate, dtype)

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        # m.lerp_(g, 1 - beta_1); v.mul_(beta_2).addcmul_(g, g, value=1 - beta_2), as torch writes them.
        self.assign(m, m + (1.0 - self.beta_1) * (gradient - m))
        self.assign(v, v * self.beta_2 + (1.0 - self.beta_2) * gradient * gradient)
        denominator = ops.sqrt(v) / correction_2_sqrt + self.epsilon
        self.assign_sub(variable, step_size * (m / denominator))
