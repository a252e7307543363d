"""crossformer train: the original main_crossformer.py, in Keras (forecasting.train)."""
from ..arguments import EXIT_OK, add_missing_flag, parse_bool


def register(commands):
    from converter.original_args import BOOL_VALUE, ORIGINAL_ARGUMENTS, STORE_TRUE

    parser = commands.add_parser("train", help="train the Keras Crossformer as the original main_crossformer.py does",
                                 description="Train with the original command line's arguments and defaults (both "
                                 "--in_len and --in-len spellings): Adam (PyTorch's update), MSE, early stopping on "
                                 "the validation loss, the type1/type2/fixed schedule. Writes CHECKPOINTS/SETTING/ "
                                 "with model.keras, args.json, scale_statistic.json and metrics.json.")
    for name, kind, default, text in ORIGINAL_ARGUMENTS:
        spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if kind == STORE_TRUE:
            parser.add_argument(*spellings, dest=name, action="store_true", help=text)
        else:
            parser.add_argument(*spellings, dest=name, type=parse_bool if kind == BOOL_VALUE else kind,
                                default=default, help=f"{text} (default {default})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weight initialisation, dropout and batch "
                        "order (default 0; run i of --itr uses seed + i): the same seed gives the same run")
    add_missing_flag(parser)
    # Measured (bench/benchmark.py, ETTh1 configuration, batch 32, 2 cores, README#speed): the compiled graph
    # trains at 0.544 s a step, XLA at 0.566 s after a 17 s first step (5.0 s for the graph), so XLA is opt-in (on
    # TensorFlow; on JAX Keras always jit-compiles the step).
    parser.add_argument("--jit-compile", dest="jit_compile", choices=("auto", "on", "off"), default=None,
                        help="XLA compilation of the training step (default off on tensorflow and torch: the plain "
                        "compiled graph is faster here; on on jax, which otherwise runs the step op by op, and with "
                        "--distribute data, which needs it)")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default=None,
                        help="Keras backend to train on (default: KERAS_BACKEND, else tensorflow). Measured in "
                        "bench/benchmark.py (README#speed; ETTh1 configuration, batch 32, 2 cores of an AMD EPYC): "
                        "a training step takes 0.544 s on tensorflow (graph), 0.792 s on jax (jit), 1.130 s on torch "
                        "(eager), and PyTorch eager 0.884 s")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bar (default 1)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder (and discard an "
                        "interrupted run's resumable state)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last complete "
                        "epoch (CHECKPOINTS/SETTING.resume.npz), with the same arguments; a complete run is kept")
    group = parser.add_argument_group("several devices or hosts (JAX backend; see the README)")
    group.add_argument("--distribute", choices=("none", "data"), default="none",
                       help="data: data-parallel training on every visible device (and every process joined with "
                       "the options below), the global batch --batch_size split across them; the same run as on "
                       "one device up to rounding (default none: one device)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="several processes: process 0's address, the same in every process (or "
                       "KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    group.add_argument("--num-processes", dest="num_processes", type=int, metavar="N", default=None,
                       help="several processes: how many (or KERAS_DISTRIBUTION_NUM_PROCESSES)")
    group.add_argument("--process-id", dest="process_id", type=int, metavar="I", default=None,
                       help="several processes: this one's index, 0..N-1; process 0 writes the run (or "
                       "KERAS_DISTRIBUTION_PROCESS_ID)")
    parser.set_defaults(run=run)


def select_backend(backend):
    """Make ``backend`` the Keras backend of this process: KERAS_BACKEND is read once, when keras is imported,
    so it is set here, before the first import of keras (the commands import it lazily); a process that has
    imported keras already must be on that backend."""
    import os
    import sys

    from converter.errors import ConfigError

    if backend is None:
        return
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ConfigError(f"--backend {backend}: this process runs Keras on {current} already (set "
                              f"KERAS_BACKEND={backend} before importing keras)")
        return
    os.environ["KERAS_BACKEND"] = backend


def backend_in_use():
    """The Keras backend of this process: keras's own answer once it is imported, else what it will read."""
    import sys

    from ..startup import configured_backend

    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return configured_backend()


def run(args):
    from dataclasses import fields

    select_backend(args.backend)
    # Refused before Keras (and TensorFlow or PyTorch with it) starts.
    from converter.validation import check_process_options, require_data_parallel_backend

    check_process_options(args.distribute, args.coordinator, args.num_processes, args.process_id)
    if args.distribute == "data":
        require_data_parallel_backend(backend_in_use())
    from forecasting import TrainingOptions, train

    options = {f.name: getattr(args, f.name) for f in fields(TrainingOptions)}
    jit_compile = args.jit_compile
    if jit_compile is None and args.distribute != "data" and backend_in_use() == "jax":
        jit_compile = "on"  # op by op otherwise (--distribute data resolves None to on itself)
    options["jit_compile"] = {"auto": "auto", "on": True, "off": False, None: None}[jit_compile]
    train(TrainingOptions(**options), log=lambda message: print(message, flush=True))
    return EXIT_OK
