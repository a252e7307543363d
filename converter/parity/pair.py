"""The two models a parity check compares: reference_torch loaded from a checkpoint, and its Keras twin
(converted now, or read from a .keras file that claims to be the same model)."""
from dataclasses import dataclass

from ..bridge import config_of, reference_model, torch_to_keras
from ..checkpoint_files import load_keras_crossformer, read_checkpoint
from ..configuration import checkpoint_config
from ..errors import ConfigError
from ..weight_map import keras_to_state_dict


@dataclass
class ModelPair:
    torch_model: object  # reference_torch.Crossformer, eval mode, in the pair's dtype
    keras_model: object  # keras_model.Crossformer computing in the pair's dtype
    config: dict
    checkpoint: object  # the read converter.checkpoint_files.Checkpoint (its args, scale statistic)
    notes: list


def load_pair(src, keras_path=None, config=None, overrides=None, dtype="float32", allow_nonfinite=False):
    """The ModelPair of a checkpoint SRC; with ``keras_path`` the Keras side is that file's weights (its
    configuration must be SRC's; it states its own legacy_mix unless ``overrides`` do)."""
    checkpoint = read_checkpoint(src, allow_nonfinite=allow_nonfinite)
    notes = list(checkpoint.notes)
    overrides = dict(overrides or {})
    saved = load_keras_crossformer(keras_path) if keras_path else None
    if saved is not None and "legacy_mix" not in overrides:
        overrides["legacy_mix"] = saved.legacy_mix  # the .keras file knows which attention it has
    resolved = checkpoint_config(checkpoint, config, overrides, notes)
    torch_model = reference_model(resolved, checkpoint.weights, dtype)
    weights = checkpoint.weights
    if saved is not None:
        different = {k: (v, resolved[k]) for k, v in config_of(saved).items() if k != "dropout" and v != resolved[k]}
        if different:
            key, (got, expected) = next(iter(different.items()))
            raise ConfigError(f"{keras_path} was built with {key}={got} but {src} needs {expected}")
        weights = keras_to_state_dict(saved)
    return ModelPair(torch_model, torch_to_keras(weights, resolved, dtype=dtype), resolved, checkpoint, notes)
