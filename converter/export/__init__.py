"""Deployment artifacts of a Keras Crossformer: SavedModel, LiteRT, ONNX and OpenVINO, each run by its own
runtime and verified against reference_torch before it is written (`crossformer export`).

    export(src, dst, "litert", quantize=None)  -> ExportReport   (src: checkpoint, .keras or run folder)
    export_model(keras_model, dst, "onnx")      -> ExportReport
    load_artifact("model.tflite")               -> Artifact (predict_on_batch, crossformer_config, scale_statistic)

The converters and runtimes come with the `export` extra; importing this package does not need them.
"""
import importlib

_EXPORTS = {
    "export": "pipeline", "export_model": "pipeline", "ExportReport": "pipeline", "source_model": "pipeline",
    "FORMATS": "artifact", "QUANTIZATIONS": "artifact", "Artifact": "artifact", "load_artifact": "artifact",
    "artifact_format_of": "artifact",
    "ServingGraph": "serving", "verify_artifact": "verify", "VERIFY_BATCHES": "verify",
    "ArtifactError": "errors", "BuiltinOpsError": "errors", "ExportCheckFailed": "errors",
    "MissingExportExtra": "errors", "EXTRA_INSTALL": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'converter.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return __all__
