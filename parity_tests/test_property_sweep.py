"""Property-based sweep over configurations: valid ones agree with reference_torch in float32 and
float64; invalid ones are rejected by both models alike, with the same message.

Two parts. The explicit examples (COVERAGE_EXAMPLES, test_explicit_examples, part of the quick loop) cover
what must be covered whatever the random draws do: baseline on and off in float32 and float64, heads that
do not divide d_model, win_size 1, a single encoder block (e_layers 1 and 0), input padding (in_len not a
multiple of seg_len) and merge padding (a segment count not a multiple of win_size) in both precisions, and
every rule by which both models reject a configuration (each integer minimum, non-integers, n_heads above
d_model, dropout outside [0, 1), an unknown variant, the tslib variant's even d_model and no baseline, the
segment merge needing more re-appended segments than exist). test_explicit_examples_cover_every_feature_and_rule
checks that the list covers all of that, test_sweep_ran_valid_and_invalid_examples that it all ran. Then
(`slow`, the full suite) SWEEP_EXAMPLES random configurations (default 22) explore around them.

Derandomized (a fixed example sequence), so CI runs are reproducible: the sequence is fixed for a given
hypothesis version and test source (hypothesis seeds it from the test function's code, so editing
test_random_configurations draws another fixed sequence), which is why pyproject.toml's test extra pins
hypothesis exactly. Raise SWEEP_EXAMPLES
locally to explore further: SWEEP_EXAMPLES=500 pytest parity_tests/test_property_sweep.py.
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

EXAMPLES = int(os.environ.get("SWEEP_EXAMPLES", "22"))
SWEEP_COUNTS = {"valid": 0, "rejected": 0}  # explicit and random cases together
RAN = {"explicit": False, "random_draws": 0}  # test_explicit_examples finished; the random sweep's own draws
COVERED = set()  # the features and rejection rules the sweep has exercised in this session


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


SMALL = dict(data_dim=3, in_len=24, out_len=8, seg_len=4, win_size=2, factor=2, d_model=8, d_ff=8, n_heads=2,
             e_layers=2, baseline=False)
VALID_EXAMPLES = [  # (config, batch, dtype); each line's comment says what it covers
    # baseline, float32; 3 heads in d_model 10; in_len 23 padded to 24 (6 segments); win 4 pads 6 -> 8 and 2 -> 4
    (dict(SMALL, in_len=23, d_model=10, n_heads=3, d_ff=12, win_size=4, e_layers=3, baseline=True), 2, "float32"),
    # baseline, float64; win_size 1; one block; in_len 17 padded to 18
    (dict(SMALL, data_dim=2, in_len=17, out_len=5, seg_len=3, win_size=1, e_layers=1, baseline=True), 3, "float64"),
    # no baseline, float32; win_size 1 with three blocks (no merging anywhere)
    (dict(SMALL, data_dim=4, seg_len=6, out_len=12, win_size=1, d_model=12, n_heads=4, e_layers=3), 2, "float32"),
    # no baseline, float64; 4 heads in d_model 14; in_len 50 padded to 52 (13 segments); win 3 pads 13 and 5
    (dict(SMALL, in_len=50, out_len=13, win_size=3, factor=3, d_model=14, n_heads=4, d_ff=16, e_layers=3), 2,
     "float64"),
    # float32; one block with win_size 3 (never merged); head width 1; seg_len 1
    (dict(SMALL, data_dim=2, in_len=5, out_len=3, seg_len=1, win_size=3, factor=1, d_model=6, n_heads=6, d_ff=4,
          e_layers=1), 1, "float32"),
    # float64, baseline; e_layers 0 (one block and one decoder layer, as the original builds it)
    (dict(SMALL, e_layers=0, baseline=True), 2, "float64"),
]
REJECTED_EXAMPLES = [(dict(SMALL, **change), 1, "float32") for change in (
    # every integer minimum
    dict(data_dim=0), dict(in_len=0), dict(out_len=0), dict(seg_len=0), dict(win_size=0), dict(factor=0),
    dict(d_model=0), dict(d_ff=0), dict(n_heads=0), dict(e_layers=-1),
    # integers only (a float, a bool)
    dict(in_len=24.0), dict(n_heads=True),
    dict(d_model=4, n_heads=5),
    dict(dropout=1.0), dict(dropout=-0.1), dict(dropout=True),
    dict(variant="thuml"),
    dict(variant="tslib", d_model=9, n_heads=3), dict(variant="tslib", baseline=True),
    # one segment (in_len 4 over seg_len 4) merged with win_size 3 needs 2 re-appended segments
    dict(in_len=4, win_size=3),
)]
COVERAGE_EXAMPLES = VALID_EXAMPLES + REJECTED_EXAMPLES

# What test_sweep_ran_valid_and_invalid_examples requires to have run.
REQUIRED = ({f"baseline={b} {dtype}" for b in (True, False) for dtype in ("float32", "float64")}
            | {f"{feature} {dtype}" for feature in ("uneven heads", "win_size 1", "one block", "input padding",
                                                     "merge padding") for dtype in ("float32", "float64")}
            | {f"rejected: {rule}" for rule in ("data_dim must be >=", "in_len must be >=", "out_len must be >=",
                                                  "seg_len must be >=", "win_size must be >=", "factor must be >=",
                                                  "d_model must be >=", "d_ff must be >=", "n_heads must be >=",
                                                  "e_layers must be >=", "must be an integer", "exceeds d_model",
                                                  "dropout must be in", "variant must be one of",
                                                  "needs an even d_model", "has no baseline", "must merge")})


def features(config, dtype):
    """The coverage labels a valid configuration exercises."""
    geometry = reference_torch.CrossformerGeometry(**config)
    merged = geometry.block_seg_nums[:-1] if config["win_size"] > 1 else []
    found = {f"baseline={bool(config.get('baseline'))}",
             *(["uneven heads"] if config["d_model"] % config["n_heads"] else []),
             *(["win_size 1"] if config["win_size"] == 1 else []),
             *(["one block"] if len(geometry.block_seg_nums) == 1 else []),
             *(["input padding"] if geometry.in_len_add else []),
             *(["merge padding"] if any(n % config["win_size"] for n in merged) else [])}
    return {f"{label} {dtype}" for label in found}


def rule_of(message):
    rules = [rule.removeprefix("rejected: ") for rule in REQUIRED if rule.startswith("rejected: ")]
    return next((rule for rule in rules if rule in message), message)


def rejection_rule(config):
    try:
        reference_torch.CrossformerGeometry(**config)
    except reference_torch.InvalidConfigError as error:
        return f"rejected: {rule_of(str(error))}"
    return None


def test_explicit_examples_cover_every_feature_and_rule():
    """The explicit examples alone cover REQUIRED, whatever the random draws add (no model is built here)."""
    covered = set()
    for config, _, dtype in COVERAGE_EXAMPLES:
        rule = rejection_rule(config)
        covered |= {rule} if rule else features(config, dtype)
    assert not REQUIRED - covered, sorted(REQUIRED - covered)
    assert all(rejection_rule(config) for config, _, _ in REJECTED_EXAMPLES)


def _is_valid(config):
    try:
        reference_torch.CrossformerGeometry(**config)
        return True
    except reference_torch.InvalidConfigError:
        return False


def check_case(case):
    """One (config, batch, dtype): a valid configuration agrees with reference_torch under the policy; an invalid
    one is rejected by both models with the same message. Counted in SWEEP_COUNTS, its features in COVERED."""
    config, batch, dtype = case
    if not _is_valid(config):
        SWEEP_COUNTS["rejected"] += 1
        with pytest.raises(reference_torch.InvalidConfigError) as torch_error:
            reference_torch.Crossformer(**config)
        with pytest.raises(keras_model.InvalidConfigError) as keras_error:
            keras_model.Crossformer(**config)
        assert str(keras_error.value) == str(torch_error.value)  # the same rule, named the same way
        COVERED.add(f"rejected: {rule_of(str(torch_error.value))}")
        return
    SWEEP_COUNTS["valid"] += 1
    torch_model = seeded_torch_model(config, seed=batch)
    x = np.random.default_rng(batch).standard_normal((batch, config["in_len"], config["data_dim"]))
    got = keras_forward(torch_to_keras(torch_model, dtype=dtype), x)
    diff = max_abs_diff(got, torch_forward(torch_model, x, dtype))
    assert tolerance_for(dtype).passes(diff), f"{config} batch {batch} {dtype}: max abs diff {diff:.3e}"
    COVERED.update(features(config, dtype))


def test_explicit_examples():
    """Every explicit example, in one test (one model each; about 10 s): the coverage the quick loop keeps."""
    for case in COVERAGE_EXAMPLES:
        check_case(case)
    RAN["explicit"] = True


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=crossformer_cases())
def test_random_configurations(case):
    check_case(case)
    RAN["random_draws"] += 1


def test_sweep_ran_valid_and_invalid_examples():
    """The tests above (run before this one; pytest keeps file order) covered every required feature and rule;
    where the random sweep ran too, it drew its SWEEP_EXAMPLES and at least half of them were valid."""
    if not RAN["explicit"]:
        pytest.skip("the explicit examples did not run in this session")
    record_parity(f"hypothesis sweep: {SWEEP_COUNTS['valid']} valid, {SWEEP_COUNTS['rejected']} rejected", "both",
                  "1-8", 0.0)
    assert not REQUIRED - COVERED, sorted(REQUIRED - COVERED)
    if RAN["random_draws"]:
        assert RAN["random_draws"] >= EXAMPLES, RAN
        assert SWEEP_COUNTS["valid"] >= EXAMPLES // 2 and SWEEP_COUNTS["rejected"] > 0, SWEEP_COUNTS


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
