"""The small configurations agree with reference_torch on the torch and JAX backends too (issue 2).

Each backend runs in its own process (KERAS_BACKEND is read once, at import). float64 is exact only on the
TensorFlow backend: Keras 3.15 computes ops.matmul in float32 on the others (keras-team/keras#23704), which
the strict xfail below documents and will flag once Keras fixes it.
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

from conftest import CONFIG_B, REPO

HERE = os.path.dirname(__file__)


def run_probe(backend, *dtypes):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join([str(REPO), HERE]),
               JAX_ENABLE_X64="1")
    result = subprocess.run([sys.executable, os.path.join(HERE, "backend_probe.py"), *dtypes], capture_output=True,
                            text=True, env=env, cwd=HERE)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    return report


BACKENDS = [pytest.param("torch"),
            pytest.param("jax", marks=pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                                         reason="jax is not installed (pip install jax)"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_parity_on_other_backends(backend):
    report = run_probe(backend, "float32", "--layerwise")
    failures = {case: d["float32"] for case, d in report["diffs"].items()
                if not tolerance_for("float32").passes(d["float32"])}
    assert not failures, f"{backend}: {failures}"
    assert report["layerwise"]["passed"], report["layerwise"]["verdict"]


@pytest.mark.xfail(strict=True, reason="keras-team/keras#23704: float64 matmul runs in float32 on the torch backend")
def test_float64_parity_on_torch_backend():
    diffs = run_probe("torch", "float64")["diffs"]
    assert all(tolerance_for("float64").passes(d["float64"]) for d in diffs.values()), diffs


def test_float64_on_a_backend_without_float64_matmul_warns(monkeypatch):
    monkeypatch.setattr(keras_model.model, "FLOAT64_EXACT_BACKENDS", ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_model.Crossformer(**CONFIG_B, dtype="float64")
    assert any("keras-team/keras#23704" in str(w.message) for w in caught)
