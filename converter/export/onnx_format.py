"""ONNX (opset 17) converted by tf2onnx from the traced function; the metadata in ``metadata_props``.
Runs on onnxruntime's CPU execution provider."""
import os

from .artifact import Artifact, read_artifact_bytes
from .errors import ArtifactError, BuiltinOpsError, require
from .metadata import INPUT_NAME, METADATA_KEY, parse_metadata

# 17: what onnxruntime (>= 1.11), OpenVINO and TensorRT (>= 8.5) all read; tf2onnx 1.17 writes up to 18.
OPSET = 17
BATCH_AXIS = "batch"


def write(graph, dst, quantize, metadata_text):
    onnx = require("onnx", "the ONNX export")
    tf2onnx = require("tf2onnx", "the ONNX export")
    _numpy2_compatible(tf2onnx)
    model = _convert(tf2onnx, graph)
    unconverted = sorted({node.op_type for node in model.graph.node
                          if not onnx.defs.has(node.op_type, node.domain or "")})
    if unconverted:  # tf2onnx keeps what it cannot convert as TensorFlow ops, which no ONNX runtime has
        raise BuiltinOpsError(f"ONNX: tf2onnx left {', '.join(unconverted)} unconverted; nothing written")
    _name_batch_axis(model)
    if quantize == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # Inputs and outputs stay float32, so callers and the metadata's signature are unchanged.
        model = convert_float_to_float16(model, keep_io_types=True)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata_text
    onnx.save(model, str(dst))


def _convert(tf2onnx, graph):
    """tf2onnx's conversion of the traced function. Its optimizer deep-copies the whole graph before each of its
    ~40 passes so that a failing pass can be rolled back (measured: 30% of the conversion time); run without the
    copies first (tf2onnx's own TF2ONNX_CATCH_ERRORS switch) and with them only if a pass fails."""
    variable = tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS
    saved = os.environ.get(variable)
    try:
        for catch_errors in ("FALSE", "TRUE"):
            os.environ[variable] = catch_errors
            try:
                model, _ = tf2onnx.convert.from_function(graph.function, input_signature=[graph.input_spec],
                                                         opset=OPSET)
                return model
            except Exception:
                if catch_errors == "TRUE":
                    raise
    finally:
        if saved is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved


def _numpy2_compatible(tf2onnx):
    """tf2onnx 1.17 still uses np.object and a constant folding that NumPy 2 breaks; Keras's ONNX exporter
    ships the patch (applied once), so use it rather than a copy."""
    import warnings

    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:  # a Keras without it: NumPy 1, or a tf2onnx that no longer needs it
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its probe of np.object warns under NumPy 2
        patch_tf2onnx()


def _name_batch_axis(model):
    """tf2onnx names the open batch axis 'unk__N'; call it 'batch' on the input and the output."""
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = BATCH_AXIS


class Runner(Artifact):
    format = "onnx"

    def __init__(self, path):
        read_artifact_bytes(path)  # missing / empty: the one-line error
        ort = require("onnxruntime", "running an ONNX model")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's warnings about unused initializers are not the user's concern
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ArtifactError(f"{path} is not a loadable ONNX model ({str(error).splitlines()[0][:160]})") from None
        metadata = self._session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        super().__init__(path, parse_metadata(metadata, path))
        self._input = self._session.get_inputs()[0].name
        self._version = ort.__version__
        if self._input != INPUT_NAME:
            raise ArtifactError(f"{path}: input {self._input!r}, expected {INPUT_NAME!r}")

    @property
    def runtime(self):
        threads = self._session.get_session_options().intra_op_num_threads or os.cpu_count()
        return f"onnxruntime {self._version} (CPUExecutionProvider, {threads} threads)"

    def _run(self, x):
        return self._session.run(None, {self._input: x})[0]

    def batch_is_dynamic(self):
        return isinstance(self._session.get_inputs()[0].shape[0], str)  # a symbolic dimension, not a number
