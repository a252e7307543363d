"""The model's forward pass as one traced TensorFlow function, and the SavedModel every format starts from.

Keras's own exporters (model.export) track the whole layer tree through an ExportArchive; saving that makes
TensorFlow trace every layer's call again, which measured 2/3 of a LiteRT or ONNX export here (50-110 s for
the ETTh1 configuration). The forward pass needs only the model's variables and one function, so that is all
this module holds: a tf.Module with the variables and `serve`, traced once with the batch axis left open, and
written once as a SavedModel that the LiteRT and OpenVINO converters read (the path Keras's LiteRT exporter
takes too) and tf2onnx converts from the same function.
"""
import shutil
import tempfile
from pathlib import Path

from .metadata import INPUT_NAME, OUTPUT_NAME

SIGNATURE_KEY = "serving_default"


class ServingGraph:
    """One traced forward pass of a float32 keras_model.Crossformer; reuse it to write several formats.

    Use as a context manager (or call close()) so that the intermediate SavedModel is removed."""

    def __init__(self, model):
        import tensorflow as tf

        if model.compute_dtype != "float32":
            raise ValueError(f"ServingGraph needs a float32 model, got {model.compute_dtype}")
        self.model = model
        self.input_spec = tf.TensorSpec((None, model.in_len, model.data_dim), tf.float32, name=INPUT_NAME)
        module = tf.Module()
        module.model_variables = [variable.value for variable in model.variables]  # the tf.Variables under Keras's
        module.serve = tf.function(lambda series: {OUTPUT_NAME: model(series, training=False)},
                                   input_signature=[self.input_spec], autograph=False)
        self.module = module
        self._folder = None

    @property
    def function(self):
        """The tf.function (input ``series``, output {"forecast": ...}); traced on first use, then cached."""
        return self.module.serve

    def saved_model(self):
        """The folder of the SavedModel (serving_default signature), written on first use."""
        import tensorflow as tf

        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="crossformer-serving-"))
            signature = self.function.get_concrete_function()
            tf.saved_model.save(self.module, str(self._folder / "saved_model"),
                                signatures={SIGNATURE_KEY: signature})
        return self._folder / "saved_model"

    def close(self):
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
