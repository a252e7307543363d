"""Top ops of one Keras training step, from the backend's own profiler (not a test).

    KERAS_BACKEND=tensorflow .venv/bin/python bench/profile_step.py [--mode graph|xla] [--config small] [--top 25]
    KERAS_BACKEND=jax .venv/bin/python bench/profile_step.py --mode jit

Builds the benchmark's model (bench/benchmark.py CONFIGURATIONS, batch 32, dropout 0), compiles it in the mode,
runs two training steps (trace, compile, warm-up), then profiles the next ``--steps`` steps with
tf.profiler / jax.profiler and sums the profile's events by op type: self time (an event's duration less that
of the events nested in it on the same thread), so a function that only calls ops does not count twice.
"""
import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmark import CONFIGURATIONS  # noqa: E402


def op_type(name):
    """'encoder/.../MatMul:MatMul' -> 'MatMul'; an XLA 'fusion.12' or 'dot.3' -> 'fusion', 'dot'."""
    name = name.rsplit(":", 1)[-1] if ":" in name else name.rsplit("/", 1)[-1]
    return re.sub(r"[._]\d+$", "", name)


def self_times(xplane_file, by_name=False):
    """{op type (or full op name): [self seconds, count]} over every line of every plane of an XSpace file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(xplane_file).read_bytes())
    totals = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            events = sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps))
            stack = []  # (end_ps, key) of the open events; a nested event's time is its parent's no longer
            for event in events:
                start, end = event.offset_ps, event.offset_ps + event.duration_ps
                while stack and stack[-1][0] <= start:
                    stack.pop()
                name = names.get(event.metadata_id, "?")
                key = name if by_name else op_type(name)
                if stack:
                    totals[stack[-1][1]][0] -= event.duration_ps / 1e12
                totals[key][0] += event.duration_ps / 1e12
                totals[key][1] += 1
                stack.append((end, key))
    return totals


def main():
    # Long on purpose: the flags and the measurement's sequence read top to bottom, as one script.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("graph", "xla", "jit"), default="graph")
    parser.add_argument("--config", choices=sorted(CONFIGURATIONS), default="etth1")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--by-name", action="store_true", help="sum by op name (where in the model) not op type")
    args = parser.parse_args()
    import keras
    import numpy as np

    import keras_model

    config = CONFIGURATIONS[args.config]
    keras.utils.set_random_seed(0)
    model = keras_model.Crossformer(**config)
    model.compile(optimizer=keras_model.TorchAdam(1e-4), loss="mse", jit_compile=args.mode != "graph")
    model.optimizer.build(model.trainable_variables)  # as crossformer train does: the step is traced once
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, config["in_len"], config["data_dim"])).astype("float32")
    y = rng.standard_normal((32, config["out_len"], config["data_dim"])).astype("float32")
    started = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - started
    model.train_on_batch(x, y)
    backend = keras.backend.backend()
    with tempfile.TemporaryDirectory() as logdir:
        if backend == "jax":
            import jax

            jax.profiler.start_trace(logdir)
        else:
            import tensorflow as tf

            tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(args.steps):
            model.train_on_batch(x, y)
        profiled = (time.perf_counter() - started) / args.steps
        if backend == "jax":
            jax.profiler.stop_trace()
        else:
            tf.profiler.experimental.stop()
        totals = collections.defaultdict(lambda: [0.0, 0])
        for xplane_file in glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True):
            for key, (seconds, count) in self_times(xplane_file, args.by_name).items():
                totals[key][0] += seconds
                totals[key][1] += count
    # The executor's own Run event only waits for the ops it launched (its self time is the calling thread
    # idling); counted, it would be a third of the "op time".
    waiting = sum(totals.pop(key)[0] for key in [k for k in totals if k.rsplit("::", 1)[-1] == "Run"])
    everything = sum(seconds for seconds, _ in totals.values())
    print(f"{backend} {args.mode}, {args.config} configuration, batch 32: first step {first:.1f} s, profiled step "
          f"{profiled:.3f} s (profiler on); self time per op type summed over threads, per step: "
          f"{everything / args.steps:.3f} s of op time (the executor's Run, waiting, left out: "
          f"{waiting / args.steps:.3f} s)")
    for key, (seconds, count) in sorted(totals.items(), key=lambda item: -item[1][0])[:args.top]:
        print(f"  {key[-70:]:<72}{seconds / args.steps:>9.3f} s{100 * seconds / everything:>6.1f}%"
              f"{count // args.steps:>7}x")


if __name__ == "__main__":
    main()
