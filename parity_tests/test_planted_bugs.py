"""The harness must be able to fail: typical porting bugs planted into a copy of the Keras model are caught
in both modes, and the first diverging module is named.

Config B (in_len 50 over seg_len 4 pads the input; win_size 3 pads the 13-segment merge) with batch 4
(router order only matters for batch > 1), so every bug has something to act on. In float32, where catching
is hard (bugs must stand out of rounding noise; in float64 they stand 1e8 above the 1e-12 bound).
"""
import types

import keras
import pytest
from keras import ops

import keras_model
from converter import torch_to_keras
from converter.parity import layerwise_parity

from conftest import CONFIG_B, seeded_series, seeded_torch_model

BLOCK0 = "encoder.encode_blocks.0.encode_layers.0"
MERGE1 = "encoder.encode_blocks.1.merge_layer"


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
}
CAUGHT = []  # (bug, dtype, mode, module, rel) for the run's summary


@pytest.fixture(scope="module")
def reference():
    torch_model, x = seeded_torch_model(CONFIG_B), seeded_series(CONFIG_B, 4)
    clean = layerwise_parity(torch_model, torch_to_keras(torch_model), x, "float32", batch=4)
    assert clean.passed, "the unplanted model must pass, or the tests below prove nothing"
    return torch_model, x


@pytest.mark.parametrize("plant", list(PLANTED), ids=[bug.__name__ for bug in PLANTED])
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
