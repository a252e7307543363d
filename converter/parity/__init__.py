"""Parity between reference_torch and the Keras port: the tolerance policy (tolerances), what each module
computes (capture), the layer-by-layer engine (engine), its report (report) and parameter counts (summary)."""
from .capture import (Call, capture_keras, capture_torch, flatten_arrays, keras_layer_for, match_layers,
                      output_shape, run_isolated, to_numpy, torch_modules)
from .engine import MODES, compare_outputs, layerwise_parity, torch_device
from .report import ROOT_NAME, Comparison, ModuleParity, ParityReport, compact_shape, display_name
from .summary import format_summary, parameter_summary, trainable_count
from .tolerances import TOLERANCES, Tolerance, diff_stats, tolerance_for

__all__ = ["Call", "Comparison", "MODES", "ModuleParity", "ParityReport", "ROOT_NAME", "TOLERANCES", "Tolerance",
           "capture_keras", "capture_torch", "compact_shape", "compare_outputs", "diff_stats", "display_name",
           "flatten_arrays", "format_summary", "keras_layer_for", "layerwise_parity", "match_layers",
           "output_shape", "parameter_summary", "run_isolated", "tolerance_for", "to_numpy", "torch_device",
           "torch_modules", "trainable_count"]
