"""Speed of the Keras Crossformer against reference_torch, measured in one run (not a test).

    .venv/bin/python bench/benchmark.py [--batch 32] [--repeats 10] [--json bench.json]

For the ETTh1 configuration (11.3M parameters, in_len 168, batch 32) it times inference (a forward pass
in inference mode) and a training step (forward, MSE, backward, Adam step) for reference_torch (eager and
torch.compile) and for the Keras model eager, compiled (graph) and XLA-compiled, and inference of the
deployment artifacts `crossformer export` writes, each run by its own runtime: the SavedModel through
TensorFlow, ONNX through onnxruntime, LiteRT through ai_edge_litert (XNNPACK, all cores) and OpenVINO (CPU,
f32). Besides batch 32 it times batch 1 (latency). Each variant runs in its own process so that its peak
memory (max RSS, which includes the framework itself) is its own; the artifacts are exported beforehand in
another process (that time is reported, not counted). Ratios are PyTorch eager time / variant time: above
1.0 the variant is faster. Warm-up calls (tracing, compilation, loading) are excluded from the timings and
reported separately.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("torch", "torch-compile", "keras-eager", "keras-compiled", "keras-xla", "saved_model", "onnxruntime",
            "litert", "openvino")
# The runtime variants and the artifact each one runs.
ARTIFACTS = {"saved_model": ("saved_model", "saved_model"), "onnxruntime": ("onnx", "model.onnx"),
             "litert": ("litert", "model.tflite"), "openvino": ("openvino", "model.xml")}


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


def benchmark_configuration():
    """The paper's ETTh1 model (reference_torch.testing; importing it loads torch), dropout 0 so that a training
    step is the same computation in every framework."""
    from reference_torch.testing import ETTH1_CONFIGURATION

    return dict(ETTH1_CONFIGURATION, dropout=0.0)


def export_artifacts(folder):
    """Run in a child process: write the four artifacts of the benchmark's model into folder (verified)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    from converter import torch_to_keras
    from converter.export import ServingGraph, export_model
    from reference_torch.testing import perturbed_model

    model = torch_to_keras(perturbed_model(benchmark_configuration()))
    exports = {}
    with ServingGraph(model) as graph:  # traced once; the first export pays for the trace and the SavedModel
        for variant, (format_name, name) in ARTIFACTS.items():
            report = export_model(model, Path(folder) / name, format_name, graph=graph)
            if not report.written:
                raise RuntimeError(report.summary())
            exports[variant] = {"seconds": report.seconds, "size_mb": report.size_bytes / 1e6,
                                "max_abs_diff": dict(zip(map(str, report.check.batches), report.check.per_batch))}
    return exports


def measure(variant, batch, repeats, artifact_folder=None):
    """Run in a child process: time inference (batch and batch 1) and, where there is one, a training step."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    import numpy as np

    result = {"variant": variant}
    if variant in ARTIFACTS:
        # Only the runtime (and numpy) in this process: the artifact carries everything it needs, its
        # configuration included.
        from converter.export import load_artifact

        started = time.perf_counter()
        artifact = load_artifact(Path(artifact_folder) / ARTIFACTS[variant][1])
        result["load_s"] = time.perf_counter() - started
        result["runtime"] = artifact.runtime
        config = artifact.crossformer_config
    else:
        config = benchmark_configuration()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, config["in_len"], config["data_dim"])).astype("float32")
    y = rng.standard_normal((batch, config["out_len"], config["data_dim"])).astype("float32")
    x1 = x[:1].copy()
    if variant in ARTIFACTS:
        step = None  # an artifact only infers

        def infer(inputs):
            artifact.predict_on_batch(inputs)
    elif variant.startswith("torch"):
        import torch

        from reference_torch.testing import perturbed_model

        torch_model = perturbed_model(config)
        xt, x1t, yt = torch.from_numpy(x), torch.from_numpy(x1), torch.from_numpy(y)
        optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-4)
        # torch.compile: the default mode, one compiled module for inference and training (it recompiles on
        # a new batch size or mode; those compilations fall into the warm-up).
        forward = torch.compile(torch_model) if variant == "torch-compile" else torch_model
        inputs_of = {id(x): xt, id(x1): x1t}

        def infer(inputs):
            torch_model.eval()
            with torch.no_grad():
                forward(inputs_of[id(inputs)])

        def step():
            torch_model.train()
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(forward(xt), yt).backward()
            optimizer.step()

        result["threads"] = torch.get_num_threads()
    else:
        import keras

        from converter import torch_to_keras
        from keras_model.optimizers import TorchAdam
        from reference_torch.testing import perturbed_model

        model = torch_to_keras(perturbed_model(config))
        mode = variant.split("-")[1]
        model.compile(optimizer=TorchAdam(learning_rate=1e-4), loss="mse", run_eagerly=(mode == "eager"),
                      jit_compile=(mode == "xla"))
        if mode == "eager":
            def infer(inputs):
                model(inputs, training=False)
        else:
            def infer(inputs):
                model.predict_on_batch(inputs)

        def step():
            model.train_on_batch(x, y)

        result["backend"] = keras.backend.backend()
    result["inference"] = timed(lambda: infer(x), repeats)
    result["latency"] = timed(lambda: infer(x1), repeats * 2)
    if step is not None:
        result["train_step"] = timed(step, max(3, repeats // 2))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(*arguments):
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, cwd=REPO)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_variant(variant, batch, repeats, artifact_folder=None):
    extra = ["--artifacts", str(artifact_folder)] if artifact_folder else []
    return run_child("--child", variant, "--batch", str(batch), "--repeats", str(repeats), *extra)


def table(results, batch):
    torch_result = results.get("torch")  # ratios need it; a --variants subset without torch prints none
    lines = [f"ETTh1 configuration (11,301,656 parameters), batch {batch}, {os.cpu_count()} CPU cores, "
             f"{platform.processor() or platform.machine()}",
             f"{'variant':<16}{'inference s/batch':>18}{'series/s':>10}{'ratio':>8}{'batch-1 ms':>12}"
             f"{'train s/step':>14}{'ratio':>8}{'warm-up s':>11}{'peak RSS MB':>13}"]
    for variant in (v for v in VARIANTS if v in results):
        r = results[variant]
        infer, latency = r["inference"]["median_s"], r["latency"]["median_s"]
        infer_ratio = f"{torch_result['inference']['median_s'] / infer:>8.2f}" if torch_result else f"{'-':>8}"
        warmup = r["inference"]["warmup_s"] + r["latency"]["warmup_s"] + r.get("load_s", 0.0)
        if "train_step" in r:
            step = r["train_step"]["median_s"]
            step_text = f"{step:>14.3f}"
            step_ratio = f"{torch_result['train_step']['median_s'] / step:>8.2f}" if torch_result else f"{'-':>8}"
            warmup += r["train_step"]["warmup_s"]
        else:
            step_text, step_ratio = f"{'-':>14}", f"{'-':>8}"
        lines.append(f"{variant:<16}{infer:>18.3f}{batch / infer:>10.1f}{infer_ratio}{latency * 1000:>12.1f}"
                     f"{step_text}{step_ratio}{warmup:>11.1f}{r['peak_rss_mb']:>13.0f}")
    lines.append("ratio = PyTorch eager time / variant time (above 1.0: faster); medians of the timed repeats; warm-up "
                 "includes compiling, tracing and loading an artifact")
    runtimes = [f"{v}: {results[v]['runtime']}" for v in ARTIFACTS if v in results]
    if runtimes:
        lines.append("runtimes: " + "; ".join(runtimes))
    for variant, export in results.get("exports", {}).items():
        diffs = ", ".join(f"batch {b} {d:.1e}" for b, d in export["max_abs_diff"].items())
        lines.append(f"export {variant}: {export['seconds']:.0f} s, {export['size_mb']:.1f} MB, max abs diff vs "
                     f"reference_torch {diffs}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "export":
        print(json.dumps(export_artifacts(args.artifacts)))
        return
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.repeats, args.artifacts)))
        return
    results = {}
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="crossformer-bench-") as artifact_folder:
        if any(v in ARTIFACTS for v in variants):
            results["exports"] = run_child("--child", "export", "--artifacts", artifact_folder)
            print("exported the artifacts", file=sys.stderr, flush=True)
        for variant in variants:
            results[variant] = run_variant(variant, args.batch, args.repeats, artifact_folder)
            print(f"measured {variant}", file=sys.stderr, flush=True)
    print(table(results, args.batch))
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": args.batch, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
