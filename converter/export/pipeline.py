"""export(): a Crossformer source -> a verified deployment artifact, written all-or-nothing."""
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import check_output
from ..errors import ConfigError
from .artifact import FORMATS, QUANTIZATIONS, implementation
from .errors import ExportCheckFailed, require
from .metadata import artifact_metadata, metadata_json
from .verify import VERIFY_BATCHES, verify_artifact


@dataclass
class ExportReport:
    format: str
    quantize: str
    dst: Path
    size_bytes: int = 0
    seconds: float = 0.0
    check: object = None  # verify.ArtifactCheck
    runtime: str = ""
    notes: list = field(default_factory=list)
    written: bool = False

    @property
    def passed(self):
        return self.check is not None and self.check.passed

    def summary(self):
        precision = self.quantize or "float32"
        return (f"{self.format} ({precision}), {self.size_bytes / 1e6:.1f} MB | run with {self.runtime}, batch axis "
                f"{'dynamic' if self.check.batch_dynamic else 'FIXED'} | {self.check.describe()} | "
                f"{self.seconds:.1f} s")


def artifact_size(path):
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    size = path.stat().st_size
    if path.suffix == ".xml" and path.with_suffix(".bin").is_file():
        size += path.with_suffix(".bin").stat().st_size
    return size


def check_request(dst, format_name, quantize, force):
    """Everything about the request that can be refused before any work: format, quantization, output, extra."""
    if format_name not in FORMATS:
        raise ConfigError(f"unknown format {format_name!r}; choose from {', '.join(FORMATS)}")
    spec = FORMATS[format_name]
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r}; choose from {', '.join(QUANTIZATIONS)}")
    if quantize is not None and quantize not in spec.quantizations:
        offered = f"it offers {', '.join(spec.quantizations)}" if spec.quantizations else "it offers none"
        raise ConfigError(f"--quantize {quantize} is not available for {format_name} ({offered})")
    dst = check_output(dst, force, suffix=spec.suffix or None, folder=not spec.suffix)
    if format_name == "openvino":
        check_output(dst.with_suffix(".bin"), force)
    for module in spec.requires:
        require(module, f"the {format_name} export")
    return dst


def source_model(src, config=None, overrides=None):
    """(float Keras Crossformer, notes) from a .keras file, one of our run folders, or a PyTorch checkpoint
    (folder or weights file; converted now and verified against reference_torch as `convert` does)."""
    from ..checkpoint_files import load_keras_crossformer, read_run_folder
    from ..conversion import convert

    src = Path(src)
    if src.suffix == ".keras" or (src.is_dir() and (src / "model.keras").is_file()):
        if config or overrides:
            raise ConfigError(f"{src} is a Keras model that carries its configuration; --config and model flags "
                              "describe a PyTorch checkpoint")
        return (read_run_folder(src)[0] if src.is_dir() else load_keras_crossformer(src)), []
    report = convert(src, config=config, overrides=overrides)
    if not report.verify.passed:
        raise ExportCheckFailed(f"{src}: the conversion failed verification ({report.summary()}); nothing written")
    return report.model, report.notes + [f"converted: {report.summary()}"]


def float32_model(model, notes):
    """The model itself when float32; a float64 model is exported in float32, and said so."""
    if model.compute_dtype == "float32":
        return model
    from ..bridge import config_of, torch_to_keras
    from ..weight_map import keras_to_state_dict

    copy = torch_to_keras(keras_to_state_dict(model), config_of(model), dtype="float32")
    copy.scale_statistic, copy.training_args = model.scale_statistic, model.training_args
    notes.append(f"the model is {model.compute_dtype}; the artifact computes in float32 (weights rounded once to "
                 "float32; ONNX Runtime, LiteRT and OpenVINO CPU kernels are float32) and is verified against "
                 "reference_torch in float32")
    return copy


def export(src, dst, format_name, quantize=None, force=False, config=None, overrides=None):
    """A PyTorch checkpoint, .keras file or run folder -> a verified artifact at ``dst`` (see export_model)."""
    started = time.perf_counter()
    check_request(dst, format_name, quantize, force)
    model, notes = source_model(src, config, overrides)
    report = export_model(model, dst, format_name, quantize, force, notes=notes)
    report.seconds = time.perf_counter() - started
    return report


def export_model(model, dst, format_name, quantize=None, force=False, graph=None, reference=None, notes=None,
                 batches=VERIFY_BATCHES):
    """Write a keras_model.Crossformer as a ``format_name`` artifact at ``dst``, run it with its own runtime at
    ``batches`` and compare with reference_torch; move it into place only when that passes (and the batch axis
    is dynamic). ``graph`` (a ServingGraph of the same model) and ``reference`` (its reference_torch twin) may be
    passed to reuse them across formats. Returns an ExportReport (report.written tells whether it was written)."""
    from ..bridge import keras_to_torch
    from .serving import ServingGraph

    started = time.perf_counter()
    dst = check_request(dst, format_name, quantize, force)
    notes = list(notes or [])
    model = float32_model(model, notes)
    if graph is not None and graph.model is not model:
        raise ValueError("graph was traced from another model")
    reference = reference if reference is not None else keras_to_torch(model)
    text = metadata_json(artifact_metadata(model, format_name, quantize))
    report = ExportReport(format_name, quantize, dst, notes=notes)
    own_graph = graph is None
    graph = ServingGraph(model) if own_graph else graph
    staging = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    try:
        staged = staging / dst.name
        formatter = implementation(format_name)
        formatter.write(graph, staged, quantize, text)
        artifact = formatter.Runner(staged)
        report.runtime = artifact.runtime
        report.check = verify_artifact(artifact, reference, batches)
        report.size_bytes = artifact_size(staged)
        del artifact  # release the runtime's hold on the files before they move
        if report.passed:
            _publish(staged, dst)
            report.written = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if own_graph:
            graph.close()
    report.seconds = time.perf_counter() - started
    return report


def _publish(staged, dst):
    """Move the verified artifact into place. A file is one rename. OpenVINO's pair is two, the .bin first, so
    that the .xml (which names it) never appears before its weights. A folder replaces an old one last."""
    umask = os.umask(0)
    os.umask(umask)
    if staged.is_dir():
        os.chmod(staged, 0o777 & ~umask)
        if dst.exists():
            old = staged.parent / ".replaced"
            os.replace(dst, old)
        os.replace(staged, dst)
        return
    if staged.suffix == ".xml":
        os.replace(staged.with_suffix(".bin"), dst.with_suffix(".bin"))
    os.replace(staged, dst)
