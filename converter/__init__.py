"""The bridge between reference_torch and keras_model: checkpoints, weight map, CLI and parity engine.

Exports are imported on first use, so `crossformer --help` (and the CLI's start-up) need not load TensorFlow.
"""
import importlib

_EXPORTS = {
    "load_checkpoint": "checkpoint", "read_checkpoint": "checkpoint",
    "convert": "conversion", "export_torch": "conversion",
    "config_of": "bridge", "keras_to_torch": "bridge", "torch_to_keras": "bridge",
    "TOLERANCES": "tolerances", "Tolerance": "tolerances", "diff_stats": "tolerances", "tolerance_for": "tolerances",
    "WeightMapError": "weight_map", "keras_to_state_dict": "weight_map", "load_state_dict_into_keras": "weight_map",
    "mapped_weights": "weight_map",
    "CheckpointError": "errors", "ConfigError": "errors", "CrossformerInputError": "errors", "OutputError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'converter' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return __all__
