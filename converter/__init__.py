"""The only bridge between reference_torch and keras_model.

checkpoint_files (safe reading of .pth/.safetensors/args.json/scale_statistic.pkl/.keras) ->
configuration (what the files, flags and tensor shapes say the model is) -> weight_map (state_dict keys <->
Keras variables, by a rule on names) -> bridge (whole models both ways) -> conversion (verified convert and
export_torch); parity/ (tolerance policy, capture, layer-by-layer engine, report, parameter summary).

Exports are imported on first use, so the command line's start-up (and `crossformer --help`) need not load
TensorFlow or PyTorch.
"""
import importlib

_EXPORTS = {
    "read_checkpoint": "checkpoint_files", "load_keras_crossformer": "checkpoint_files",
    "load_checkpoint": "configuration", "resolve_config": "configuration",
    "convert": "conversion", "export_torch": "conversion",
    "config_of": "bridge", "keras_to_torch": "bridge", "reference_model": "bridge", "torch_to_keras": "bridge",
    "TOLERANCES": "parity.tolerances", "Tolerance": "parity.tolerances", "diff_stats": "parity.tolerances",
    "tolerance_for": "parity.tolerances",
    "layerwise_parity": "parity.engine", "disable_tf32": "precision",
    "WeightMapError": "weight_map", "keras_to_state_dict": "weight_map", "load_state_dict_into_keras": "weight_map",
    "mapped_weights": "weight_map",
    "CheckpointError": "errors", "ConfigError": "errors", "CrossformerInputError": "errors", "DataError": "errors",
    "OutputError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'converter' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return __all__
