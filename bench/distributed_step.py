"""Training-step time on one device against data-parallel over N devices (issue 14), measured in one run (not a
test).

    KERAS_BACKEND=jax .venv/bin/python bench/distributed_step.py [--devices 2] [--batch 32] [--steps 10]

The ETTh1 configuration (data_dim 7, in_len 168, out_len 24, seg_len 6, win_size 2, factor 10, d_model 256,
d_ff 512, n_heads 4, e_layers 3), float32, one XLA-compiled training step (forward, MSE, backward, Adam) as
`crossformer train` runs it (--jit-compile on; --distribute data), on the same global batch, from the same
weights. On a CPU-only machine the devices are virtual (XLA_FLAGS=--xla_force_host_platform_device_count=N,
set here before JAX starts): they share the same cores, so the data-parallel step does the same arithmetic on
the same cores plus the gradient all-reduce, and cannot be faster; the numbers show that cost, not a speed-up.
On N real accelerators each would compute 1/N of the batch. The inputs are seeded random windows of ETTh1's
shape: the step's time does not depend on the values. Compilation (the first step) is reported, not counted.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ETTH1 = dict(data_dim=7, in_len=168, out_len=24, seg_len=6, win_size=2, factor=10, d_model=256, d_ff=512, n_heads=4,
             e_layers=3, dropout=0.2)


def time_steps(distributed, x, y, weights, steps):
    """(compile seconds, [seconds per step]) of train_on_batch on a model started from ``weights``."""
    import keras

    import keras_model
    from keras_model.losses import MeanSquaredError
    from keras_model.optimizers import TorchAdam

    keras.distribution.set_distribution(keras.distribution.DataParallel() if distributed else None)
    keras.utils.set_random_seed(0)
    model = keras_model.Crossformer(**ETTH1)
    model.set_weights(weights)
    model.compile(optimizer=TorchAdam(learning_rate=1e-4), loss=MeanSquaredError(), jit_compile=True)
    started = time.perf_counter()
    model.train_on_batch(x, y)  # the compilation
    compile_seconds = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)  # returns host floats: the step has finished
        times.append(time.perf_counter() - started)
    keras.distribution.set_distribution(None)
    return compile_seconds, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
        sys.exit("bench/distributed_step.py: error: data-parallel training needs KERAS_BACKEND=jax")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={args.devices}").strip()
    sys.path.insert(0, str(REPO))
    import jax
    import keras
    import numpy as np

    import keras_model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, ETTH1["in_len"], ETTH1["data_dim"])).astype("float32")
    y = rng.standard_normal((args.batch, ETTH1["out_len"], ETTH1["data_dim"])).astype("float32")
    keras.utils.set_random_seed(0)
    weights = keras_model.Crossformer(**ETTH1).get_weights()
    results = {"devices": [str(d) for d in jax.devices()], "cores": os.cpu_count(), "batch": args.batch,
               "load_average": os.getloadavg()}
    for name, distributed in (("1 device", False), (f"{args.devices} devices, data-parallel", True)):
        compile_seconds, times = time_steps(distributed, x, y, weights, args.steps)
        results[name] = {"compile_s": round(compile_seconds, 1), "median_step_s": round(statistics.median(times), 4),
                         "min_step_s": round(min(times), 4), "steps": len(times)}
        print(f"{name:<28} step median {statistics.median(times) * 1000:7.1f} ms (min {min(times) * 1000:.1f} ms, "
              f"{len(times)} steps; compilation {compile_seconds:.0f} s)", flush=True)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
