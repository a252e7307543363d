"""OpenVINO IR (.xml + .bin beside it) converted from the SavedModel; the metadata in the model's rt_info.
Runs on the OpenVINO CPU plugin with INFERENCE_PRECISION_HINT f32 (it may otherwise compute in bf16 on CPUs
that have it)."""
from pathlib import Path

from .artifact import Artifact
from .errors import ArtifactError, require
from .metadata import METADATA_KEY, parse_metadata

DEVICE = "CPU"


def weights_file(xml):
    return Path(xml).with_suffix(".bin")


def write(graph, dst, quantize, metadata_text):
    ov = require("openvino", "the OpenVINO export")
    model = ov.convert_model(str(graph.saved_model()))
    model.set_rt_info(metadata_text, [METADATA_KEY])
    # save_model compresses weights to float16 unless told not to: only --quantize float16 asks for that.
    ov.save_model(model, str(dst), compress_to_fp16=quantize == "float16")


class Runner(Artifact):
    format = "openvino"

    def __init__(self, path):
        ov = require("openvino", "running an OpenVINO model")
        path = Path(path)
        if not weights_file(path).is_file():
            raise ArtifactError(f"{path}: its weights {weights_file(path).name} are missing")
        core = ov.Core()
        try:
            self._model = core.read_model(str(path))
        except Exception as error:
            raise ArtifactError(f"{path} is not a readable OpenVINO model ({str(error).splitlines()[0][:160]})") \
                from None
        text = self._model.get_rt_info([METADATA_KEY]).astype(str) if self._model.has_rt_info([METADATA_KEY]) \
            else None
        super().__init__(path, parse_metadata(text, path))
        try:
            compiled = core.compile_model(self._model, DEVICE, {"INFERENCE_PRECISION_HINT": "f32"})
        except Exception as error:
            raise ArtifactError(f"{path}: OpenVINO cannot compile it ({str(error).splitlines()[0][:160]})") from None
        self._request = compiled.create_infer_request()
        self._threads = compiled.get_property("INFERENCE_NUM_THREADS")
        self._version = ov.__version__.split("-")[0]  # "2026.4.1-22982-..." -> the release

    @property
    def runtime(self):
        return f"OpenVINO {self._version} ({DEVICE}, f32, {self._threads} threads)"

    def _run(self, x):
        self._request.infer({0: x})
        return self._request.get_output_tensor(0).data.copy()

    def batch_is_dynamic(self):
        return self._model.input(0).get_partial_shape()[0].is_dynamic
