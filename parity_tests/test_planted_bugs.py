"""The harness must be able to fail: typical porting bugs planted into a copy of the Keras model are caught
in both modes, and the first diverging module is named.

Config B (in_len 50 over seg_len 4 pads the input; win_size 3 pads the 13-segment merge) with batch 4
(router order only matters for batch > 1), so every bug has something to act on. In float32, where catching
is hard (bugs must stand out of rounding noise; in float64 they stand 1e8 above the 1e-12 bound).
"""
import types

import keras
import numpy as np
import pytest
from keras import ops

import keras_model
from converter import torch_to_keras
from converter.parity import capture_keras, compare_outputs, layerwise_parity, match_layers

from conftest import CONFIG_B, seeded_series, seeded_torch_model, slow_except

BLOCK0 = "encoder.encode_blocks.0.encode_layers.0"
MERGE1 = "encoder.encode_blocks.1.merge_layer"
DECODE0 = "decoder.decode_layers.0"


def layers_of(model, kind):
    return [layer for layer in model._flatten_layers() if isinstance(layer, kind)]


def override(layer, method, function):
    object.__setattr__(layer, method, types.MethodType(function, layer))


def layer_norm_epsilon_1e3(model):  # Keras's default epsilon, as the failed public port kept it
    for layer in layers_of(model, keras.layers.LayerNormalization):
        layer.epsilon = 1e-3


def tanh_approximate_gelu(model):
    for layer in layers_of(model, keras_model.GELU):
        layer.approximate = True


def routers_tiled_segment_major(model):  # tf.repeat(router, batch, axis=0), as the failed port did
    for layer in layers_of(model, keras_model.TwoStageAttentionLayer):
        override(layer, "tile_router", lambda self, batch: ops.repeat(self.router, batch, axis=0))


def input_padded_at_the_end(model):
    override(model, "pad_input", lambda self, x: ops.concatenate(
        [x, ops.repeat(x[:, -1:, :], self.in_len_add, axis=1)], axis=1))


def heads_split_interleaved(model):  # head h = features h, h+H, h+2H, ... instead of a contiguous slice
    for layer in layers_of(model, keras_model.AttentionLayer):
        override(layer, "split_heads", lambda self, x: ops.transpose(
            ops.reshape(x, (-1, x.shape[1], self.head_dim, self.n_heads)), (0, 1, 3, 2)))


def square_kernel_left_untransposed(model):  # torch weight copied as the Dense kernel without .T
    kernel = model.encoder.encode_blocks[0].encode_layers[0].time_attention.query_projection.kernel
    kernel.assign(ops.transpose(kernel))


def merge_padded_with_zeros(model):
    def pad_with_zeros(self, x):
        missing = -x.shape[2] % self.win_size
        return ops.concatenate([x, ops.zeros_like(x[:, :, :missing, :])], axis=2) if missing else x

    for layer in layers_of(model, keras_model.SegMerging):
        override(layer, "pad_segments", pad_with_zeros)


def predict_flattened_segment_major(layer):
    """One DecoderLayer's second output (layer_predict) flattened '(seg_num out_d)' instead of '(out_d seg_num)';
    its first output (the decoder state) stays right. Planted as an instance-level `call`, as a user might
    patch a layer."""
    def call(self, x, cross, training=None):
        dec_output, layer_predict = type(self).call(self, x, cross, training=training)
        ts_d, seg_num = x.shape[1], x.shape[2]
        layer_predict = ops.transpose(ops.reshape(layer_predict, (-1, ts_d, seg_num, self.seg_len)), (0, 2, 1, 3))
        return dec_output, ops.reshape(layer_predict, (-1, ts_d * seg_num, self.seg_len))

    override(layer, "call", call)


def decoder_predictions_flattened_segment_major(model):
    for layer in model.decoder.decode_layers:
        predict_flattened_segment_major(layer)


def cross_attention_heads_merged_the_old_way(model):  # the pre-December-2023 head merge left in one place
    for layer in model.decoder.decode_layers:
        assert layer.cross_attention.legacy_mix is False  # the switch exists (a misspelt one would plant nothing)
        layer.cross_attention.legacy_mix = True


def decoder_keeps_only_the_last_prediction(model):  # the layers' predictions replaced instead of summed
    def call(self, x, cross, training=None):
        for layer, cross_enc in zip(self.decode_layers, cross):
            x, layer_predict = layer(x, cross_enc, training=training)
        ts_d, out_seg_num = x.shape[1], x.shape[2]
        predict = ops.transpose(ops.reshape(layer_predict, (-1, ts_d, out_seg_num, self.seg_len)), (0, 2, 3, 1))
        return ops.reshape(predict, (-1, out_seg_num * self.seg_len, ts_d))

    override(model.decoder, "call", call)


# bug -> the module each mode must name first (chained: where outputs first diverge in the forward pass;
# isolated: the layer whose own computation is wrong given the PyTorch layer's inputs).
PLANTED = {
    layer_norm_epsilon_1e3: ("pre_norm", "pre_norm"),
    tanh_approximate_gelu: (f"{BLOCK0}.MLP1.1", f"{BLOCK0}.MLP1.1"),
    routers_tiled_segment_major: (f"{BLOCK0}.dim_sender.query_projection", BLOCK0),
    input_padded_at_the_end: ("enc_value_embedding.linear", "(model)"),
    heads_split_interleaved: (f"{BLOCK0}.time_attention.inner_attention.dropout", f"{BLOCK0}.time_attention"),
    square_kernel_left_untransposed: (f"{BLOCK0}.time_attention.query_projection",) * 2,
    merge_padded_with_zeros: (f"{MERGE1}.norm", MERGE1),
    # A bug in a layer's second output belongs to that layer, not to the decoder that sums the predictions.
    decoder_predictions_flattened_segment_major: (DECODE0, DECODE0),
    cross_attention_heads_merged_the_old_way: (f"{DECODE0}.cross_attention.out_projection",
                                               f"{DECODE0}.cross_attention"),
    decoder_keeps_only_the_last_prediction: ("decoder", "decoder"),
}
CAUGHT = []  # (bug, dtype, mode, module, rel) for the run's summary


@pytest.fixture(scope="module")
def reference():
    torch_model, x = seeded_torch_model(CONFIG_B), seeded_series(CONFIG_B, 4)
    clean = layerwise_parity(torch_model, torch_to_keras(torch_model), x, "float32", batch=4)
    assert clean.passed, "the unplanted model must pass, or the tests below prove nothing"
    return torch_model, x


@pytest.mark.parametrize("plant", slow_except(heads_split_interleaved, list(PLANTED)),
                         ids=[bug.__name__ for bug in PLANTED])
def test_planted_bug_is_caught_and_located(reference, plant):
    torch_model, x = reference
    dtype = "float32"
    keras_copy = torch_to_keras(torch_model, dtype=dtype)
    plant(keras_copy)
    report = layerwise_parity(torch_model, keras_copy, x, dtype, batch=4)
    assert not report.passed
    for mode, expected in zip(("chained", "isolated"), PLANTED[plant]):
        named = report.first_failure(mode)
        assert named == expected, f"{plant.__name__} {mode}: named {named}, expected {expected}"
        entry = next(m for m in report.modes[mode] if m.name == named)
        # Caught with a wide margin: the float32 tolerance is rel 1e-5.
        assert entry.max_rel >= 1e-4, (plant.__name__, mode, entry.max_rel)
        CAUGHT.append((plant.__name__, dtype, mode, named, entry.max_rel))


def test_compare_outputs_sees_every_array_of_a_multi_output_module():
    """A difference, or a shape mismatch, in any array but the first of a (nested) output counts."""
    rng = np.random.default_rng(0)
    state, predict = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 6))
    assert compare_outputs((state, predict), (state, predict)).max_abs == 0.0
    comparison = compare_outputs((state, predict + 0.5), (state, predict))
    assert comparison.max_abs == pytest.approx(0.5) and comparison.cosine < 1 and not comparison.problem
    assert comparison.scale == max(np.abs(state).max(), np.abs(predict).max())
    nested = [state, [state, predict]]  # the encoder's list of scales
    assert compare_outputs([state, [state, predict * 2]], nested).max_abs == pytest.approx(np.abs(predict).max())
    assert "shape [2, 5]" in compare_outputs((state, predict[:, :5]), (state, predict)).problem
    assert "1 outputs, PyTorch has 2" in compare_outputs((state,), (state, predict)).problem


@pytest.mark.slow
def test_a_bug_in_one_layers_second_output_is_attributed_to_that_layer(reference):
    """Only decoder layer 1's layer_predict is wrong: both modes must name decoder.decode_layers.1 (its first
    output, layer 2's input, is right, so nothing before or after it in the decoder state fails)."""
    torch_model, x = reference
    keras_copy = torch_to_keras(torch_model)
    predict_flattened_segment_major(keras_copy.decoder.decode_layers[1])
    report = layerwise_parity(torch_model, keras_copy, x, "float32", batch=4)
    for mode in ("chained", "isolated"):
        assert report.first_failure(mode) == "decoder.decode_layers.1", (mode, report.verdict())
        failing = {m.name for m in report.modes[mode] if not m.passed}
        assert failing == {"decoder.decode_layers.1", "decoder", "(model)"}, (mode, failing)
        entry = next(m for m in report.modes[mode] if m.name == "decoder.decode_layers.1")
        assert len(entry.shape) == 2 and entry.max_rel >= 1e-4, (entry.shape, entry.max_rel)


def test_capture_restores_instance_level_call_overrides(reference):
    """The recording wrapper is removed after capture, and a `call` the instance had before is put back."""
    torch_model, x = reference
    keras_copy = torch_to_keras(torch_model)
    patched = keras_copy.decoder.decode_layers[1]
    predict_flattened_segment_major(patched)
    planted = vars(patched)["call"]
    layers, _ = match_layers(torch_model, keras_copy)
    records = capture_keras(keras_copy, x.astype("float32"), layers)
    assert len(records["decoder.decode_layers.1"]) == 1
    assert vars(patched)["call"] is planted
    assert [name for name, layer in layers.items() if layer is not patched and "call" in vars(layer)] == []
