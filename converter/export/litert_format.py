"""LiteRT (TensorFlow Lite) flatbuffer with TFLite's built-in operators only; the metadata as the flatbuffer's
``crossformer`` metadata entry. Runs on ai_edge_litert's Interpreter (XNNPACK, all cores)."""
import os
import re
from pathlib import Path

from .artifact import Artifact, read_artifact_bytes
from .errors import ArtifactError, BuiltinOpsError, require
from .metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, parse_metadata
from .serving import SIGNATURE_KEY


def write(graph, dst, quantize, metadata_text):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(graph.saved_model()))
    # Built-ins only: Keras's LiteRT exporter also allows SELECT_TF_OPS, which writes a model that fails at run
    # time on an interpreter without the Flex delegate (the plain ai_edge_litert / mobile runtimes).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # tf.lite's ConverterError; its text lists the operators it could not lower
        unsupported = unsupported_ops_in_message(str(error))
        if unsupported:
            raise BuiltinOpsError(f"LiteRT: {', '.join(unsupported)} not among TFLite's built-in operators (a plain "
                                  "LiteRT runtime, without the Flex delegate, cannot run it); nothing written"
                                  ) from None
        raise
    flatbuffer = with_metadata(flatbuffer, metadata_text)
    flex = flex_ops(flatbuffer)
    if flex:
        raise BuiltinOpsError(f"LiteRT: the model uses {', '.join(flex)} (Flex delegate ops); nothing written")
    Path(dst).write_bytes(flatbuffer)


def unsupported_ops_in_message(text):
    """Operator names in a TFLite converter error about operators outside the built-in set (the converter lists
    those a Flex delegate could run as "TF Select ops", the others as "Custom ops")."""
    listed = re.findall(r"(?:TF Select ops|Flex ops|Custom ops): ([^\n]+)", text)
    names = [name.strip() for line in listed for name in line.split(",") if name.strip()]
    return sorted(set(names))


def with_metadata(flatbuffer, metadata_text):
    """The flatbuffer with a ``crossformer`` metadata entry (TF's own tooling adds its metadata the same way)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = bytearray(metadata_text.encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


def _root(data, where):
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ArtifactError(f"{where} is not a LiteRT flatbuffer (no TFL3 identifier)")
    return schema, schema.Model.GetRootAs(data, 0)


def read_metadata(data, where):
    """The ``crossformer`` metadata text of a .tflite's bytes, or None."""
    schema, model = _root(data, where)
    try:
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name() == METADATA_KEY.encode():
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    except Exception as error:  # offsets past the end: a truncated or damaged file
        raise ArtifactError(f"{where} is damaged or truncated ({type(error).__name__} reading its metadata)") from None
    return None


def flex_ops(flatbuffer):
    """Custom operators in the flatbuffer (Flex ops are custom ops named Flex...)."""
    schema, model = _root(bytes(flatbuffer), "the converted model")
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.CUSTOM:
            names.append((code.CustomCode() or b"?").decode())
    return sorted(set(names))


def check_complete(data, where):
    """Every buffer the flatbuffer points at lies inside the file: a truncated .tflite must not reach the
    interpreter, which reads weights lazily."""
    _, model = _root(data, where)
    try:
        for index in range(model.BuffersLength()):
            buffer = model.Buffers(index)
            end = buffer.Offset() + buffer.Size() if buffer.Offset() > 1 else 0
            if end > len(data) or buffer.DataLength() and len(buffer.DataAsNumpy()) != buffer.DataLength():
                raise IndexError(f"buffer {index}")
    except Exception as error:
        raise ArtifactError(f"{where} is damaged or truncated ({type(error).__name__}: {error})") from None


class Runner(Artifact):
    format = "litert"

    def __init__(self, path):
        data = read_artifact_bytes(path)
        super().__init__(path, parse_metadata(read_metadata(data, path), path))
        check_complete(data, path)
        interpreter = require("ai_edge_litert.interpreter", "running a LiteRT model")
        self.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        try:
            # XNNPACK is the default CPU delegate; num_threads gives it (and the built-in kernels) every core.
            self._interpreter = interpreter.Interpreter(model_content=data, num_threads=self.threads)
            self._runner = self._interpreter.get_signature_runner(SIGNATURE_KEY)
        except (ValueError, RuntimeError) as error:
            raise ArtifactError(f"{path}: the LiteRT interpreter refused it ({str(error).splitlines()[0][:160]})") \
                from None
        self._version = getattr(interpreter, "__version__", None) or _package_version("ai-edge-litert")

    @property
    def runtime(self):
        return f"ai_edge_litert {self._version} Interpreter (XNNPACK, {self.threads} threads)"

    def _run(self, x):
        return self._runner(**{INPUT_NAME: x})[OUTPUT_NAME]

    def batch_is_dynamic(self):
        return int(self._runner.get_input_details()[INPUT_NAME]["shape_signature"][0]) == -1


def _package_version(name):
    from importlib.metadata import version

    return version(name)
