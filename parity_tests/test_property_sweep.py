"""Property-based sweep over configurations: valid ones agree with reference_torch in float32 and
float64; invalid ones are rejected by both models alike.

Derandomized (a fixed example sequence), so CI runs are reproducible; raise SWEEP_EXAMPLES locally to
explore further: SWEEP_EXAMPLES=500 pytest parity_tests/test_property_sweep.py.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_model
import reference_torch
from converter import tolerance_for, torch_to_keras

from conftest import keras_forward, max_abs_diff, record_parity, seeded_torch_model, torch_forward

EXAMPLES = int(os.environ.get("SWEEP_EXAMPLES", "40"))
SWEEP_COUNTS = {"valid": 0, "rejected": 0}


@st.composite
def crossformer_cases(draw):
    n_heads = draw(st.integers(1, 8))
    config = dict(
        data_dim=draw(st.integers(1, 12)),
        in_len=draw(st.integers(1, 120)),  # divisible by seg_len or not
        out_len=draw(st.integers(1, 60)),
        seg_len=draw(st.integers(1, 12)),
        win_size=draw(st.integers(1, 4)),
        factor=draw(st.integers(1, 10)),
        n_heads=n_heads,
        d_model=draw(st.integers(n_heads, 24)),  # often not a multiple of n_heads
        d_ff=draw(st.integers(1, 32)),
        e_layers=draw(st.integers(1, 4)),
        baseline=draw(st.booleans()),
    )
    return config, draw(st.integers(1, 8)), draw(st.sampled_from(["float32", "float64"]))


def _is_valid(config):
    try:
        reference_torch.CrossformerGeometry(**{k: v for k, v in config.items() if k != "baseline"})
        return True
    except reference_torch.InvalidConfigError:
        return False


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=crossformer_cases())
def test_random_configurations(case):
    config, batch, dtype = case
    if not _is_valid(config):
        SWEEP_COUNTS["rejected"] += 1
        with pytest.raises(reference_torch.InvalidConfigError):
            reference_torch.Crossformer(**config)
        with pytest.raises(keras_model.InvalidConfigError):
            keras_model.Crossformer(**config)
        return
    SWEEP_COUNTS["valid"] += 1
    torch_model = seeded_torch_model(config, seed=batch)
    x = np.random.default_rng(batch).standard_normal((batch, config["in_len"], config["data_dim"]))
    got = keras_forward(torch_to_keras(torch_model, dtype=dtype), x)
    diff = max_abs_diff(got, torch_forward(torch_model, x, dtype))
    assert tolerance_for(dtype).passes(diff), f"{config} batch {batch} {dtype}: max abs diff {diff:.3e}"


def test_sweep_ran_valid_and_invalid_examples():
    """The sweep above exercised both branches (runs after it; pytest keeps file order)."""
    if sum(SWEEP_COUNTS.values()) == 0:
        pytest.skip("the sweep did not run in this session")
    record_parity(f"hypothesis sweep: {SWEEP_COUNTS['valid']} valid, {SWEEP_COUNTS['rejected']} rejected", "both",
                  "1-8", 0.0)
    assert SWEEP_COUNTS["valid"] >= EXAMPLES // 2 and SWEEP_COUNTS["rejected"] > 0


@pytest.mark.parametrize("config", [
    dict(data_dim=2, in_len=3, out_len=5, seg_len=3, win_size=3, factor=2, d_model=8, d_ff=8, n_heads=2, e_layers=2),
    dict(data_dim=2, in_len=4, out_len=5, seg_len=2, win_size=4, factor=2, d_model=8, d_ff=8, n_heads=2, e_layers=3),
])
def test_invalid_configurations_are_rejected_by_both(config):
    """Configurations whose segment merge would need more re-appended segments than exist (docs/model.md)."""
    assert not _is_valid(config)
    with pytest.raises(reference_torch.InvalidConfigError, match="win_size"):
        reference_torch.Crossformer(**config)
    with pytest.raises(keras_model.InvalidConfigError, match="win_size"):
        keras_model.Crossformer(**config)
