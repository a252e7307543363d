"""Speed of the Keras Crossformer against reference_torch, measured in one run (not a test).

    .venv/bin/python bench/benchmark.py [--batch 32] [--repeats 10] [--json bench.json]

For the ETTh1 configuration (11.3M parameters, in_len 168, batch 32) it times inference (a forward pass
in inference mode) and a training step (forward, MSE, backward, Adam step) for reference_torch and for the
Keras model eager, compiled (graph) and XLA-compiled, each variant in its own process so that its peak
memory (max RSS, which includes the framework itself) is its own. Ratios are PyTorch time / Keras time:
above 1.0 Keras is faster. Warm-up calls (tracing, XLA compilation) are excluded from the timings and
reported separately.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("torch", "keras-eager", "keras-compiled", "keras-xla")


def timed(function, repeats, warmup=2):
    started = time.perf_counter()
    for _ in range(warmup):
        function()
    warm = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "warmup_s": warm}


def measure(variant, batch, repeats):
    """Run in a child process: time inference and one training step of one variant."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from reference_torch.testing import ETTH1_CONFIGURATION, perturbed_model

    config = dict(ETTH1_CONFIGURATION, dropout=0.0)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, config["in_len"], config["data_dim"])).astype("float32")
    y = rng.standard_normal((batch, config["out_len"], config["data_dim"])).astype("float32")
    torch_model = perturbed_model(config)
    result = {"variant": variant}
    if variant == "torch":
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-4)

        def infer():
            with torch.no_grad():
                torch_model.eval()(xt)

        def step():
            torch_model.train()
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(torch_model(xt), yt).backward()
            optimizer.step()

        result["threads"] = torch.get_num_threads()
    else:
        import keras

        from converter import torch_to_keras
        from keras_model.optimizers import TorchAdam

        model = torch_to_keras(torch_model)
        mode = variant.split("-")[1]
        model.compile(optimizer=TorchAdam(learning_rate=1e-4), loss="mse", run_eagerly=(mode == "eager"),
                      jit_compile=(mode == "xla"))
        if mode == "eager":
            def infer():
                model(x, training=False)
        else:
            def infer():
                model.predict_on_batch(x)

        def step():
            model.train_on_batch(x, y)

        result["backend"] = keras.backend.backend()
    result["inference"] = timed(infer, repeats)
    result["train_step"] = timed(step, max(3, repeats // 2))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_variant(variant, batch, repeats):
    completed = subprocess.run([sys.executable, __file__, "--child", variant, "--batch", str(batch), "--repeats",
                                str(repeats)], capture_output=True, text=True, cwd=REPO)
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(results, batch):
    torch_result = results.get("torch")  # ratios need it; a --variants subset without torch prints none
    lines = [f"ETTh1 configuration (11,301,656 parameters), batch {batch}, {os.cpu_count()} CPU cores, "
             f"{platform.processor() or platform.machine()}",
             f"{'variant':<16}{'inference s/batch':>18}{'series/s':>10}{'ratio':>8}{'train s/step':>14}{'ratio':>8}"
             f"{'warm-up s':>11}{'peak RSS MB':>13}"]
    for variant in (v for v in VARIANTS if v in results):
        r = results[variant]
        infer, step = r["inference"]["median_s"], r["train_step"]["median_s"]
        infer_ratio = f"{torch_result['inference']['median_s'] / infer:>8.2f}" if torch_result else f"{'-':>8}"
        step_ratio = f"{torch_result['train_step']['median_s'] / step:>8.2f}" if torch_result else f"{'-':>8}"
        lines.append(f"{variant:<16}{infer:>18.3f}{batch / infer:>10.1f}{infer_ratio}{step:>14.3f}{step_ratio}"
                     f"{r['inference']['warmup_s'] + r['train_step']['warmup_s']:>11.1f}{r['peak_rss_mb']:>13.0f}")
    lines.append("ratio = PyTorch time / Keras time (above 1.0: Keras faster); medians of the timed repeats")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.repeats)))
        return
    results = {}
    unknown = sorted(set(args.variants.split(",")) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    for variant in args.variants.split(","):
        results[variant] = run_variant(variant, args.batch, args.repeats)
        print(f"measured {variant}", file=sys.stderr, flush=True)
    print(table(results, args.batch))
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": args.batch, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
