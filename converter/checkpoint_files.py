"""Checkpoint files, read safely: what a source holds, as float32 arrays and plain data.

Sources: a checkpoint folder in the original release's layout (``checkpoint.pth`` + ``args.json``,
optionally ``scale_statistic.pkl``; docs/pipeline.md#checkpoint-folder), a single weights file (.pth/.pt
state_dict, possibly wrapped or DataParallel-prefixed, or .safetensors), or a .keras file of ours.
Nothing in a checkpoint is ever executed: ``.pth`` files go through ``torch.load(weights_only=True)``,
``scale_statistic.pkl`` through converter.safe_pickle and ``.keras`` files through Keras's safe_mode.
Every problem surfaces as a one-line CheckpointError.
"""
import io
import json
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .safe_pickle import load_arrays, pickled_globals

STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")
PARALLEL_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile


@dataclass
class Checkpoint:
    """What a source holds: float32 weights in PyTorch layout, and whatever came beside them."""

    weights: dict
    path: Path
    args: dict = None  # the folder's args.json, as the original wrote it
    scale_statistic: dict = None  # {"mean": float64 array [D], "std": float64 array [D]}
    notes: list = field(default_factory=list)  # what was done to the tensors on the way (casts, prefixes)


def read_bytes(path):
    """A file's bytes; CheckpointError when it is missing, not a file, or empty."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path} is empty (0 bytes)")
    return data


def read_scale_statistic(path):
    """The original's scale_statistic.pkl ({'mean': array, 'std': array}) without running any code."""
    data = read_bytes(path)
    try:
        value = load_arrays(data)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except Exception as error:  # truncated or not a pickle at all
        raise CheckpointError(f"{path} is not a readable pickle ({type(error).__name__}: {error})") from None
    if not isinstance(value, dict) or not {"mean", "std"} <= set(value):
        raise CheckpointError(f"{path} does not hold a dict with 'mean' and 'std'")
    statistic = {}
    for key in ("mean", "std"):
        array = np.asarray(value[key])
        if array.dtype.kind != "f" or array.ndim != 1:
            raise CheckpointError(f"{path}: {key} is not a 1-D float array (dtype {array.dtype}, shape {array.shape})")
        statistic[key] = array.astype(np.float64)
    if statistic["mean"].shape != statistic["std"].shape:
        raise CheckpointError(f"{path}: mean has shape {statistic['mean'].shape} but std {statistic['std'].shape}")
    return statistic


def read_args_json(path):
    """An args.json (or --config file): a JSON object."""
    try:
        args = json.loads(read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(args, dict):
        raise CheckpointError(f"{path} holds a JSON {type(args).__name__}, not an object of arguments")
    return args


# ------------------------------------------------------------------------------------------- weights files
def _looks_like_safetensors(data):
    if len(data) < 10:
        return False
    header_len = int.from_bytes(data[:8], "little")
    return 0 < header_len <= len(data) - 8 and data[8:9] == b"{"


def _torch_load(path, data):
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on pickle protocols is noise here
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        names = [refused.group(1)] if refused else pickled_globals(data)
        if names is None:
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (not a readable pickle)") from None
        unsafe = [n for n in names if not n.startswith(("torch.", "collections.OrderedDict"))] or names
        what = f" ({', '.join(sorted(set(unsafe))[:3])})" if unsafe else ""
        raise CheckpointError(f"{path} holds pickled objects that are not tensors{what}; refused without running "
                              "them (torch.load weights_only=True)") from None
    except Exception as error:
        reason = str(error).split(". ")[0].strip() or type(error).__name__
        truncated = isinstance(error, EOFError) or "central directory" in reason or zipfile.is_zipfile(io.BytesIO(data))
        kind = "truncated or corrupted" if truncated else "not a PyTorch checkpoint"
        raise CheckpointError(f"{path} is {kind} ({type(error).__name__}: {reason[:120]})") from None


def _safetensors_load(path, data):
    from safetensors.torch import load as load_safetensors

    try:
        return load_safetensors(data)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({str(error)[:120]})") from None


def _unwrap_state_dict(path, loaded, notes):
    import torch

    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state_dict (a dict of tensors)")
    if loaded and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        for wrapper in STATE_DICT_WRAPPERS:
            inner = loaded.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                notes.append(f"took the state_dict under '{wrapper}'")
                return inner
        non_tensors = sorted(k for k, v in loaded.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(f"{path} holds a dict whose entries {non_tensors[:5]} are not tensors and no "
                              f"state_dict under {', '.join(repr(w) for w in STATE_DICT_WRAPPERS)}")
    if not loaded:
        raise CheckpointError(f"{path} holds an empty state_dict")
    return loaded


def _float32_arrays(path, state, notes):
    """{key: float32 numpy array}; floating tensors of other precisions are cast (and the cast noted)."""
    import torch

    weights, cast_counts = {}, {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: {key} is a {tensor.dtype} tensor, not floating point")
        if tensor.dtype != torch.float32:
            dtype = str(tensor.dtype).replace("torch.", "")
            cast_counts[dtype] = cast_counts.get(dtype, 0) + 1
            tensor = tensor.float()
        weights[key] = tensor.detach().cpu().numpy()
    for dtype, count in sorted(cast_counts.items()):
        notes.append(f"cast {count} {dtype} tensor(s) to float32")
    return weights


def read_weights_file(path):
    """A weights file as ({key: float32 numpy array}, notes)."""
    data = read_bytes(path)
    notes = []
    if Path(path).suffix == ".safetensors" or (not zipfile.is_zipfile(io.BytesIO(data))
                                                and _looks_like_safetensors(data)):
        state = _safetensors_load(path, data)
    else:
        state = _unwrap_state_dict(path, _torch_load(path, data), notes)
    for prefix in PARALLEL_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items()}
            notes.append(f"removed the '{prefix}' prefix from every key")
    return _float32_arrays(path, state, notes), notes


def check_finite(weights):
    """CheckpointError naming the first tensor with NaN/Inf values, if any."""
    bad = {key: int(np.size(v) - np.isfinite(v).sum()) for key, v in weights.items() if not np.isfinite(v).all()}
    if bad:
        first = next(iter(bad))
        more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
        raise CheckpointError(f"non-finite weights: {bad[first]} NaN/Inf value(s) in {first}{more}; refused "
                              "(--allow-nonfinite converts anyway)")


def read_checkpoint(src, allow_nonfinite=False):
    """Read a checkpoint folder or weights file (see the module docstring) into a Checkpoint."""
    src = Path(src)
    if not src.exists():
        raise CheckpointError(f"{src}: no such file or directory")
    if src.is_dir():
        weights_path = src / "checkpoint.pth"
        if not weights_path.is_file():
            raise CheckpointError(f"{src} is a folder without checkpoint.pth (the original release's layout)")
        weights, notes = read_weights_file(weights_path)
        checkpoint = Checkpoint(weights, src, notes=notes)
        if (src / "args.json").is_file():
            checkpoint.args = read_args_json(src / "args.json")
        if (src / "scale_statistic.pkl").is_file():
            checkpoint.scale_statistic = read_scale_statistic(src / "scale_statistic.pkl")
    else:
        weights, notes = read_weights_file(src)
        checkpoint = Checkpoint(weights, src, notes=notes)
    if not allow_nonfinite:
        check_finite(checkpoint.weights)
    return checkpoint


def read_run_folder(folder):
    """(keras_model.Crossformer, args dict) of a run folder written by `crossformer train`: model.keras, args.json
    and scale_statistic.json (the scaler, for a model.keras that does not carry it)."""
    folder = Path(folder)
    args = read_args_json(folder / "args.json") if (folder / "args.json").is_file() else {}
    model = load_keras_crossformer(folder / "model.keras")
    if model.scale_statistic is None and (folder / "scale_statistic.json").is_file():
        statistic = read_args_json(folder / "scale_statistic.json")
        try:
            model.scale_statistic = statistic
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{folder / 'scale_statistic.json'} is not a scaler of this model "
                                  f"({error})") from None
    return model, args


def load_keras_crossformer(path):
    """A .keras file holding a keras_model.Crossformer (safe_mode: no lambdas are deserialised)."""
    import keras

    import keras_model

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    try:
        # compile=False: parity, export and inference need no optimizer state (and it is not read at all).
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        first_line = str(error).splitlines()[0][:160] if str(error) else ""
        raise CheckpointError(f"{path} is not a readable .keras model ({type(error).__name__}: {first_line})") from None
    if not isinstance(model, keras_model.Crossformer):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a keras_model.Crossformer")
    return model
