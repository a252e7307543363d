"""Checkpoints from elsewhere: the pre-fix original release (docs/model.md#the-legacy-mix-attention) and
Time-Series-Library (docs/model.md#time-series-library-variant). State_dicts are built here from those facts
(key names, buffer, semantics)."""
import json
import math

import keras
import numpy as np
import pytest
import torch

import reference_torch
from converter import tolerance_for, torch_to_keras
from converter.conversion import EXPORT_ARGS_DEFAULTS
from converter.parity import layerwise_parity

from conftest import (CONFIG_B, keras_forward, max_abs_diff, record_parity, run_cli, seeded_series, seeded_torch_model,
                      slow_except)

TSLIB = dict(data_dim=3, in_len=100, out_len=30, seg_len=12, win_size=2, factor=3, d_model=16, d_ff=24, n_heads=2,
             e_layers=2)  # lengths that are not multiples of 12
TSLIB_DIVISIBLE = dict(TSLIB, in_len=96, out_len=24)
TSLIB_IDS = ["lengths_100_30", "lengths_96_24"]  # TSLIB, TSLIB_DIVISIBLE
TSLIB_FOLDER_NAME = ("long_term_forecast_ETTh1_100_30_Crossformer_ETTh1_ftM_sl100_ll48_pl30_dm16_nh2_el2_dl1_df24"
                     "_expand2_dc4_fc3_ebtimeF_dtTrue_Exp_0")


def torch_out(model, x, dtype="float64"):
    model = model.to(getattr(torch, dtype)).eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype))).numpy()


# ===================================================================================== pre-fix "mix"
def legacy_folder(tmp_path):
    """A checkpoint folder as the original release wrote it from February to November 2023: the same keys and
    args.json, trained with the mixing attention (here: seeded weights of reference_torch with legacy_mix)."""
    torch_model = seeded_torch_model(dict(CONFIG_B, legacy_mix=True))
    folder = tmp_path / "Crossformer_custom_il50_ol13_sl4_win3_fa3_dm32_nh2_el2_itr0"
    folder.mkdir()
    torch.save(torch_model.state_dict(), folder / "checkpoint.pth")
    (folder / "args.json").write_text(json.dumps(dict(EXPORT_ARGS_DEFAULTS, **CONFIG_B), indent=True))
    return torch_model, folder


def test_mix_emulation_is_the_documented_transpose_then_view():
    """The legacy mix (docs/model.md): [B,L,H,dk] transposed to [B,H,L,dk], then viewed row-major as [B,L,H*dk].
    Recomputed in NumPy."""
    torch.manual_seed(3)
    layer = reference_torch.AttentionLayer(12, 3, dropout=0.0, legacy_mix=True).double().eval()
    q, kv = torch.randn(2, 5, 12, dtype=torch.float64), torch.randn(2, 4, 12, dtype=torch.float64)
    w = {name: (p.weight.detach().numpy(), p.bias.detach().numpy()) for name, p in
         (("q", layer.query_projection), ("k", layer.key_projection), ("v", layer.value_projection),
          ("o", layer.out_projection))}

    def project(x, name):
        return x.numpy() @ w[name][0].T + w[name][1]

    heads = lambda a: a.reshape(a.shape[0], a.shape[1], 3, 4)  # noqa: E731 - contiguous head slices
    queries, keys, values = heads(project(q, "q")), heads(project(kv, "k")), heads(project(kv, "v"))
    scores = np.einsum("blhe,bshe->bhls", queries, keys) / math.sqrt(4)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    out = np.einsum("bhls,bshd->blhd", attention, values)  # [B, L, H, dk]
    mixed = np.ascontiguousarray(out.transpose(0, 2, 1, 3)).reshape(2, 5, 12)  # the pre-fix scramble
    expected = mixed @ w["o"][0].T + w["o"][1]
    with torch.no_grad():
        np.testing.assert_allclose(layer(q, kv, kv).numpy(), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("dtype", slow_except("float64", ["float32", "float64"]))
def test_legacy_checkpoint_converts_with_the_flag(tmp_path, capfd, dtype):
    torch_model, folder = legacy_folder(tmp_path)
    code, out, err = run_cli(capfd, "convert", folder, "-o", tmp_path / "m.keras", "--legacy-mix", "--dtype", dtype)
    assert code == 0 and "PASS" in out, err
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert model.get_config()["legacy_mix"] is True  # part of the config: survives save/load
    x = seeded_series(CONFIG_B, 3)
    diff = max_abs_diff(keras_forward(model, x.astype(dtype)), torch_out(torch_model, x, dtype))
    record_parity("legacy mix: converted with --legacy-mix", dtype, 3, diff)
    assert tolerance_for(dtype).passes(diff)


@pytest.mark.slow
def test_the_wrong_choice_gives_different_outputs(tmp_path, capfd):
    """Converted without --legacy-mix, a pre-fix checkpoint loads and verifies (the keys are the same) but
    computes something else: outputs differ by O(1). The flag is not dead."""
    torch_model, folder = legacy_folder(tmp_path)
    assert run_cli(capfd, "convert", folder, "-o", tmp_path / "wrong.keras")[0] == 0
    x = seeded_series(CONFIG_B, 3)
    diff = max_abs_diff(keras_forward(keras.saving.load_model(tmp_path / "wrong.keras"), x.astype("float32")),
                        torch_out(torch_model, x, "float32"))
    assert diff > 0.1, diff


@pytest.mark.slow
def test_legacy_parity_and_export(tmp_path, capfd):
    torch_model, folder = legacy_folder(tmp_path)
    code, out, _ = run_cli(capfd, "parity", folder, "--legacy-mix", "--dtype", "float64", "--samples", "2")
    assert code == 0 and out.strip().splitlines()[-1].startswith("PASS"), out[-500:]
    assert run_cli(capfd, "convert", folder, "-o", tmp_path / "m.keras", "--legacy-mix")[0] == 0
    code, out, _ = run_cli(capfd, "parity", folder, "--keras", tmp_path / "m.keras", "--samples", "2")
    assert code == 0, out[-500:]  # the .keras file carries the legacy setting: no flag needed
    code, out, err = run_cli(capfd, "export-torch", tmp_path / "m.keras", "-o", tmp_path / "back.pth")
    assert code == 0 and "pre-December-2023 attention" in out, err
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in torch_model.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_legacy_layerwise_parity(dtype):
    torch_model = seeded_torch_model(dict(CONFIG_B, legacy_mix=True))
    report = layerwise_parity(torch_model, torch_to_keras(torch_model, dtype=dtype), seeded_series(CONFIG_B, 4),
                              dtype, batch=2)
    assert report.passed, report.verdict()
    record_parity("legacy mix layerwise (worst module)", dtype, 2, report.worst("chained").max_abs)


# ===================================================================================== Time-Series-Library
def tslib_sinusoid(d_model, max_len=5000):
    """TSLib's layers/Embed.py PositionalEmbedding table, written out here from its definition."""
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len).float().unsqueeze(1)
    div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


def tslib_state_dict(config, seed=0):
    """A Time-Series-Library Crossformer state_dict as docs/model.md describes it: the original's keys but the
    value embedding (enc_value_embedding.value_embedding.weight, no bias) and the sinusoid buffer
    position_embedding.pe."""
    state = dict(seeded_torch_model(config, seed).state_dict())
    state["enc_value_embedding.value_embedding.weight"] = state.pop("enc_value_embedding.linear.weight")
    del state["enc_value_embedding.linear.bias"]
    state["enc_value_embedding.position_embedding.pe"] = tslib_sinusoid(config["d_model"])
    return state


def tslib_reference(config, state):
    model = reference_torch.Crossformer(**config, variant="tslib")
    model.load_state_dict(state, strict=True)  # reference_torch loads a TSLib state_dict strictly in that mode
    return model.eval()


@pytest.mark.parametrize("config", [TSLIB, TSLIB_DIVISIBLE], ids=TSLIB_IDS)
def test_tslib_semantics_as_documented(config):
    """The four TSLib differences (docs/model.md), checked through the original model: TSLib(x) equals the
    original model with a zero embedding bias and pe[:L] folded into enc_pos_embedding, run on x padded at the
    end by repeating its last step, keeping the last out_len of its padded forecast."""
    state = tslib_state_dict(config)
    tslib = tslib_reference(config, state).double()
    seg = config["seg_len"]
    pad_in, pad_out = math.ceil(config["in_len"] / seg) * seg, math.ceil(config["out_len"] / seg) * seg
    original = reference_torch.Crossformer(**dict(config, in_len=pad_in, out_len=pad_out)).double()
    state = {k: v.double() for k, v in state.items()}  # fold pe in float64: a float32 sum would round
    original_state = {k: v for k, v in state.items() if "position_embedding" not in k and "value_embedding" not in k}
    original_state["enc_value_embedding.linear.weight"] = state["enc_value_embedding.value_embedding.weight"]
    original_state["enc_value_embedding.linear.bias"] = torch.zeros(config["d_model"], dtype=torch.float64)
    original_state["enc_pos_embedding"] = state["enc_pos_embedding"] + state[
        "enc_value_embedding.position_embedding.pe"][:, None, :pad_in // seg]
    original.load_state_dict(original_state, strict=True)
    x = np.random.default_rng(4).standard_normal((3, config["in_len"], config["data_dim"]))
    padded = np.concatenate([x, np.repeat(x[:, -1:], pad_in - config["in_len"], axis=1)], axis=1)
    expected = torch_out(original, padded)[:, -config["out_len"]:]
    np.testing.assert_allclose(torch_out(tslib, x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", slow_except("float32", ["float32", "float64"]))
@pytest.mark.parametrize("config", slow_except(TSLIB, [TSLIB, TSLIB_DIVISIBLE]), ids=TSLIB_IDS)
def test_tslib_state_dict_converts_from_tslib_flags(tmp_path, capfd, config, dtype):
    state = tslib_state_dict(config)
    torch.save(state, tmp_path / "checkpoint.pth")
    code, out, err = run_cli(capfd, "convert", tmp_path / "checkpoint.pth", "-o", tmp_path / "m.keras", "--seq-len",
                             config["in_len"], "--pred-len", config["out_len"], "--n-heads", config["n_heads"],
                             "--dtype", dtype)
    assert code == 0 and "PASS" in out, err
    assert "Time-Series-Library state_dict" in out
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert model.get_config()["variant"] == "tslib"
    x = np.random.default_rng(5).standard_normal((3, config["in_len"], config["data_dim"]))
    diff = max_abs_diff(keras_forward(model, x.astype(dtype)), torch_out(tslib_reference(config, state), x, dtype))
    record_parity(f"tslib convert il{config['in_len']} ol{config['out_len']}", dtype, 3, diff)
    assert tolerance_for(dtype).passes(diff)


@pytest.mark.slow
def test_tslib_folder_name_gives_the_configuration(tmp_path, capfd):
    folder = tmp_path / TSLIB_FOLDER_NAME
    folder.mkdir()
    torch.save(tslib_state_dict(TSLIB), folder / "checkpoint.pth")  # TSLib writes checkpoints/{setting}/checkpoint.pth
    code, out, err = run_cli(capfd, "convert", folder, "-o", tmp_path / "m.keras")
    assert code == 0, err
    config = keras.saving.load_model(tmp_path / "m.keras").get_config()
    assert (config["in_len"], config["out_len"], config["n_heads"], config["factor"]) == (100, 30, 2, 3)


def test_tslib_missing_configuration_is_named(tmp_path, capfd):
    torch.save(tslib_state_dict(TSLIB), tmp_path / "checkpoint.pth")
    code, _, err = run_cli(capfd, "convert", tmp_path / "checkpoint.pth", "-o", tmp_path / "m.keras", "--n-heads", 2)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--seq-len (the tensors allow 97..108)" in err and "--pred-len (the tensors allow 25..36)" in err
    code, _, err = run_cli(capfd, "convert", tmp_path / "checkpoint.pth", "-o", tmp_path / "m.keras", "--seq-len",
                           "100", "--pred-len", "30", "--n-heads", "2", "--d-model", "32")
    assert code == 2 and "--d-model says d_model=32 but the tensors say 16" in err


@pytest.mark.slow
def test_tslib_export_is_a_state_dict_tslib_loads_strictly(tmp_path, capfd):
    state = tslib_state_dict(TSLIB)
    torch.save(state, tmp_path / "checkpoint.pth")
    flags = ["--seq-len", "100", "--pred-len", "30", "--n-heads", "2"]
    assert run_cli(capfd, "convert", tmp_path / "checkpoint.pth", "-o", tmp_path / "m.keras", *flags)[0] == 0
    code, out, err = run_cli(capfd, "export-torch", tmp_path / "m.keras", "-o", tmp_path / "back.pth")
    assert code == 0 and "Time-Series-Library" in out, err
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert sorted(back) == sorted(state)
    assert all(torch.equal(back[k], state[k]) for k in state)  # pe included: all 5000 rows, bit for bit
    code, _, err = run_cli(capfd, "export-torch", tmp_path / "m.keras", "-o", tmp_path / "folder", "--folder")
    assert code == 2 and "bare state_dict" in err


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", [TSLIB, TSLIB_DIVISIBLE], ids=TSLIB_IDS)
def test_tslib_layerwise_parity(config, dtype):
    torch_model = tslib_reference(config, tslib_state_dict(config))
    x = np.random.default_rng(6).standard_normal((4, config["in_len"], config["data_dim"]))
    report = layerwise_parity(torch_model, torch_to_keras(torch_model, dtype=dtype), x, dtype, batch=2)
    assert report.passed, report.verdict()
    record_parity(f"tslib layerwise il{config['in_len']} (worst module)", dtype, 2, report.worst("chained").max_abs)


def test_tslib_trainable_counts_agree_and_invalid_configs_are_rejected():
    torch_model = reference_torch.Crossformer(**TSLIB, variant="tslib")
    model = torch_to_keras(torch_model)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(p.numel() for p in torch_model.parameters())
    # Keras also stores the pe rows it uses (a buffer in PyTorch, not a parameter).
    assert model.count_params() == trainable + math.ceil(TSLIB["in_len"] / 12) * TSLIB["d_model"]
    import keras_model

    for bad, match in ((dict(TSLIB, d_model=15, n_heads=3), "even d_model"), (dict(TSLIB, baseline=True), "baseline")):
        with pytest.raises(reference_torch.InvalidConfigError, match=match):
            reference_torch.Crossformer(**bad, variant="tslib")
        with pytest.raises(keras_model.InvalidConfigError, match=match):
            keras_model.Crossformer(**bad, variant="tslib")
