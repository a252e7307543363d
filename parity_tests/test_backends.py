"""The small configurations agree with reference_torch on the torch and JAX backends too.

Each backend runs in its own process (KERAS_BACKEND is read once, at import). float64 is exact on the
TensorFlow and JAX backends (on JAX thanks to keras_model's own float64 mean and LayerNorm: Keras's ops.mean
and LayerNormalization compute float64 in float32 there). On the torch backend Keras 3.15 computes ops.matmul,
so every Dense, in float32 (keras-team/keras#23704): a test below pins that cause and its size, and fails the
day Keras fixes it (or anything else goes wrong on that path).
"""
import importlib.util
import json
import os
import subprocess
import sys
import warnings

import pytest

import keras_model
from converter import tolerance_for

from conftest import CONFIG_B, PARITY_CASES, REPO

HERE = os.path.dirname(__file__)


def run_probe(backend, *dtypes):
    python_path = os.pathsep.join([str(REPO), HERE, os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=python_path,
               JAX_ENABLE_X64="1")
    result = subprocess.run([sys.executable, os.path.join(HERE, "backend_probe.py"), *dtypes], capture_output=True,
                            text=True, env=env, cwd=HERE)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    return report


JAX = pytest.param("jax", marks=pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                                   reason="jax is not installed (pip install jax)"))
BACKENDS = [pytest.param("torch"), JAX]


@pytest.fixture(scope="module")
def probes():
    """backend -> its probe's report, float32 (with the layer-wise harness) and float64 in one process each:
    a backend's start-up and its first compilations are paid once."""
    reports = {}

    def report(backend):
        if backend not in reports:
            reports[backend] = run_probe(backend, "float32", "float64", "--layerwise")
        return reports[backend]
    return report


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_parity_on_other_backends(backend, probes):
    report = probes(backend)
    failures = {case: d["float32"] for case, d in report["diffs"].items()
                if not tolerance_for("float32").passes(d["float32"])}
    assert not failures, f"{backend}: {failures}"
    assert report["layerwise"]["passed"], report["layerwise"]["verdict"]
    if backend == "torch":  # torch.compile of the attention (a torch 2.13 inductor rewrite broke it)
        assert tolerance_for("float32").passes(report["torch_compiled_attention"]), report["torch_compiled_attention"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", [JAX])
def test_float64_parity_on_jax_backend(backend, probes):
    report = probes(backend)
    diffs = report["diffs"]
    assert all(tolerance_for("float64").passes(d["float64"]) for d in diffs.values()), diffs
    assert tolerance_for("float64").passes(report["torch_adam_float64"]), report["torch_adam_float64"]


@pytest.mark.slow
def test_float64_on_torch_backend_is_off_by_float32_matmul_rounding_only(probes):
    """float64 on the torch backend misses the float64 bound for one known reason, and by no more than it explains.

    The cause, measured directly: Keras's ops.matmul hands two float64 tensors back as float32, computed in
    float32 (keras-team/keras#23704; its result_type(float64, float64) is float32 on this backend): max abs
    error 7.1e-6 on a 64x64 product of unit normals, where float64 gives ~1e-14. Dense casts the result back,
    so the model still returns float64. The effect: every small configuration's output is beyond the float64
    bound (1e-12) and within the float32 one (abs 1e-5); measured 3.3e-7 to 4.5e-7. Anything else fails here:
    the probe crashing, the wrong backend, a missing case, a float32 model output, a larger difference; and so
    does the day Keras computes float64 matmuls in float64 (then the float64 bound should hold on torch too:
    add it to keras_model.model.FLOAT64_EXACT_BACKENDS and test it as on JAX).
    """
    report = probes("torch")
    matmul = report["float64_matmul"]
    assert matmul["dtype"] == "float32" and 1e-12 < matmul["max_abs_error"] < 1e-4, \
        f"float64 matmul no longer computed in float32 on torch, keras-team/keras#23704 fixed? {matmul}"
    diffs = {case: d["float64"] for case, d in report["diffs"].items()}
    assert sorted(diffs) == sorted(name for name in PARITY_CASES if name != "etth1"), diffs
    assert all(d["float64"] == "float64" for d in report["output_dtypes"].values()), report["output_dtypes"]
    exact = {case: d for case, d in diffs.items() if tolerance_for("float64").passes(d)}
    assert not exact, f"float64 now exact on the torch backend, keras-team/keras#23704 fixed? {exact}"
    beyond = {case: d for case, d in diffs.items() if not tolerance_for("float32").passes(d)}
    assert not beyond, f"beyond float32 rounding: more than the known cause at work: {beyond}"
    # The optimizer has no matmul: float64 holds (it missed by 1e-10 while bare Python floats went through float32)
    assert tolerance_for("float64").passes(report["torch_adam_float64"]), report["torch_adam_float64"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", [JAX])
def test_float64_on_jax_without_x64_is_refused(backend):
    build = f"import keras_model; keras_model.Crossformer(**{CONFIG_B!r}, dtype='float64')"
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_ENABLE_X64="0",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True, env=env, cwd=HERE)
    assert result.returncode != 0
    assert "ValueError: float64 is switched off on the jax backend" in result.stderr


def test_float64_switched_off_in_the_backend_is_refused(monkeypatch):
    """JAX without JAX_ENABLE_X64 hands back float32 for float64: refused, not silently computed in float32."""
    convert = keras_model.model.ops.convert_to_tensor
    monkeypatch.setattr(keras_model.model.ops, "convert_to_tensor",
                        lambda x, dtype=None, **kw: convert(x, dtype="float32" if dtype == "float64" else dtype, **kw))
    with pytest.raises(ValueError, match="float64 is switched off.*JAX_ENABLE_X64=1"):
        keras_model.Crossformer(**CONFIG_B, dtype="float64")


def test_float64_on_a_backend_without_float64_matmul_warns(monkeypatch):
    monkeypatch.setattr(keras_model.model, "FLOAT64_EXACT_BACKENDS", ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_model.Crossformer(**CONFIG_B, dtype="float64")
    assert any("keras-team/keras#23704" in str(w.message) for w in caught)
