"""The Crossformer description every artifact carries inside itself, so that it runs without its source.

One JSON document under the key ``crossformer``: the model's constructor arguments, the training data's scaler
(mean, std; float64 values survive JSON exactly), the original run's other arguments (data, split), the
artifact's format and quantization, and the serving signature. Where it lives: ONNX ``metadata_props``, the
LiteRT flatbuffer's ``metadata`` list, OpenVINO's ``rt_info`` (in the .xml), and ``assets.extra/crossformer.json``
inside a SavedModel folder (TF Serving ignores that folder).
"""
import json

import numpy as np

from .errors import ArtifactError

METADATA_KEY = "crossformer"
SCHEMA_VERSION = 1
INPUT_NAME = "series"  # [batch, in_len, data_dim] float32, normalised as in training
OUTPUT_NAME = "forecast"  # [batch, out_len, data_dim] float32, normalised
SIZE_KEYS = ("data_dim", "in_len", "out_len", "seg_len", "win_size", "factor", "d_model", "d_ff", "n_heads",
             "e_layers")


def artifact_metadata(model, artifact_format, quantize):
    """The JSON-ready description of a keras_model.Crossformer exported as ``artifact_format``."""
    from importlib.metadata import PackageNotFoundError, version

    from ..bridge import config_of

    try:
        producer = f"crossformer-keras {version('crossformer-keras')}"
    except PackageNotFoundError:
        producer = "crossformer-keras"
    config = config_of(model)
    statistic = model.scale_statistic
    return {
        "schema": SCHEMA_VERSION,
        "producer": producer,
        "format": artifact_format,
        "quantize": quantize,
        "config": config,
        "scale_statistic": None if statistic is None else {k: v.tolist() for k, v in statistic.items()},
        "training_args": model.training_args,
        "input": {"name": INPUT_NAME, "shape": [None, config["in_len"], config["data_dim"]], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": [None, config["out_len"], config["data_dim"]], "dtype": "float32"},
    }


def metadata_json(metadata):
    return json.dumps(metadata, sort_keys=True)


def parse_metadata(text, where):
    """The metadata of an artifact, checked to describe a Crossformer; ArtifactError otherwise."""
    if text is None:
        raise ArtifactError(f"{where} carries no Crossformer metadata ('{METADATA_KEY}'): not written by "
                            "`crossformer export`")
    try:
        metadata = json.loads(text)
        config = metadata["config"]
        # Checked by hand, not by keras_model: the runtimes must not need Keras or TensorFlow to load.
        bad = [key for key in SIZE_KEYS if not (isinstance(config[key], int) and config[key] > 0)]
        if bad:
            raise ValueError(f"{bad[0]}={config[bad[0]]!r}")
    except (ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"{where}: its '{METADATA_KEY}' metadata does not describe a Crossformer "
                            f"({type(error).__name__}: {error})") from None
    if metadata.get("schema") != SCHEMA_VERSION:
        raise ArtifactError(f"{where}: metadata schema {metadata.get('schema')!r}, this version reads "
                            f"{SCHEMA_VERSION}")
    statistic = metadata.get("scale_statistic")
    if statistic is not None:
        metadata["scale_statistic"] = {key: np.asarray(statistic[key], np.float64) for key in ("mean", "std")}
    return metadata
