"""Full float32 precision on GPUs: TF32 matmuls (the default on Ampere and later) would move float32
results by ~1e-3, a hundred times the parity tolerance, in PyTorch and in every Keras backend alike."""


def disable_tf32():
    """Switch TF32 off in PyTorch and in the active Keras backend (harmless on a CPU)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_tensor_float_32_execution(False)
        elif backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "highest")
    except ImportError:
        pass
