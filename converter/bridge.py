"""Model-level bridge: a reference_torch model or state_dict <-> a keras_model.Crossformer."""
import numpy as np
import torch

import keras_model
import reference_torch

from .weight_map import keras_to_state_dict, load_state_dict_into_keras


def config_of(model):
    """The constructor arguments of a reference_torch or keras_model Crossformer, as a plain dict."""
    return {name: model.crossformer_config[name] for name in keras_model.MODEL_ARGUMENTS}


def reference_model(config, weights, dtype="float32"):
    """reference_torch built from a configuration and numpy weights (strict load), in eval mode."""
    model = reference_torch.Crossformer(**config)
    model.load_state_dict({key: torch.from_numpy(np.asarray(value)) for key, value in weights.items()}, strict=True)
    return model.to(getattr(torch, dtype)).eval()


def torch_to_keras(source, config=None, dtype="float32"):
    """A keras_model.Crossformer carrying the weights of a reference_torch model or state_dict.

    ``source`` is a reference_torch.Crossformer (config optional) or a state_dict of tensors or arrays
    (config required). Every key must be used and every shape must match, or WeightMapError is raised.
    """
    if isinstance(source, torch.nn.Module):
        config = config or config_of(source)
        source = source.state_dict()
    if config is None:
        raise ValueError("torch_to_keras needs the model configuration when given a state_dict")
    state = {key: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
             for key, value in source.items()}
    model = keras_model.Crossformer(**config, dtype=dtype)
    return load_state_dict_into_keras(model, state)


def keras_to_torch(model, dtype=torch.float32):
    """A reference_torch.Crossformer (eval mode) holding the Keras model's weights, loaded strictly."""
    torch_model = reference_torch.Crossformer(**config_of(model)).to(dtype)  # load in the target precision
    state = keras_to_state_dict(model, full_buffers=torch_model.state_dict())
    torch_model.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=True)
    return torch_model.eval()
