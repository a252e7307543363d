"""A/B of keras_model.numerics.Dense (rank > 2 inputs multiplied as a 2-D matrix) against Keras's Dense.call
(tf.tensordot on TensorFlow), in one process, interleaved step by step so that a shared machine's load falls on
both arms alike (not a test).

    KERAS_BACKEND=tensorflow .venv/bin/python bench/dense_ab.py [--config small] [--mode graph|xla] [--steps 6]
"""
import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmark import CONFIGURATIONS  # noqa: E402


def main():
    # Long on purpose: the flags and the measurement's sequence read top to bottom, as one script.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGURATIONS), default="etth1")
    parser.add_argument("--mode", choices=("graph", "xla"), default="graph")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_model

    config = CONFIGURATIONS[args.config]
    models = {}
    for arm in ("tensordot", "2-D"):
        keras.utils.set_random_seed(0)
        model = keras_model.Crossformer(**config)
        if arm == "tensordot":  # this model's Dense layers call Keras's own Dense.call
            for layer in model._flatten_layers():
                if isinstance(layer, keras_model.numerics.Dense):
                    layer.call = types.MethodType(keras.layers.Dense.call, layer)
        model.compile(optimizer=keras_model.TorchAdam(1e-4), loss="mse", jit_compile=args.mode == "xla")
        models[arm] = model
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, config["in_len"], config["data_dim"])).astype("float32")
    y = rng.standard_normal((32, config["out_len"], config["data_dim"])).astype("float32")
    result = {arm: {"train_s": [], "infer_s": []} for arm in models}
    for arm, model in models.items():
        predict = tf.function(lambda t, model=model: model(t, training=False))
        graph = predict.get_concrete_function(tf.TensorSpec([None, config["in_len"], config["data_dim"]])).graph
        result[arm]["inference_graph_ops"] = len(graph.get_operations())
        started = time.perf_counter()
        model.train_on_batch(x, y)
        result[arm]["first_step_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model.predict_on_batch(x)
        result[arm]["first_infer_s"] = time.perf_counter() - started
    for _ in range(args.steps):
        for arm, model in models.items():
            started = time.perf_counter()
            model.train_on_batch(x, y)
            result[arm]["train_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            model.predict_on_batch(x)
            result[arm]["infer_s"].append(time.perf_counter() - started)
    for arm in models:
        for key in ("train_s", "infer_s"):
            result[arm][key] = sorted(result[arm][key])[len(result[arm][key]) // 2]
    result["ratio_train"] = result["tensordot"]["train_s"] / result["2-D"]["train_s"]
    result["ratio_infer"] = result["tensordot"]["infer_s"] / result["2-D"]["infer_s"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
