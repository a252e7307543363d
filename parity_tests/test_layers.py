"""Every Keras layer class on its own: its config round-trips (get_config -> from_config -> same layer, same
output with the same weights; serialize -> deserialize), and its constructor says what its PyTorch twin says.

The whole-model round trip is in test_serialization.py; this is keras-hub's run_layer_test idea per layer,
so a layer whose get_config forgets an argument fails here even when the model rebuilds it itself.
"""
import inspect

import keras
import numpy as np
import pytest

import keras_model
import reference_torch

RNG = np.random.default_rng(0)


def series(*shape):
    return RNG.standard_normal(shape).astype("float32")


D_MODEL, HEADS, D_FF = 8, 2, 16
LAYER_CASES = {  # class -> (constructor arguments, call inputs)
    keras_model.GELU: (dict(approximate=False), [series(2, 5)]),
    keras_model.LayerNormalization: (dict(epsilon=1e-5), [series(2, 3, D_MODEL)]),
    keras_model.FullAttention: (dict(attention_dropout=0.1), [series(2, 4, HEADS, 3), series(2, 5, HEADS, 3),
                                                              series(2, 5, HEADS, 3)]),
    keras_model.AttentionLayer: (dict(d_model=D_MODEL, n_heads=3, dropout=0.1, legacy_mix=True),
                                 [series(2, 4, D_MODEL), series(2, 5, D_MODEL), series(2, 5, D_MODEL)]),
    keras_model.TwoStageAttentionLayer: (dict(seg_num=4, factor=2, d_model=D_MODEL, n_heads=HEADS, d_ff=D_FF,
                                              dropout=0.1), [series(2, 3, 4, D_MODEL)]),
    keras_model.PositionalEmbedding: (dict(seg_num=4, d_model=D_MODEL), [series(6, 4, 5)]),
    keras_model.DSWEmbedding: (dict(seg_len=3, d_model=D_MODEL, variant="tslib", seg_num=4), [series(2, 12, 3)]),
    keras_model.SegMerging: (dict(d_model=D_MODEL, win_size=3), [series(2, 3, 5, D_MODEL)]),
    keras_model.ScaleBlock: (dict(win_size=2, d_model=D_MODEL, n_heads=HEADS, d_ff=D_FF, depth=1, dropout=0.1,
                                  seg_num=3, factor=2), [series(2, 3, 5, D_MODEL)]),
    keras_model.Encoder: (dict(block_seg_nums=[5, 3], win_size=2, d_model=D_MODEL, n_heads=HEADS, d_ff=D_FF,
                               block_depth=1, dropout=0.1, factor=2), [series(2, 3, 5, D_MODEL)]),
    keras_model.DecoderLayer: (dict(seg_len=3, d_model=D_MODEL, n_heads=HEADS, d_ff=D_FF, dropout=0.1, out_seg_num=2,
                                    factor=2), [series(2, 3, 2, D_MODEL), series(2, 3, 5, D_MODEL)]),
    keras_model.Decoder: (dict(seg_len=3, d_layers=2, d_model=D_MODEL, n_heads=HEADS, d_ff=D_FF, dropout=0.1,
                               out_seg_num=2, factor=2),
                          [series(2, 3, 2, D_MODEL), [series(2, 3, 5, D_MODEL), series(2, 3, 3, D_MODEL)]]),
}


def outputs(layer, inputs):
    result = layer(*inputs)
    return [keras.ops.convert_to_numpy(r) for r in (result if isinstance(result, (list, tuple)) else [result])]


@pytest.mark.parametrize("cls", list(LAYER_CASES), ids=[cls.__name__ for cls in LAYER_CASES])
def test_layer_config_round_trip(cls):
    arguments, inputs = LAYER_CASES[cls]
    layer = cls(**arguments, name="layer_under_test")
    expected = outputs(layer, inputs)
    config = layer.get_config()
    for name, value in arguments.items():  # every constructor argument is in the config, as given
        assert config[name] == value, name
    clone = cls.from_config(config)
    outputs(clone, inputs)  # builds it
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config
    for got, want in zip(outputs(clone, inputs), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is cls and revived.get_config() == config


# Keras layer -> (PyTorch twin, arguments only the twin has, arguments only the Keras layer has), each difference
# on purpose: the reference keeps the original's signatures; the port leaves out what the original never varies
# (FullAttention's scale, separate key/value widths, a norm class, the decoder's unused router flag) and folds
# Time-Series-Library's embedding into DSWEmbedding.
TWINS = {
    keras_model.FullAttention: (reference_torch.FullAttention, {"scale"}, set()),
    keras_model.AttentionLayer: (reference_torch.AttentionLayer, {"d_keys", "d_values"}, set()),
    keras_model.TwoStageAttentionLayer: (reference_torch.TwoStageAttentionLayer, set(), set()),
    keras_model.DSWEmbedding: (reference_torch.DSW_embedding, set(), {"variant", "seg_num"}),
    keras_model.SegMerging: (reference_torch.SegMerging, {"norm_layer"}, set()),
    keras_model.ScaleBlock: (reference_torch.scale_block, set(), set()),
    keras_model.Encoder: (reference_torch.Encoder, set(), set()),
    keras_model.DecoderLayer: (reference_torch.DecoderLayer, set(), set()),
    keras_model.Decoder: (reference_torch.Decoder, {"router"}, set()),
    keras_model.Crossformer: (reference_torch.Crossformer, set(), {"scale_statistic", "training_args"}),
}


def parameters(cls):
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("cls", list(TWINS), ids=[cls.__name__ for cls in TWINS])
def test_constructor_matches_its_pytorch_twin(cls):
    twin, twin_only, keras_only = TWINS[cls]
    keras_parameters, torch_parameters = parameters(cls), parameters(twin)
    assert set(torch_parameters) - set(keras_parameters) == twin_only
    assert set(keras_parameters) - set(torch_parameters) == keras_only
    for name in set(keras_parameters) & set(torch_parameters):  # shared arguments default alike
        assert keras_parameters[name].default == torch_parameters[name].default, name
    if cls is not keras_model.Crossformer:  # sub-layers are built with keywords only (the model keeps positions)
        assert all(p.kind == p.KEYWORD_ONLY for p in keras_parameters.values()), cls.__name__
