"""TorchAdam's update alone, by flat-chunk size: trace cost against per-step cost (not a test).

    .venv/bin/python bench/optimizer_chunks.py [--config etth1] [--repeats 5]

keras_model.optimizers.FLAT_CHUNK_BYTES bounds each flat moment variable. 0 puts every variable in a chunk of
its own (the per-variable layout: the most traced ops); no bound puts all parameters of a dtype in one (the
fewest ops, but each elementwise op streams the whole parameter vector through memory). For each size this
builds a TorchAdam on the benchmark model's variables, wraps one update (fixed gradients) in a tf.function,
and reports its first call (trace + graph optimisation + run) and the median of ``--repeats`` rounds of 5
calls, the sizes interleaved round by round so that a change in the machine's speed hits all of them alike.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

from benchmark import CONFIGURATIONS  # noqa: E402

SIZES = {"per variable": 0, "1 MiB": 1 << 20, "4 MiB": 4 << 20, "16 MiB": 16 << 20, "unbounded": 1 << 62}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGURATIONS), default="etth1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import numpy as np
    import tensorflow as tf

    import keras_model
    from keras_model import optimizers

    config = CONFIGURATIONS[args.config]
    model = keras_model.Crossformer(**config)
    model(np.zeros((1, config["in_len"], config["data_dim"]), "float32"))
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    gradients = [tf.constant(rng.standard_normal(v.shape).astype("float32")) for v in variables]
    updates, first, rounds = {}, {}, {name: [] for name in SIZES}
    for name, size in SIZES.items():
        optimizers.FLAT_CHUNK_BYTES = size
        optimizer = keras_model.TorchAdam(1e-4)
        optimizer.build(variables)
        updates[name] = tf.function(lambda g, optimizer=optimizer: optimizer.apply(g, variables))
        started = time.perf_counter()
        updates[name](gradients)
        first[name] = (time.perf_counter() - started, len(optimizer._groups))
    for _ in range(args.repeats):
        for name in SIZES:
            started = time.perf_counter()
            for _ in range(5):
                updates[name](gradients)
            rounds[name].append((time.perf_counter() - started) / 5)
    parameters = sum(int(np.prod(v.shape)) for v in variables)
    print(f"TorchAdam update, {args.config} configuration ({len(variables)} variables, {parameters} float32 "
          f"parameters), TensorFlow graph:")
    print(f"  {'chunk bound':<14}{'chunks':>7}{'first call':>12}{'update (median)':>17}")
    for name in SIZES:
        seconds, chunks = first[name]
        print(f"  {name:<14}{chunks:>7}{seconds:>10.2f} s{1000 * sorted(rounds[name])[len(rounds[name]) // 2]:>14.1f} ms")


if __name__ == "__main__":
    main()
