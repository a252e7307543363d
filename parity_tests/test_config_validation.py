"""Both models accept and reject the same configurations, and the rule matches where the original crashes.

The two property tests are derandomized (database=None, derandomize=True): each run draws the same examples,
given the hypothesis version pinned in pyproject.toml's test extra, so a CI failure reproduces locally.
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_model
import reference_torch

from conftest import CONFIG_B

INVALID = {
    "one segment merged with win_size 3": (dict(CONFIG_B, in_len=4, seg_len=4, win_size=3), "win_size=3"),
    "n_heads above d_model": (dict(CONFIG_B, d_model=4, n_heads=8), "n_heads"),
    "zero seg_len": (dict(CONFIG_B, seg_len=0), "seg_len"),
    "zero win_size": (dict(CONFIG_B, win_size=0), "win_size"),
    "zero factor": (dict(CONFIG_B, factor=0), "factor"),
    "negative e_layers": (dict(CONFIG_B, e_layers=-1), "e_layers"),
    "float in_len": (dict(CONFIG_B, in_len=50.0), "in_len"),
    "dropout of 1": (dict(CONFIG_B, dropout=1.0), "dropout"),
    "boolean dropout": (dict(CONFIG_B, dropout=False), "dropout"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_both_models_reject(case):
    config, named = INVALID[case]
    with pytest.raises(reference_torch.InvalidConfigError, match=named):
        reference_torch.Crossformer(**config)
    with pytest.raises(keras_model.InvalidConfigError, match=named):
        keras_model.Crossformer(**config)


@pytest.mark.parametrize("in_len,seg_len,win_size", [(4, 4, 2), (8, 4, 3), (12, 4, 3)])
def test_short_merges_the_original_can_run_are_accepted(in_len, seg_len, win_size):
    # 1 segment with w=2, 2 with w=3 and 3 with w=3 run in the original (docs/model.md#segmerging).
    config = dict(CONFIG_B, in_len=in_len, seg_len=seg_len, win_size=win_size)
    x = torch.randn(2, in_len, config["data_dim"])
    with torch.no_grad():
        assert reference_torch.Crossformer(**config).eval()(x).shape == (2, config["out_len"], config["data_dim"])
    assert keras_model.Crossformer(**config)(x.numpy()).shape == (2, config["out_len"], config["data_dim"])


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(seg_num=st.integers(1, 40), win_size=st.integers(2, 8))
def test_rejection_rule_is_where_the_original_segmerging_crashes(seg_num, win_size):
    """The rule both models apply (pad > seg_num) is exactly when the original's SegMerging raises."""
    merge = reference_torch.SegMerging(4, win_size)
    pad = -seg_num % win_size
    try:
        merge(torch.randn(1, 1, seg_num, 4))
        crashed = False
    except RuntimeError:
        crashed = True
    assert crashed == (pad > seg_num)


def _outcome(build):
    try:
        return build()
    except (reference_torch.InvalidConfigError, keras_model.InvalidConfigError) as error:
        return type(error).__name__


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(data_dim=st.integers(1, 12), in_len=st.integers(1, 200), out_len=st.integers(1, 200),
       seg_len=st.integers(1, 24), win_size=st.integers(0, 6), factor=st.integers(0, 10), d_model=st.integers(1, 64),
       d_ff=st.integers(1, 64), n_heads=st.integers(1, 10), e_layers=st.integers(-1, 6))
def test_geometry_rules_agree(**config):
    """The two independent rule sets give the same verdict and the same derived lengths."""
    def torch_side():
        geometry = reference_torch.CrossformerGeometry(**config)
        return (geometry.pad_in_len, geometry.pad_out_len, geometry.in_len_add, geometry.block_seg_nums)

    def keras_side():
        derived = keras_model.validate_and_derive(dict(config, dropout=0.0))
        return (derived["pad_in_len"], derived["pad_out_len"], derived["in_len_add"], derived["block_seg_nums"])

    torch_result, keras_result = _outcome(torch_side), _outcome(keras_side)
    assert (torch_result == "InvalidConfigError") == (keras_result == "InvalidConfigError")
    assert torch_result == keras_result


def test_one_list_of_model_arguments():
    """The one tuple of model arguments (keras_model.MODEL_ARGUMENTS), the Keras model's constructor arguments and
    the reference's config agree."""
    import inspect

    from converter.bridge import config_of

    keras_parameters = list(inspect.signature(keras_model.Crossformer).parameters)
    assert [p for p in keras_parameters if p in keras_model.MODEL_ARGUMENTS] == list(keras_model.MODEL_ARGUMENTS)
    assert tuple(reference_torch.Crossformer(**CONFIG_B).crossformer_config) == tuple(keras_model.MODEL_ARGUMENTS)
    assert tuple(config_of(keras_model.Crossformer(**CONFIG_B))) == tuple(keras_model.MODEL_ARGUMENTS)
