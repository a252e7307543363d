"""The bridge between reference_torch and keras_model: weight map, checkpoints, CLI and parity engine."""
from .bridge import config_of, keras_to_torch, torch_to_keras
from .tolerances import TOLERANCES, Tolerance, tolerance_for
from .weight_map import WeightMapError, keras_to_state_dict, load_state_dict_into_keras, weight_map

__all__ = ["TOLERANCES", "Tolerance", "WeightMapError", "config_of", "keras_to_state_dict", "keras_to_torch",
           "load_state_dict_into_keras", "tolerance_for", "torch_to_keras", "weight_map"]
