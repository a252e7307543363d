"""TensorFlow SavedModel: a folder with the `serving_default` signature (input `series`, output `forecast`),
as TF Serving loads it; the metadata in assets.extra/crossformer.json."""
import shutil
from pathlib import Path

from .artifact import Artifact
from .errors import ArtifactError
from .metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, parse_metadata
from .serving import SIGNATURE_KEY

METADATA_FILE = Path("assets.extra") / f"{METADATA_KEY}.json"


def write(graph, dst, quantize, metadata_text):
    if quantize:
        raise ValueError("a SavedModel is written in float32 only")
    shutil.copytree(graph.saved_model(), dst)
    (Path(dst) / METADATA_FILE).parent.mkdir(exist_ok=True)
    (Path(dst) / METADATA_FILE).write_text(metadata_text)


class Runner(Artifact):
    format = "saved_model"

    def __init__(self, path):
        import tensorflow as tf

        path = Path(path)
        metadata_file = path / METADATA_FILE
        super().__init__(path, parse_metadata(metadata_file.read_text() if metadata_file.is_file() else None, path))
        try:
            self._loaded = tf.saved_model.load(str(path))
            self._signature = self._loaded.signatures[SIGNATURE_KEY]
        except Exception as error:
            first_line = (str(error).splitlines() or [""])[0][:160]
            raise ArtifactError(f"{path} is not a loadable SavedModel ({type(error).__name__}: {first_line})") from None
        self._tf = tf

    @property
    def runtime(self):
        return f"TensorFlow {self._tf.__version__} (tf.saved_model.load, {SIGNATURE_KEY})"

    def _run(self, x):
        return self._signature(**{INPUT_NAME: self._tf.constant(x)})[OUTPUT_NAME].numpy()

    def batch_is_dynamic(self):
        _, inputs = self._signature.structured_input_signature
        return inputs[INPUT_NAME].shape[0] is None
