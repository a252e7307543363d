"""Reading checkpoints safely, and working out the model configuration they need.

Sources: a checkpoint folder in the original release's layout (``checkpoint.pth`` + ``args.json``,
optionally ``scale_statistic.pkl``; spec 3.2) or a single weights file (.pth/.pt state_dict, possibly wrapped
or DataParallel-prefixed, or .safetensors). Nothing in a checkpoint is ever executed: ``.pth`` files go through
``torch.load(weights_only=True)`` and ``scale_statistic.pkl`` through an unpickler that admits numpy arrays
and plain containers only. Every problem surfaces as a one-line CheckpointError / ConfigError.
"""
import io
import json
import math
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CheckpointError, ConfigError
from .original_args import ORIGINAL_MODEL_ARGUMENTS
from .weight_map import WeightMapError

# The models' constructor arguments (equal to keras_model.ARGUMENTS; a test holds them together).
MODEL_KEYS = ORIGINAL_MODEL_ARGUMENTS + ("attention_mix", "variant")
TSLIB_VALUE_KEY = "enc_value_embedding.value_embedding.weight"  # Time-Series-Library's embedding (spec 6)
TSLIB_DEFAULT_DROPOUT = 0.1  # Time-Series-Library's default
# Run names the two code bases give their checkpoint folders (spec 3.1 and Time-Series-Library's run.py).
ORIGINAL_SETTING = re.compile(r"^Crossformer_.+_il(?P<in_len>\d+)_ol(?P<out_len>\d+)_sl(?P<seg_len>\d+)_win"
                              r"(?P<win_size>\d+)_fa(?P<factor>\d+)_dm(?P<d_model>\d+)_nh(?P<n_heads>\d+)_el"
                              r"(?P<e_layers>\d+)_itr\d+$")
TSLIB_SETTING = re.compile(r"_sl(?P<in_len>\d+)_ll\d+_pl(?P<out_len>\d+)_dm(?P<d_model>\d+)_nh(?P<n_heads>\d+)_el"
                           r"(?P<e_layers>\d+)_dl\d+_df(?P<d_ff>\d+)_(?:.*_)?fc(?P<factor>\d+)_")
STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")
PARALLEL_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile
DEFAULT_DROPOUT = 0.2  # the original command line's default, used when nothing states the dropout
CROSSFORMER_KEY = re.compile(r"^(enc_pos_embedding|dec_pos_embedding|enc_value_embedding\..+|pre_norm\..+|"
                             r"encoder\.encode_blocks\.\d+\..+|decoder\.decode_layers\.\d+\..+)$")


@dataclass
class Checkpoint:
    """What a source holds: float32 weights in PyTorch layout, and whatever came beside them."""

    weights: dict
    path: Path
    args: dict = None  # the folder's args.json, as the original wrote it
    scale_statistic: dict = None  # {"mean": float64 array [D], "std": float64 array [D]}
    notes: list = field(default_factory=list)  # what was done to the tensors on the way (casts, prefixes)


# --------------------------------------------------------------------------------------------- safe pickles
def _latin1_bytes(text, encoding="latin1"):
    """What protocol-2 pickles of numpy arrays call _codecs.encode for: bytes from a latin1 string, nothing else."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers (dict, list, tuple, str, numbers); refuses anything else.

    Numpy arrays come as _reconstruct + ndarray + dtype (protocols 0-4), _frombuffer (protocol 5), and
    protocol 2 spells their bytes as _codecs.encode(text, 'latin1'), admitted in that form only."""

    ALLOWED = {(core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray")
               for name in ("_reconstruct", "scalar")} | {
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays and plain containers)")


def read_scale_statistic(path):
    """The original's scale_statistic.pkl ({'mean': array, 'std': array}) without running any code."""
    data = _read_bytes(path)
    try:
        value = ArrayOnlyUnpickler(io.BytesIO(data)).load()
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


# ------------------------------------------------------------------------------------------- weights files
def _read_bytes(path):
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path} is empty (0 bytes)")
    return data


def _looks_like_safetensors(data):
    if len(data) < 10:
        return False
    header_len = int.from_bytes(data[:8], "little")
    return 0 < header_len <= len(data) - 8 and data[8:9] == b"{"


def pickled_globals(data):
    """The globals a pickle stream (or a torch zip's data.pkl) would import, found by reading its opcodes
    (pickletools.genops parses, never executes); None when the bytes are not a pickle at all."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not names:
                return None
            data = archive.read(names[0])
    found, strings = [], []
    try:
        import pickletools

        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings = (strings + [argument])[-2:]
            elif opcode.name == "GLOBAL":
                found.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
                found.append(".".join(strings))
    except Exception:
        return None
    return found


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


def read_weights_file(path):
    """A weights file as ({key: float32 numpy array}, notes)."""
    import torch

    data = _read_bytes(path)
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
    weights, cast_counts = {}, {}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: {key} is a {tensor.dtype} tensor, not floating point")
        if tensor.dtype != torch.float32:
            cast_counts[str(tensor.dtype).replace("torch.", "")] = cast_counts.get(
                str(tensor.dtype).replace("torch.", ""), 0) + 1
            tensor = tensor.float()
        weights[key] = tensor.detach().cpu().numpy()
    for dtype, count in sorted(cast_counts.items()):
        notes.append(f"cast {count} {dtype} tensor(s) to float32")
    return weights, notes


def check_finite(weights):
    bad = {key: int(np.size(v) - np.isfinite(v).sum()) for key, v in weights.items() if not np.isfinite(v).all()}
    if bad:
        first = next(iter(bad))
        more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
        raise CheckpointError(f"non-finite weights: {bad[first]} NaN/Inf value(s) in {first}{more}; refused "
                              "(--allow-nonfinite converts anyway)")


def read_args_json(path):
    try:
        args = json.loads(_read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(args, dict):
        raise CheckpointError(f"{path} holds a JSON {type(args).__name__}, not an object of arguments")
    return args


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


# ------------------------------------------------------------------------------------ configuration
def _flag(key):
    return "--" + key.replace("_", "-")


def _shape(weights, key, ndim):
    shape = tuple(weights[key].shape)
    if len(shape) != ndim:
        raise ConfigError(f"{key} has shape {shape}, expected {ndim} dimensions")
    return shape


def infer_from_tensors(weights):
    """Everything the tensor shapes determine: {key: (value, evidence)}, plus the padded lengths.

    Raises WeightMapError when the keys are not a Crossformer's at all (first missing and unexpected listed).
    """
    block0 = "encoder.encode_blocks.0.encode_layers.0."
    variant = "tslib" if TSLIB_VALUE_KEY in weights else "original"
    value_key = TSLIB_VALUE_KEY if variant == "tslib" else "enc_value_embedding.linear.weight"
    needed = ["enc_pos_embedding", "dec_pos_embedding", value_key, block0 + "router",
              block0 + "MLP1.0.weight", block0 + "time_attention.query_projection.weight"]
    missing = [key for key in needed if key not in weights]
    if missing:
        unexpected = sorted(key for key in weights if not CROSSFORMER_KEY.match(key))
        detail = f"; unexpected: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "") \
            if unexpected else ""
        raise WeightMapError(f"not a Crossformer state_dict: missing {', '.join(missing[:5])}{detail}")
    _, data_dim, in_segs, d_model = _shape(weights, "enc_pos_embedding", 4)
    _, _, out_segs, _ = _shape(weights, "dec_pos_embedding", 4)
    _, seg_len = _shape(weights, value_key, 2)
    _, factor, _ = _shape(weights, block0 + "router", 3)
    d_ff, _ = _shape(weights, block0 + "MLP1.0.weight", 2)
    width, _ = _shape(weights, block0 + "time_attention.query_projection.weight", 2)
    encoder_blocks = len({int(m.group(1)) for k in weights if (m := re.match(r"encoder\.encode_blocks\.(\d+)\.", k))})
    decoder_layers = len({int(m.group(1)) for k in weights if (m := re.match(r"decoder\.decode_layers\.(\d+)\.", k))})
    e_layers = decoder_layers - 1
    if decoder_layers < 1 or encoder_blocks != max(e_layers, 1):
        raise ConfigError(f"the state_dict has {encoder_blocks} encoder block(s) and {decoder_layers} decoder "
                          "layer(s); a Crossformer has e_layers (at least 1) and e_layers + 1")
    inferred = {
        "data_dim": (data_dim, f"enc_pos_embedding {tuple(weights['enc_pos_embedding'].shape)}"),
        "d_model": (d_model, f"enc_pos_embedding {tuple(weights['enc_pos_embedding'].shape)}"),
        "seg_len": (seg_len, f"{value_key} {tuple(weights[value_key].shape)}"),
        "variant": (variant, f"{value_key} present"),
        "factor": (factor, f"{block0}router {tuple(weights[block0 + 'router'].shape)}"),
        "d_ff": (d_ff, f"{block0}MLP1.0.weight {tuple(weights[block0 + 'MLP1.0.weight'].shape)}"),
        "e_layers": (e_layers, f"{decoder_layers} decoder layers"),
    }
    if e_layers >= 2:
        merge_key = "encoder.encode_blocks.1.merge_layer.linear_trans.weight"
        if merge_key in weights:
            merged_width = _shape(weights, merge_key, 2)[1]
            if merged_width % d_model:
                raise ConfigError(f"{merge_key} has shape {tuple(weights[merge_key].shape)}: its input width is not "
                                  f"a multiple of d_model={d_model}")
            inferred["win_size"] = (merged_width // d_model, f"{merge_key} {tuple(weights[merge_key].shape)}")
        else:
            inferred["win_size"] = (1, "no merge_layer in encoder block 1")
    return inferred, {"pad_in_len": in_segs * seg_len, "pad_out_len": out_segs * seg_len, "width": width}


def resolve_config(weights, args=None, overrides=None, args_name="args.json", notes=None):
    """The full model configuration: args (args.json / --config) and overrides (flags), checked against the
    tensors and completed from them. Contradictions and gaps raise ConfigError naming the key or flag;
    defaults taken for arguments nothing stated are appended to ``notes``."""
    import reference_torch

    notes = [] if notes is None else notes
    config = {key: args[key] for key in MODEL_KEYS if args and key in args and args[key] is not None}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in config and config[key] != value:
            raise ConfigError(f"{_flag(key)} {value} contradicts {args_name} ({key}={config[key]})")
        config[key] = value
    stated_by = {key: (_flag(key) if overrides and overrides.get(key) is not None else args_name) for key in config}

    inferred, lengths = infer_from_tensors(weights)
    for key, (value, evidence) in inferred.items():
        if key in config and config[key] != value:
            raise ConfigError(f"{stated_by[key]} says {key}={config[key]} but the tensors say {value} ({evidence})")
        config[key] = value

    seg_len = config["seg_len"]
    for key, padded in (("in_len", lengths["pad_in_len"]), ("out_len", lengths["pad_out_len"])):
        if key in config and (not isinstance(config[key], int) or math.ceil(config[key] / seg_len) * seg_len != padded):
            raise ConfigError(f"{stated_by[key]} says {key}={config[key]} but the tensors need "
                              f"{padded - seg_len + 1}..{padded} (seg_len {seg_len}, {padded // seg_len} segments)")
    if "n_heads" in config:
        heads, d_model = config["n_heads"], config["d_model"]
        if not isinstance(heads, int) or heads < 1 or heads > d_model or (d_model // heads) * heads != lengths["width"]:
            raise ConfigError(f"{stated_by['n_heads']} says n_heads={heads} but the attention projections are "
                              f"{lengths['width']} wide (= (d_model // n_heads) * n_heads, d_model {d_model})")
    if config["variant"] == "tslib":
        notes.append("a Time-Series-Library state_dict (value_embedding without bias, sinusoid pe): the tslib "
                     "variant (input padded at the end, the last out_len steps kept)")
        config.setdefault("baseline", False)  # TSLib has no baseline
    if "dropout" not in config:
        default = TSLIB_DEFAULT_DROPOUT if config["variant"] == "tslib" else DEFAULT_DROPOUT
        config["dropout"] = default
        notes.append(f"dropout {default} (the {'TSLib' if config['variant'] == 'tslib' else 'original CLI'} "
                     "default; it only acts in training)")
    config.setdefault("attention_mix", False)
    if "win_size" not in config:
        config["win_size"] = 2
        notes.append("win_size 2 (e_layers <= 1 has no segment merge, so it has no effect)")

    hints = {"in_len": f" (the tensors allow {lengths['pad_in_len'] - seg_len + 1}..{lengths['pad_in_len']})",
             "out_len": f" (the tensors allow {lengths['pad_out_len'] - seg_len + 1}..{lengths['pad_out_len']})",
             "baseline": " (--baseline or --no-baseline)"}
    missing = [key for key in ("n_heads", "in_len", "out_len", "baseline") if key not in config]
    if missing:
        if config["variant"] == "tslib":
            names = {"in_len": "--seq-len", "out_len": "--pred-len"}
            raise ConfigError("the tensors cannot determine " + ", ".join(
                names.get(k, _flag(k)) + hints.get(k, "") for k in missing) + "; give them as flags (TSLib's names) "
                "or pass the TSLib checkpoint folder, whose name carries them")
        raise ConfigError("the tensors cannot determine " + ", ".join(_flag(k) + hints.get(k, "") for k in missing)
                          + "; give them as flags or pass --config ARGS.json")
    try:
        reference_torch.CrossformerGeometry(**{k: config[k] for k in MODEL_KEYS if k != "attention_mix"})
    except reference_torch.InvalidConfigError as error:
        raise ConfigError(f"configuration the model cannot run: {error}") from None
    return {key: config[key] for key in MODEL_KEYS}


def config_from_setting_name(name):
    """Model arguments in a run folder's name: the original's (Crossformer_ETTh1_il96_ol24_sl12_win2_..._itr0) or
    Time-Series-Library's (..._sl96_ll48_pl24_dm512_nh8_el2_dl1_df2048_..._fc3_...); {} for any other name."""
    match = ORIGINAL_SETTING.match(name) or TSLIB_SETTING.search(name)
    return {key: int(value) for key, value in match.groupdict().items()} if match else {}


def checkpoint_config(checkpoint, config=None, overrides=None, notes=None):
    """Resolve the configuration of a read Checkpoint; ``config`` (dict or path) replaces its args.json. A folder
    without args.json lends the arguments its name carries."""
    args, args_name = checkpoint.args, "args.json"
    if config is not None:
        args, args_name = (config, "--config") if isinstance(config, dict) else (read_args_json(config), str(config))
    elif args is None and checkpoint.path.is_dir() and config_from_setting_name(checkpoint.path.name):
        args, args_name = config_from_setting_name(checkpoint.path.name), f"the folder name {checkpoint.path.name}"
    return resolve_config(checkpoint.weights, args, overrides, args_name, notes)


def load_checkpoint(src, config=None, allow_nonfinite=False, **overrides):
    """(config, weights) of a checkpoint folder or weights file.

    ``config`` is an args.json-style dict or path (it replaces the folder's args.json); ``overrides`` are
    model arguments given explicitly (n_heads=..., in_len=...). Weights are float32 numpy in PyTorch layout.
    """
    checkpoint = read_checkpoint(src, allow_nonfinite=allow_nonfinite)
    return checkpoint_config(checkpoint, config, overrides), checkpoint.weights
