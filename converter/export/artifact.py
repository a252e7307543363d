"""The deployment formats, and one interface over their runtimes: load_artifact(path) -> Artifact.

An Artifact runs like the Keras model does where `crossformer evaluate` / `predict` need it:
``predict_on_batch(x)`` (float32 [B, in_len, D] -> [B, out_len, D]), ``compute_dtype``, ``crossformer_config``,
``scale_statistic`` and ``training_args``, all read from the artifact itself.
"""
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ArtifactError


@dataclass(frozen=True)
class ArtifactFormat:
    name: str
    suffix: str  # "" for a folder
    quantizations: tuple  # what --quantize offers for it
    module: str  # the module with write() and Runner
    requires: tuple  # modules of the export extra that writing and running it need


FORMATS = {
    "saved_model": ArtifactFormat("saved_model", "", (), "saved_model_format", ()),
    "litert": ArtifactFormat("litert", ".tflite", ("dynamic", "float16"), "litert_format", ("ai_edge_litert",)),
    # No int8 for ONNX: onnxruntime's dynamic quantization moved the trained ETTh1 model's output by 43% RMS.
    "onnx": ArtifactFormat("onnx", ".onnx", ("float16",), "onnx_format", ("tf2onnx", "onnx", "onnxruntime")),
    "openvino": ArtifactFormat("openvino", ".xml", ("float16",), "openvino_format", ("openvino",)),
}
QUANTIZATIONS = ("dynamic", "float16")


def implementation(format_name):
    return importlib.import_module(f".{FORMATS[format_name].module}", __package__)


def artifact_format_of(path):
    """The format name of an artifact path (by suffix, or a folder holding saved_model.pb), else None."""
    path = Path(path)
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").is_file() else None
    return next((name for name, spec in FORMATS.items() if spec.suffix and path.suffix == spec.suffix), None)


def load_artifact(path):
    """The Artifact at ``path`` (.tflite, .onnx, OpenVINO .xml, SavedModel folder), ready to run."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file or folder")
    format_name = artifact_format_of(path)
    if format_name is None:
        raise ArtifactError(f"{path} is not a deployment artifact (.tflite, .onnx, OpenVINO .xml or a SavedModel "
                            "folder)")
    return implementation(format_name).Runner(path)


class Artifact:
    """Base of the runners: the metadata-backed attributes and the input check."""

    format = None
    compute_dtype = "float32"

    def __init__(self, path, metadata):
        self.path = Path(path)
        self.metadata = metadata

    @property
    def crossformer_config(self):
        return dict(self.metadata["config"])

    @property
    def scale_statistic(self):
        statistic = self.metadata.get("scale_statistic")
        return None if statistic is None else {key: value.copy() for key, value in statistic.items()}

    @property
    def training_args(self):
        return self.metadata.get("training_args")

    @property
    def quantize(self):
        return self.metadata.get("quantize")

    @property
    def runtime(self):
        """The runtime and its settings, in words."""
        raise NotImplementedError

    def predict_on_batch(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        config = self.metadata["config"]
        if x.ndim != 3 or x.shape[1:] != (config["in_len"], config["data_dim"]):
            raise ValueError(f"expected input [batch, {config['in_len']}, {config['data_dim']}], got {list(x.shape)}")
        return np.asarray(self._run(x))

    def batch_is_dynamic(self):
        """True when the artifact's own input declaration leaves the batch axis open."""
        raise NotImplementedError

    def _run(self, x):
        raise NotImplementedError


def read_artifact_bytes(path):
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    data = path.read_bytes()
    if not data:
        raise ArtifactError(f"{path} is empty (0 bytes)")
    return data
