"""Speed and memory of the Keras Crossformer on every Keras backend against reference_torch and the hardware's
floor, measured in one run (not a test).

    .venv/bin/python bench/benchmark.py [--batch 32] [--repeats 10] [--variants a,b] [--quick] [--config small]
                                        [--json bench.json]

For the ETTh1 configuration (in_len 168, batch 32, dropout 0 so that a training step is the same computation
everywhere) it times inference (a forward pass in inference mode, batch 32 and batch 1) and a training step
(forward, MSE, backward, Adam step) for:

- reference_torch eager and under torch.compile;
- the Keras model on each Keras backend, in each execution mode the backend offers: TensorFlow eager, graph
  (tf.function) and XLA; JAX eager and jit; torch eager and torch.compile (Keras's jit_compile on torch);
- the deployment artifacts `crossformer export` writes (inference only), each through its own runtime: the
  SavedModel through TensorFlow, ONNX through onnxruntime, LiteRT through ai_edge_litert (XNNPACK, all cores)
  and OpenVINO (CPU, f32); they are exported beforehand in another process (that time is reported, not counted).

The floor: a 4096x4096 float32 matmul measures what this machine's cores deliver (GFLOP/s, in this run), through
each installed library in its own process (torch, TensorFlow, JAX, NumPy), and the fastest sets the floor: the
libraries' kernels differ by CPU (on an AMD EPYC, torch's MKL reached 205 GFLOP/s and TensorFlow's oneDNN 479, so
a floor measured through torch alone put TensorFlow above it); torch.utils.flop_counter's formulas count the
model's matmul FLOPs (forward, and forward + backward for a training step). FLOPs / GFLOP/s is the time a
perfect implementation would need; each row shows the fraction of it that it reaches (1.0 = at the floor). Each variant runs in its own process, so its peak memory (max RSS,
the framework included) is its own: the RSS after inference (batch 32 and 1) and after training are reported
separately, and so is the RSS of importing each framework alone (the floor no model can go under). Ratios are
PyTorch eager time / variant time (above 1.0 the variant is faster). The first call (tracing, compilation,
loading) is excluded from the timings and reported on its own.

Over ~300 lines on purpose: every variant is timed by one harness in one run, and the script runs on its own
(without the test suite's helpers), so the timing, the child processes and the table stay in one file.
"""
import argparse
import importlib.util
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
# keras-BACKEND-MODE rows: the Keras model on that backend in that execution mode.
KERAS_VARIANTS = ("keras-tf-eager", "keras-tf-graph", "keras-tf-xla", "keras-jax-eager", "keras-jax-jit",
                  "keras-torch-eager", "keras-torch-compile")
VARIANTS = ("torch", "torch-compile", *KERAS_VARIANTS, "saved_model", "onnxruntime", "litert", "openvino")
QUICK_VARIANTS = ("torch", "keras-tf-graph", "keras-jax-jit")
KERAS_BACKENDS = {"tf": "tensorflow", "jax": "jax", "torch": "torch"}
# The runtime variants and the artifact each one runs.
ARTIFACTS = {"saved_model": ("saved_model", "saved_model"), "onnxruntime": ("onnx", "model.onnx"),
             "litert": ("litert", "model.tflite"), "openvino": ("openvino", "model.xml")}
# What importing each framework alone costs in memory (the Keras rows include one of them).
IMPORTS = {"tensorflow": "import tensorflow", "jax": "import jax, jax.numpy; jax.numpy.zeros(1)",
           "torch": "import torch", "keras[tensorflow]": "import keras", "keras[jax]": "import keras",
           "keras[torch]": "import keras"}
# etth1 is reference_torch.testing.ETTH1_CONFIGURATION (11,301,656 parameters; the floor child checks they agree;
# copied so that the Keras children need not import torch); small is for a quick functional check.
CONFIGURATIONS = {
    "etth1": dict(data_dim=7, in_len=168, out_len=24, seg_len=6, win_size=2, factor=10, d_model=256, d_ff=512,
                  n_heads=4, e_layers=3, dropout=0.0),
    "small": dict(data_dim=3, in_len=24, out_len=12, seg_len=6, win_size=2, factor=2, d_model=16, d_ff=32, n_heads=2,
                  e_layers=2, dropout=0.0),
}
FLOOR_MATMUL = 4096


def timed(function, repeats, warmup=1):
    """The first call on its own (trace, compile), then ``warmup`` untimed calls, then ``repeats`` timed ones."""
    started = time.perf_counter()
    function()
    first = time.perf_counter() - started
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "first_s": first}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_environment(variant):
    """The environment a variant's process starts with: its Keras backend chosen before keras is imported."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if variant.startswith("keras-"):
        environment["KERAS_BACKEND"] = KERAS_BACKENDS[variant.split("-")[1]]
    elif variant.startswith("import:keras["):
        environment["KERAS_BACKEND"] = variant[len("import:keras["):-1]
    return environment


def measure_import(name):
    """Run in a child process: the peak RSS of importing one framework alone."""
    exec(IMPORTS[name])  # noqa: S102  (a fixed statement from IMPORTS)
    return {"peak_rss_mb": peak_rss_mb()}


def torch_matmul(n):
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: a @ b


def tensorflow_matmul(n):
    import tensorflow as tf

    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    product = tf.function(lambda: tf.matmul(a, b))
    return lambda: product().numpy()


def jax_matmul(n):
    import jax
    import jax.numpy as jnp

    a, b = jnp.ones((n, n), "float32"), jnp.ones((n, n), "float32")
    product = jax.jit(jnp.matmul)
    return lambda: product(a, b).block_until_ready()


def numpy_matmul(n):
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype="float32") for _ in range(2))
    return lambda: a @ b


# The floor's matmul through each library (its module name): a function of n that returns the n x n product to time.
MATMUL_LIBRARIES = {"torch": torch_matmul, "tensorflow": tensorflow_matmul, "jax": jax_matmul, "numpy": numpy_matmul}


def measure_matmul(library):
    """Run in a child process: GFLOP/s of a FLOOR_MATMUL-square float32 matmul through one library."""
    matmul = timed(MATMUL_LIBRARIES[library](FLOOR_MATMUL), repeats=5)
    return {"gflops": 2 * FLOOR_MATMUL ** 3 / matmul["min_s"] / 1e9,  # the best repeat: what the cores deliver
            "median_gflops": 2 * FLOOR_MATMUL ** 3 / matmul["median_s"] / 1e9}


def cpu_model():
    """The CPU's model name (kernels, and so every ratio here, depend on it), or the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_floor(config, batch):
    """Run in a child process: the model's FLOPs, counted through torch (the matmuls are timed by
    measure_matmul, one process per library)."""
    sys.path.insert(0, str(REPO))
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    from reference_torch.testing import ETTH1_CONFIGURATION, perturbed_model

    if config["d_model"] == 256:
        assert {k: v for k, v in config.items() if k != "dropout"} == ETTH1_CONFIGURATION
    model = perturbed_model(config)

    class MatmulFlops(TorchDispatchMode):
        """FlopCounterMode's formulas (matmuls, bmm, addmm, ...) without its module tracker, which fails on
        this model ("Expected gradient function to be set")."""
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func._overloadpacket in flop_registry:
                self.total += flop_registry[func._overloadpacket](*args, **(kwargs or {}), out_val=out)
            return out

    def forward_flops(size):
        with torch.no_grad(), MatmulFlops() as counter:
            model(torch.zeros(size, config["in_len"], config["data_dim"]))
        return counter.total

    model.train()
    with MatmulFlops() as counter:
        prediction = model(torch.zeros(batch, config["in_len"], config["data_dim"]))
        torch.nn.functional.mse_loss(prediction, torch.zeros_like(prediction)).backward()
    train_flops = counter.total
    model.eval()
    forward, forward_batch1 = forward_flops(batch), forward_flops(1)
    return {"threads": torch.get_num_threads(), "forward_flops": forward,
            "forward_flops_batch1": forward_batch1, "train_flops": train_flops,
            "parameters": sum(p.numel() for p in model.parameters())}


def export_artifacts(config, folder):
    """Run in a child process: write the four artifacts of the benchmark's model into folder (verified)."""
    sys.path.insert(0, str(REPO))
    from converter import torch_to_keras
    from converter.export import ServingGraph, export_model
    from reference_torch.testing import perturbed_model

    model = torch_to_keras(perturbed_model(config))
    exports = {}
    with ServingGraph(model) as graph:  # traced once; the first export pays for the trace and the SavedModel
        for variant, (format_name, name) in ARTIFACTS.items():
            report = export_model(model, Path(folder) / name, format_name, graph=graph)
            if not report.written:
                raise RuntimeError(report.summary())
            exports[variant] = {"seconds": report.seconds, "size_mb": report.size_bytes / 1e6,
                                "max_abs_diff": dict(zip(map(str, report.check.batches), report.check.per_batch))}
    return exports


def keras_functions(variant, config, x, y):
    """(infer, step, details) of the Keras model on this process's backend in the variant's mode. The weights are
    Keras's seeded initialisation (no torch in this process unless the backend is torch): speed and memory do not
    depend on their values."""
    import keras

    import keras_model

    mode = variant.split("-")[2]
    keras.utils.set_random_seed(0)
    model = keras_model.Crossformer(**config)
    # graph (TF's tf.function) is Keras's default compiled mode: jit_compile=False; eager runs op by op; xla, jit
    # and compile are jit_compile=True (XLA on TensorFlow and JAX, torch.compile on torch).
    model.compile(optimizer=keras_model.TorchAdam(learning_rate=1e-4), loss="mse", run_eagerly=(mode == "eager"),
                  jit_compile=mode in ("xla", "jit", "compile"))
    # As forecasting.training.fit_original does: an optimizer built inside the first traced step creates variables
    # during the trace, which makes tf.function trace the whole step twice.
    model.optimizer.build(model.trainable_variables)
    if mode == "eager":
        def infer(inputs):
            model(inputs, training=False)
    else:
        def infer(inputs):
            model.predict_on_batch(inputs)

    def step():
        model.train_on_batch(x, y)

    return infer, step, {"backend": keras.backend.backend(), "keras": keras.__version__}


def torch_functions(variant, config, x, y):
    """(infer, step, details) of reference_torch, eager or under torch.compile (the default mode; one compiled
    module for inference and training, recompiled on a new batch size or mode within the first calls)."""
    import torch

    from reference_torch.testing import perturbed_model

    torch_model = perturbed_model(config)
    yt = torch.from_numpy(y)
    optimizer = torch.optim.Adam(torch_model.parameters(), lr=1e-4)
    forward = torch.compile(torch_model) if variant == "torch-compile" else torch_model

    def infer(inputs):
        torch_model.eval()
        with torch.no_grad():
            forward(torch.from_numpy(inputs))

    def step():
        torch_model.train()
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(forward(torch.from_numpy(x)), yt).backward()
        optimizer.step()

    return infer, step, {"threads": torch.get_num_threads(), "torch": torch.__version__}


def measure(variant, config, batch, repeats, artifact_folder=None):
    """Run in a child process: time inference (batch and batch 1) and, where there is one, a training step."""
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
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, config["in_len"], config["data_dim"])).astype("float32")
    y = rng.standard_normal((batch, config["out_len"], config["data_dim"])).astype("float32")
    x1 = x[:1].copy()
    if variant in ARTIFACTS:
        step = None  # an artifact only infers

        def infer(inputs):
            artifact.predict_on_batch(inputs)
    elif variant.startswith("torch"):
        infer, step, details = torch_functions(variant, config, x, y)
        result.update(details)
    else:
        infer, step, details = keras_functions(variant, config, x, y)
        result.update(details)
    result["build_rss_mb"] = peak_rss_mb()
    result["inference"] = timed(lambda: infer(x), repeats)
    result["latency"] = timed(lambda: infer(x1), repeats * 2)
    result["inference_rss_mb"] = peak_rss_mb()  # a process that only infers would peak here
    if step is not None:
        result["train_step"] = timed(step, max(3, repeats // 2))
        result["train_rss_mb"] = peak_rss_mb()
    return result


def run_child(variant, *arguments, timeout=None):
    try:
        completed = subprocess.run([sys.executable, __file__, "--child", variant, *arguments], capture_output=True,
                                   text=True, cwd=REPO, env=child_environment(variant), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{variant}: no result within --timeout {timeout} s") from None
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} {' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def matmul_source(floor):
    """Which library's matmul set the floor, and the others' figures (older JSONs: torch's alone)."""
    by_library = floor.get("matmul_by_library")
    if not by_library:
        return f"torch, {floor['threads']} threads"
    others = ", ".join(f"{library} {result['gflops']:.0f}" for library, result in by_library.items())
    return f"{floor['matmul_library']}, the fastest of: {others}"


def table(results, batch, configuration):
    # Long on purpose: the header, one row per variant and the legend are one layout, kept together.
    floor = results.get("floor")
    torch_result = results.get("torch")  # ratios need it; a --variants subset without torch prints none
    lines = []
    if floor:
        infer_floor = floor["forward_flops"] / (floor["matmul_gflops"] * 1e9)
        latency_floor = floor["forward_flops_batch1"] / (floor["matmul_gflops"] * 1e9)
        train_floor = floor["train_flops"] / (floor["matmul_gflops"] * 1e9)
        lines += [f"{configuration} configuration ({floor['parameters']:,} parameters), batch {batch}, "
                  f"{os.cpu_count()} CPU cores, {floor.get('cpu', 'CPU not recorded')}",
                  f"floor: {FLOOR_MATMUL}x{FLOOR_MATMUL} float32 matmul {floor['matmul_gflops']:.0f} GFLOP/s "
                  f"({matmul_source(floor)}; median {floor['matmul_median_gflops']:.0f}); model forward "
                  f"{floor['forward_flops'] / 1e9:.1f} GFLOP (batch 1: {floor['forward_flops_batch1'] / 1e9:.2f}), "
                  f"training step {floor['train_flops'] / 1e9:.1f} GFLOP "
                  f"({floor['train_flops'] / floor['forward_flops']:.2f}x forward) -> "
                  f"{infer_floor:.3f} s/batch inference, {latency_floor * 1000:.1f} ms batch 1, "
                  f"{train_floor:.3f} s/training step"]
    lines.append(f"{'variant':<20}{'infer s':>9}{'ratio':>7}{'floor':>7}{'batch-1 ms':>11}{'floor':>7}"
                 f"{'train s':>9}{'ratio':>7}{'floor':>7}{'1st infer s':>12}{'1st step s':>11}{'RSS infer':>10}"
                 f"{'RSS train':>10}")
    dash = "-"
    for variant in (v for v in VARIANTS if v in results):
        r = results[variant]
        infer, latency = r["inference"]["median_s"], r["latency"]["median_s"]
        cells = [f"{variant:<20}{infer:>9.3f}",
                 f"{torch_result['inference']['median_s'] / infer:>7.2f}" if torch_result else f"{dash:>7}",
                 f"{infer_floor / infer:>7.2f}" if floor else f"{dash:>7}",
                 f"{latency * 1000:>11.1f}",
                 f"{latency_floor / latency:>7.2f}" if floor else f"{dash:>7}"]
        if "train_step" in r:
            step = r["train_step"]["median_s"]
            cells += [f"{step:>9.3f}",
                      f"{torch_result['train_step']['median_s'] / step:>7.2f}" if torch_result else f"{dash:>7}",
                      f"{train_floor / step:>7.2f}" if floor else f"{dash:>7}"]
        else:
            cells += [f"{dash:>9}", f"{dash:>7}", f"{dash:>7}"]
        first_infer = r["inference"]["first_s"] + r.get("load_s", 0.0)
        cells.append(f"{first_infer:>12.1f}")
        cells.append(f"{r['train_step']['first_s']:>11.1f}" if "train_step" in r else f"{dash:>11}")
        cells.append(f"{r['inference_rss_mb']:>10.0f}")
        cells.append(f"{r['train_rss_mb']:>10.0f}" if "train_rss_mb" in r else f"{dash:>10}")
        lines.append("".join(cells))
    lines.append("ratio = PyTorch eager time / variant time (above 1.0: faster); floor = the floor's time / variant "
                 "time (1.0: at the floor); medians of the timed repeats; 1st infer / 1st step: the first call "
                 "(tracing, compiling; an artifact's loading included); RSS in MB: peak after inference, after "
                 "training")
    for variant, error in results.get("failed", {}).items():
        lines.append(f"{variant} failed: {error.strip().splitlines()[-1][:200] if error.strip() else '?'}")
    imports = {name[len("import:"):]: r["peak_rss_mb"] for name, r in results.items() if name.startswith("import:")}
    if imports:
        lines.append("RSS of importing alone (MB): " + ", ".join(f"{name} {mb:.0f}" for name, mb in imports.items()))
    runtimes = [f"{v}: {results[v]['runtime']}" for v in ARTIFACTS if v in results]
    if runtimes:
        lines.append("runtimes: " + "; ".join(runtimes))
    for variant, export in results.get("exports", {}).items():
        diffs = ", ".join(f"batch {b} {d:.1e}" for b, d in export["max_abs_diff"].items())
        lines.append(f"export {variant}: {export['seconds']:.0f} s, {export['size_mb']:.1f} MB, max abs diff vs "
                     f"reference_torch {diffs}")
    return "\n".join(lines)


def main():
    # Long on purpose: the flags and the run's sequence (floor, variants, JSON after each, table) read top to bottom.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--config", choices=sorted(CONFIGURATIONS), default="etth1",
                        help="etth1 (the measured model) or small (a functional check in seconds)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_VARIANTS)} (and the floor)")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-alone RSS rows")
    parser.add_argument("--timeout", type=float, default=None, help="seconds a variant may take (then it is "
                        "reported as failed and the run goes on)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", help=argparse.SUPPRESS)
    parser.add_argument("--render", metavar="JSON", help="print the table of a --json file and stop")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        print(table(saved["results"], saved["batch"], saved["configuration"]))
        return
    config = CONFIGURATIONS[args.config]
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if args.child == "export":
            output = export_artifacts(config, args.artifacts)
        elif args.child == "floor":
            output = measure_floor(config, args.batch)
        elif args.child.startswith("matmul:"):
            output = measure_matmul(args.child[len("matmul:"):])
        elif args.child.startswith("import:"):
            output = measure_import(args.child[len("import:"):])
        else:
            output = measure(args.child, config, args.batch, args.repeats, args.artifacts)
        print(json.dumps(output))
        return
    variants = list(QUICK_VARIANTS) if args.quick else args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    common = ["--config", args.config, "--batch", str(args.batch), "--repeats", str(args.repeats)]
    results = {"floor": run_child("floor", *common)}
    matmuls = {}
    for library in MATMUL_LIBRARIES:
        if importlib.util.find_spec(library) is None:
            continue
        try:  # a library that is installed but broken leaves the others to set the floor
            matmuls[library] = run_child(f"matmul:{library}", timeout=args.timeout)
        except RuntimeError as error:
            results.setdefault("failed", {})[f"matmul:{library}"] = str(error)[-1500:]
            print(f"FAILED matmul:{library}: {str(error)[-600:]}", file=sys.stderr, flush=True)
    if not matmuls:
        raise SystemExit("no library could time the floor's matmul: " + ", ".join(results.get("failed", {})))
    fastest = max(matmuls, key=lambda library: matmuls[library]["gflops"])
    results["floor"].update(matmul_by_library=matmuls, matmul_library=fastest, cpu=cpu_model(),
                            matmul_gflops=matmuls[fastest]["gflops"],
                            matmul_median_gflops=matmuls[fastest]["median_gflops"])
    print("measured the floor", file=sys.stderr, flush=True)
    if not args.no_imports:
        for name in IMPORTS:
            results[f"import:{name}"] = run_child(f"import:{name}")
    with tempfile.TemporaryDirectory(prefix="crossformer-bench-") as artifact_folder:
        if any(v in ARTIFACTS for v in variants):
            results["exports"] = run_child("export", *common, "--artifacts", artifact_folder)
            print("exported the artifacts", file=sys.stderr, flush=True)
        for variant in variants:
            try:
                results[variant] = run_child(variant, *common, "--artifacts", artifact_folder, timeout=args.timeout)
                print(f"measured {variant}", file=sys.stderr, flush=True)
            except RuntimeError as error:  # one backend's failure leaves the others' rows
                results.setdefault("failed", {})[variant] = str(error)[-1500:]
                print(f"FAILED {variant}: {str(error)[-600:]}", file=sys.stderr, flush=True)
            if args.json:  # after every variant, so that an interrupted run keeps what it measured
                write_json(args, results)
    print(table(results, args.batch, args.config))
    if args.json:
        write_json(args, results)


def write_json(args, results):
    Path(args.json).write_text(json.dumps({"batch": args.batch, "configuration": args.config, "repeats": args.repeats,
                                           "load_average": os.getloadavg(), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
