"""What can go wrong when writing or reading a deployment artifact."""
from ..errors import CheckpointError, CrossformerInputError

EXTRA_INSTALL = 'pip install "crossformer-keras[export]" (in a checkout: pip install -e ".[export]")'


class MissingExportExtra(CrossformerInputError):
    """A runtime or converter of the `export` extra is not installed."""


class ArtifactError(CheckpointError):
    """A file or folder that is not a readable Crossformer artifact written by `crossformer export`."""


class ExportCheckFailed(RuntimeError):
    """A check of the export failed (exit 1, nothing written): not bad input."""


class BuiltinOpsError(ExportCheckFailed):
    """The model needs operators the target's runtime does not have (LiteRT: outside the built-in set, so it
    would need the Flex delegate; ONNX: TensorFlow ops tf2onnx could not convert)."""


def require(module, purpose):
    """Import an optional dependency of the export extra, or say which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExportExtra(f"{purpose} needs {module.split('.')[0]}, which is not installed "
                                 f"({error.name or module}); install the export extra: {EXTRA_INSTALL}") from None
