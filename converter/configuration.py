"""The model configuration a checkpoint needs: what its files and flags state, checked against what its
tensors determine, completed with the defaults of the code base that wrote it.

Kept apart from reading the files (checkpoint_files.py) and from loading weights (weight_map.py): this
module turns (args.json, flags, tensor shapes) into the keras_model.MODEL_ARGUMENTS dict, or a ConfigError
naming the argument and the evidence. Key layout and shapes: docs/model.md#state_dict-keys.
"""
import math
import re

from keras_model.config import MODEL_ARGUMENTS, with_current_names

from .checkpoint_files import read_args_json, read_checkpoint
from .errors import ConfigError
from .weight_map import WeightMapError

TSLIB_VALUE_KEY = "enc_value_embedding.value_embedding.weight"  # Time-Series-Library's embedding
TSLIB_DEFAULT_DROPOUT = 0.1  # Time-Series-Library's default
DEFAULT_DROPOUT = 0.2  # the original command line's default, used when nothing states the dropout
# Run names the two code bases give their checkpoint folders (docs/pipeline.md#checkpoint-folder and
# docs/model.md#time-series-library-variant).
ORIGINAL_SETTING = re.compile(r"^Crossformer_.+_il(?P<in_len>\d+)_ol(?P<out_len>\d+)_sl(?P<seg_len>\d+)_win"
                              r"(?P<win_size>\d+)_fa(?P<factor>\d+)_dm(?P<d_model>\d+)_nh(?P<n_heads>\d+)_el"
                              r"(?P<e_layers>\d+)_itr\d+$")
TSLIB_SETTING = re.compile(r"_sl(?P<in_len>\d+)_ll\d+_pl(?P<out_len>\d+)_dm(?P<d_model>\d+)_nh(?P<n_heads>\d+)_el"
                           r"(?P<e_layers>\d+)_dl\d+_df(?P<d_ff>\d+)_(?:.*_)?fc(?P<factor>\d+)_")
CROSSFORMER_KEY = re.compile(r"^(enc_pos_embedding|dec_pos_embedding|enc_value_embedding\..+|pre_norm\..+|"
                             r"encoder\.encode_blocks\.\d+\..+|decoder\.decode_layers\.\d+\..+)$")
BLOCK0 = "encoder.encode_blocks.0.encode_layers.0."


def flag_name(key):
    """The command-line flag of a model argument: in_len -> --in-len."""
    return "--" + key.replace("_", "-")


def _shape(weights, key, ndim):
    shape = tuple(weights[key].shape)
    if len(shape) != ndim:
        raise ConfigError(f"{key} has shape {shape}, expected {ndim} dimensions")
    return shape


def _check_crossformer_keys(weights, value_key):
    needed = ["enc_pos_embedding", "dec_pos_embedding", value_key, BLOCK0 + "router", BLOCK0 + "MLP1.0.weight",
              BLOCK0 + "time_attention.query_projection.weight"]
    missing = [key for key in needed if key not in weights]
    if missing:
        unexpected = sorted(key for key in weights if not CROSSFORMER_KEY.match(key))
        detail = f"; unexpected: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "") \
            if unexpected else ""
        raise WeightMapError(f"not a Crossformer state_dict: missing {', '.join(missing[:5])}{detail}")


def _win_size_evidence(weights, d_model):
    merge_key = "encoder.encode_blocks.1.merge_layer.linear_trans.weight"
    if merge_key not in weights:
        return 1, "no merge_layer in encoder block 1"
    merged_width = _shape(weights, merge_key, 2)[1]
    if merged_width % d_model:
        raise ConfigError(f"{merge_key} has shape {tuple(weights[merge_key].shape)}: its input width is not "
                          f"a multiple of d_model={d_model}")
    return merged_width // d_model, f"{merge_key} {tuple(weights[merge_key].shape)}"


def infer_from_tensors(weights):
    """Everything the tensor shapes determine: {key: (value, evidence)}, plus the padded lengths.

    Raises WeightMapError when the keys are not a Crossformer's at all (first missing and unexpected listed).
    """
    variant = "tslib" if TSLIB_VALUE_KEY in weights else "original"
    value_key = TSLIB_VALUE_KEY if variant == "tslib" else "enc_value_embedding.linear.weight"
    _check_crossformer_keys(weights, value_key)

    def evidence(key):
        return f"{key} {tuple(weights[key].shape)}"

    _, data_dim, in_segs, d_model = _shape(weights, "enc_pos_embedding", 4)
    _, _, out_segs, _ = _shape(weights, "dec_pos_embedding", 4)
    _, seg_len = _shape(weights, value_key, 2)
    _, factor, _ = _shape(weights, BLOCK0 + "router", 3)
    d_ff, _ = _shape(weights, BLOCK0 + "MLP1.0.weight", 2)
    width, _ = _shape(weights, BLOCK0 + "time_attention.query_projection.weight", 2)
    encoder_blocks = len({int(m.group(1)) for k in weights if (m := re.match(r"encoder\.encode_blocks\.(\d+)\.", k))})
    decoder_layers = len({int(m.group(1)) for k in weights if (m := re.match(r"decoder\.decode_layers\.(\d+)\.", k))})
    e_layers = decoder_layers - 1
    if decoder_layers < 1 or encoder_blocks != max(e_layers, 1):
        raise ConfigError(f"the state_dict has {encoder_blocks} encoder block(s) and {decoder_layers} decoder "
                          "layer(s); a Crossformer has e_layers (at least 1) and e_layers + 1")
    inferred = {
        "data_dim": (data_dim, evidence("enc_pos_embedding")),
        "d_model": (d_model, evidence("enc_pos_embedding")),
        "seg_len": (seg_len, evidence(value_key)),
        "variant": (variant, f"{value_key} present"),
        "factor": (factor, evidence(BLOCK0 + "router")),
        "d_ff": (d_ff, evidence(BLOCK0 + "MLP1.0.weight")),
        "e_layers": (e_layers, f"{decoder_layers} decoder layers"),
    }
    if e_layers >= 2:
        inferred["win_size"] = _win_size_evidence(weights, d_model)
    return inferred, {"pad_in_len": in_segs * seg_len, "pad_out_len": out_segs * seg_len, "width": width}


def _stated_arguments(args, overrides, args_name):
    """(config, {key: who stated it}) from args.json-style ``args`` and flag ``overrides``; a flag that
    contradicts args is an error."""
    args = with_current_names(args or {})
    config = {key: args[key] for key in MODEL_ARGUMENTS if key in args and args[key] is not None}
    stated_by = dict.fromkeys(config, args_name)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in config and config[key] != value:
            raise ConfigError(f"{flag_name(key)} {value} contradicts {args_name} ({key}={config[key]})")
        config[key], stated_by[key] = value, flag_name(key)
    return config, stated_by


def _check_against_tensors(config, stated_by, inferred, lengths):
    """Fill in what the tensors determine; what was stated must agree with them."""
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


def _apply_defaults(config, notes):
    """The defaults of the code base that wrote the checkpoint, for what nothing stated; each one noted."""
    tslib = config["variant"] == "tslib"
    if tslib:
        notes.append("a Time-Series-Library state_dict (value_embedding without bias, sinusoid pe): the tslib "
                     "variant (input padded at the end, the last out_len steps kept)")
        config.setdefault("baseline", False)  # TSLib has no baseline
    if "dropout" not in config:
        config["dropout"] = TSLIB_DEFAULT_DROPOUT if tslib else DEFAULT_DROPOUT
        notes.append(f"dropout {config['dropout']} (the {'TSLib' if tslib else 'original CLI'} "
                     "default; it only acts in training)")
    config.setdefault("legacy_mix", False)
    if "win_size" not in config:
        config["win_size"] = 2
        notes.append("win_size 2 (e_layers <= 1 has no segment merge, so it has no effect)")


def _require_complete(config, lengths):
    """ConfigError naming every argument neither stated nor determined by the tensors, with the range they allow."""
    seg_len = config["seg_len"]
    hints = {"in_len": f" (the tensors allow {lengths['pad_in_len'] - seg_len + 1}..{lengths['pad_in_len']})",
             "out_len": f" (the tensors allow {lengths['pad_out_len'] - seg_len + 1}..{lengths['pad_out_len']})",
             "baseline": " (--baseline or --no-baseline)"}
    missing = [key for key in ("n_heads", "in_len", "out_len", "baseline") if key not in config]
    if not missing:
        return
    if config["variant"] == "tslib":
        names = {"in_len": "--seq-len", "out_len": "--pred-len"}
        raise ConfigError("the tensors cannot determine " + ", ".join(
            names.get(k, flag_name(k)) + hints.get(k, "") for k in missing) + "; give them as flags (TSLib's names) "
            "or pass the TSLib checkpoint folder, whose name carries them")
    raise ConfigError("the tensors cannot determine " + ", ".join(flag_name(k) + hints.get(k, "") for k in missing)
                      + "; give them as flags or pass --config ARGS.json")


def check_runnable(config):
    """ConfigError when the Crossformer cannot run this configuration (the rules of keras_model.config)."""
    from keras_model.config import InvalidConfigError, validate_and_derive

    try:
        validate_and_derive(config)
    except InvalidConfigError as error:
        raise ConfigError(f"configuration the model cannot run: {error}") from None


def resolve_config(weights, args=None, overrides=None, args_name="args.json", notes=None):
    """The full model configuration: args (args.json / --config) and overrides (flags), checked against the
    tensors and completed from them. Contradictions and gaps raise ConfigError naming the key or flag;
    defaults taken for arguments nothing stated are appended to ``notes``."""
    notes = [] if notes is None else notes
    config, stated_by = _stated_arguments(args, overrides, args_name)
    inferred, lengths = infer_from_tensors(weights)
    _check_against_tensors(config, stated_by, inferred, lengths)
    _apply_defaults(config, notes)
    _require_complete(config, lengths)
    check_runnable(config)
    return {key: config[key] for key in MODEL_ARGUMENTS}


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
