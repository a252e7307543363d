"""Model-level bridge: a reference_torch model or state_dict <-> a keras_model.Crossformer."""
import numpy as np
import torch

import keras_model
import reference_torch

from .weight_map import keras_to_state_dict, load_state_dict_into_keras

MODEL_ARGUMENTS = keras_model.ARGUMENTS  # constructor arguments shared by both models


def config_of(model):
    """The constructor arguments of a reference_torch or keras_model Crossformer, as a plain dict."""
    return {name: model.crossformer_config[name] for name in MODEL_ARGUMENTS}


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
    """A reference_torch.Crossformer (eval mode) holding the Keras model's weights, loaded strictly.

    A buffer the Keras model keeps only the used rows of (TSLib's pe) is written back into the full table
    that reference_torch computes, so the state_dict has the shapes Time-Series-Library expects."""
    torch_model = reference_torch.Crossformer(**config_of(model)).to(dtype)  # load in the target precision
    full = torch_model.state_dict()
    state = {}
    for key, value in keras_to_state_dict(model).items():
        value = torch.from_numpy(value)
        if value.shape != full[key].shape and key.endswith(".pe"):
            value = torch.cat((value, full[key][:, value.shape[1]:]), dim=1)
        state[key] = value
    torch_model.load_state_dict(state, strict=True)
    return torch_model.eval()
