"""Parameter counts agree three ways and match the formulas and table of docs/model.md#state_dict-keys."""
import pytest
import torchinfo

import keras_model
import reference_torch

from conftest import CONFIG_B, ETTH1, PARITY_CASES, slow_except

COUNT_CASES = {**PARITY_CASES,
               "deep_win4": dict(CONFIG_B, in_len=96, seg_len=3, win_size=4, e_layers=4, factor=5, n_heads=3),
               "univariate_seg1": dict(data_dim=1, in_len=9, out_len=5, seg_len=1, win_size=2, factor=2, d_model=8,
                                       d_ff=12, n_heads=8, e_layers=3)}


def torch_numel(module):
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("name", slow_except("etth1", sorted(COUNT_CASES)))
def test_three_way_counts_agree(name):
    config = COUNT_CASES[name]
    torch_model = reference_torch.Crossformer(**config)
    summary = torchinfo.summary(torch_model, input_size=(1, config["in_len"], config["data_dim"]), verbose=0)
    keras_count = keras_model.Crossformer(**config).count_params()
    assert torch_numel(torch_model) == summary.total_params == keras_count


def attention_params(dm, heads):
    """Q/K/V (dm -> width) and out (width -> dm), width = (dm // heads) * heads; 4(dm^2 + dm) when heads | dm."""
    width = (dm // heads) * heads
    return 3 * (dm * width + width) + width * dm + dm


def tsa_params(seg_num, c, dm, dff, heads):
    """docs/model.md#state_dict-keys: L*c*dm + 12(dm^2+dm) + 8dm + 2(2*dm*dff + dff + dm), with the attention
    term generalised."""
    return seg_num * c * dm + 3 * attention_params(dm, heads) + 8 * dm + 2 * (2 * dm * dff + dff + dm)


def test_etth1_counts_match_the_documented_table():
    torch_model = reference_torch.Crossformer(**ETTH1)
    keras = keras_model.Crossformer(**ETTH1)
    expected_total = 11_301_656
    assert torch_numel(torch_model) == keras.count_params() == expected_total
    encoder_blocks = [1_389_056, 1_485_568, 1_467_648]
    for i, expected in enumerate(encoder_blocks):
        assert torch_numel(torch_model.encoder.encode_blocks[i]) == expected
        assert keras.encoder.encode_blocks[i].count_params() == expected
    assert len(keras.decoder.decode_layers) == len(torch_model.decoder.decode_layers) == 4
    for i in range(4):
        assert torch_numel(torch_model.decoder.decode_layers[i]) == 1_724_934
        assert keras.decoder.decode_layers[i].count_params() == 1_724_934
    assert int(keras.enc_pos_embedding.numpy().size) == torch_model.enc_pos_embedding.numel() == 50_176
    assert int(keras.dec_pos_embedding.numpy().size) == torch_model.dec_pos_embedding.numel() == 7_168
    assert keras.enc_value_embedding.count_params() == 1_792
    assert keras.pre_norm.count_params() == 512


@pytest.mark.parametrize("name", slow_except("deep_win4", sorted(COUNT_CASES)))
def test_counts_match_the_documented_formulas(name):
    config = COUNT_CASES[name]
    model = keras_model.Crossformer(**config)
    dm, dff, c, w, ls = config["d_model"], config["d_ff"], config["factor"], config["win_size"], config["seg_len"]
    heads = config["n_heads"]
    derived = model.derived
    for i, (block, seg_num) in enumerate(zip(model.encoder.encode_blocks, derived["block_seg_nums"])):
        merge = (w * dm * dm + dm + 2 * w * dm) if (i > 0 and w > 1) else 0
        assert block.count_params() == merge + tsa_params(seg_num, c, dm, dff, heads), f"encoder block {i}"
    for layer in model.decoder.decode_layers:
        # docs/model.md: TSA(Lout) + 6(dm^2+dm) + 4dm + dm*Ls + Ls (cross-attention + MLP1 dm->dm->dm + norms + pred).
        assert layer.count_params() == tsa_params(derived["out_seg_num"], c, dm, dff, heads) \
            + attention_params(dm, heads) + 2 * (dm * dm + dm) + 4 * dm + dm * ls + ls
