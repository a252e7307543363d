"""Training runs and their folders: `crossformer train` as the original main_crossformer.py runs it, each
run locked and resumable (forecasting.resume); reading a run back is forecasting.sources.

A run folder (CHECKPOINTS/SETTING/) holds model.keras, args.json (the original's format), scale_statistic.json
(the scaler, JSON, not pickle) and metrics.json (per-epoch history and test metrics).
"""
import json
from contextlib import nullcontext
from dataclasses import asdict, field, make_dataclass
from pathlib import Path

import keras_model
from converter.atomic import atomic_write_folder, check_output
from converter.configuration import check_runnable
from converter.errors import CheckpointError, ConfigError, CrossformerInputError, Interrupted, OutputError
from converter.original_args import ORIGINAL_ARGUMENTS, STORE_TRUE

from . import distribution
from .data import NAMED_DATASETS, load_splits, resolve_split
from .resume import (Checkpoint, TrainingState, check_fingerprint, data_checksum, remove_leftovers, run_lock,
                     state_path)
from .table import read_table
from .validation import check_training_options, check_variable_count

# Everything `crossformer train` takes: the original's command line (names, defaults) and this port's own
# options. Typed fields, so train() is callable from Python without argparse.
TrainingOptions = make_dataclass("TrainingOptions", [
    *[(name, bool if kind == STORE_TRUE else object, field(default=default))
      for name, kind, default, _ in ORIGINAL_ARGUMENTS],
    ("seed", int, field(default=0)),  # run i: weight initialisation, dropout and batch order from seed + i
    ("missing", str, field(default="error")),  # missing values: error, ffill or drop-windows (forecasting.validation)
    ("jit_compile", object, field(default=None)),  # XLA for the training step: False, True or "auto" (None: False,
    # True when data-parallel: its sharded step is one XLA program)
    ("verbose", int, field(default=1)),  # Keras progress bar: 0, 1 or 2
    ("force", bool, field(default=False)),  # replace an existing run folder (and discard a resumable state)
    ("resume", bool, field(default=False)),  # continue an interrupted run from its last complete epoch
    ("distribute", str, field(default="none")),  # "data": data-parallel over every device (forecasting.distribution)
    ("coordinator", object, field(default=None)),  # several processes: process 0's HOST:PORT,
    ("num_processes", object, field(default=None)),  # how many there are,
    ("process_id", object, field(default=None)),  # and which this one is (0 writes the run)
])
# Arguments that do not change what a run computes: a run resumes (or is kept) whatever they say.
LOCATION_AND_COMPATIBILITY = ("root_path", "data_path", "checkpoints", "num_workers", "save_pred", "use_gpu", "gpu",
                              "use_multi_gpu", "devices")


def setting_name(args):
    """The original's run name: Crossformer_{data}_il{in}_ol{out}_sl{seg}_win{w}_fa{c}_dm{dm}_nh{H}_el{N}_itr{i}."""
    return (f"Crossformer_{args['data']}_il{args['in_len']}_ol{args['out_len']}_sl{args['seg_len']}_win"
            f"{args['win_size']}_fa{args['factor']}_dm{args['d_model']}_nh{args['n_heads']}_el{args['e_layers']}"
            f"_itr{args['itr_index']}")


def _json_bytes(payload):
    return (json.dumps(payload, indent=True) + "\n").encode()


def _write_folder(folder, files):
    """Write {name: bytes | callable(path)} as a folder, atomically (see converter.atomic)."""
    def write(tmp):
        for name, content in files.items():
            if callable(content):
                content(str(tmp / name))
            else:
                (tmp / name).write_bytes(content)

    atomic_write_folder(folder, write)


def _original_options(options):
    """The original's arguments of a run, with a named dataset's file, variable count and split filled in."""
    check_training_options(options)
    args = {name: getattr(options, name) for name, *_ in ORIGINAL_ARGUMENTS}
    if args["data"] in NAMED_DATASETS:
        file_name, data_dim, _ = NAMED_DATASETS[args["data"]]
        args.update(data_path=file_name, data_dim=data_dim, data_split=resolve_split(dataset=args["data"]))
    else:
        args["data_split"] = resolve_split(args["data_split"])
    return args


def _prepare(options):
    """(args, csv path, splits, scaler, model config): everything checked before anything is written."""
    args = _original_options(options)
    config = {key: args[key] for key in keras_model.ORIGINAL_MODEL_ARGUMENTS}
    check_runnable(dict(config, legacy_mix=False, variant="original"))
    csv_path = Path(args["root_path"]) / args["data_path"]
    table = read_table(csv_path)
    check_variable_count(len(table.names), args["data_dim"], csv_path, expected_by="--data_dim is")
    splits, scaler = load_splits(csv_path, args["in_len"], args["out_len"], args["data_split"],
                                 missing=options.missing, purpose="train", table=table)
    return args, csv_path, splits, scaler, config


def _fingerprint(args, options, seed, csv_path):
    """What a run computes from: a resumed (or kept) run must have been started with the same."""
    import keras

    return {"args": {k: v for k, v in args.items() if k not in LOCATION_AND_COMPATIBILITY}, "seed": seed,
            "missing": options.missing, "backend": keras.backend.backend(), "data_sha256": data_checksum(csv_path),
            # None, the default, is off on one device (train() resolves it before a run; so does this)
            "jit_compile": False if options.jit_compile is None else options.jit_compile}


def _kept_run(folder, fingerprint):
    """The report of a complete run folder started with the same fingerprint (`--resume` keeps it), else None."""
    try:
        args = json.loads((folder / "args.json").read_text())
        report = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    same = {k: v for k, v in args.items() if k not in LOCATION_AND_COMPATIBILITY} == fingerprint["args"]
    return report if same and report.get("seed") == fingerprint["seed"] else None


def _checkpoint(folder, options, fingerprint, log):
    """The run's Checkpoint (holding the state to continue from, if any), or a kept run's report (--resume of a
    complete run). Refuses to overwrite a state or a folder unless asked."""
    path = state_path(folder)
    if options.resume and not options.force and folder.exists():
        kept = _kept_run(folder, fingerprint)
        if kept is None:
            raise OutputError(f"{folder} exists from a run with other arguments; pass --force to replace it")
        path.unlink(missing_ok=True)  # a run killed after writing its folder, before removing its state
        log(f"{folder} is complete (--resume): kept")
        return kept
    state = None
    if path.exists():
        if options.resume:
            state = TrainingState.load(path)
            check_fingerprint(state, fingerprint, path)
            log(f"resuming {folder.name} after epoch {state.epoch} (from {path})")
        elif options.force:
            path.unlink()
        else:
            epoch = TrainingState.load(path).epoch
            raise OutputError(f"{path} holds an interrupted run ({epoch} epochs done): pass --resume to continue "
                              "it, or --force to start over")
    elif options.resume:
        log(f"note: no resumable state for {folder.name}: training from epoch 1")
    check_output(folder, options.force, folder=True)
    return Checkpoint(path, fingerprint, state)


KEPT, REFUSED = -1, -2  # process 0's verdicts on a run folder besides "train after epoch k" (k >= 0)


def _agreed_checkpoint(folder, options, fingerprint, log, plan):
    """_checkpoint as process 0 decides it, followed by every process of a multi-process run: they resume from
    the same state (read from the shared checkpoints folder), keep the run or refuse it together; an error in
    any process is raised in all (one process leaving alone would leave the others waiting in a collective)."""
    if plan is None or plan.processes == 1:
        remove_leftovers(folder)
        return _checkpoint(folder, options, fingerprint, log)
    checkpoint, error, verdict = None, None, REFUSED
    if plan.writes:
        try:
            remove_leftovers(folder)
            checkpoint = _checkpoint(folder, options, fingerprint, log)
            verdict = (KEPT if not isinstance(checkpoint, Checkpoint) else
                       checkpoint.state.epoch if checkpoint.state else 0)
        except CrossformerInputError as refused:
            error = refused
    verdict = plan.share(verdict)
    if not plan.writes and verdict >= 0:
        try:
            state = TrainingState.load(state_path(folder)) if verdict > 0 else None
            if state is not None and state.epoch != verdict:
                raise CheckpointError(f"process 0 resumes after epoch {verdict}, this process finds epoch "
                                      f"{state.epoch} in {state_path(folder)}")
            checkpoint = Checkpoint(state_path(folder), fingerprint, state, writes=False)
        except CrossformerInputError as unreadable:
            error = CheckpointError(f"{unreadable} (every process must see process 0's checkpoints folder)")
    if not plan.all_true(error is None):
        raise error or OutputError(f"another process of the run refused {folder.name} (its message says why)")
    if verdict == KEPT and not plan.writes:
        return {"setting": folder.name, "kept": True}
    return checkpoint


def _run(options, args, index, data, log, plan=None):
    """One of the ``itr`` runs, locked, resumable, its folder written at the end; its report. Under a
    multi-process ``plan`` only process 0 locks, writes and logs."""
    import keras

    from .training import fit_original, inference_copy

    csv_path, splits, scaler, config = data
    seed = options.seed + index
    setting = setting_name(dict(args, itr_index=index))
    folder = Path(args["checkpoints"]) / setting
    writes = plan is None or plan.writes
    with run_lock(folder) if writes else nullcontext():
        checkpoint = _agreed_checkpoint(folder, options, _fingerprint(args, options, seed, csv_path), log, plan)
        if not isinstance(checkpoint, Checkpoint):
            return checkpoint
        log(f">>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>")
        for part, split in splits.items():
            log(f"{part} {len(split)}" + (f" ({split.dropped} windows with missing values left out)"
                                          if split.dropped else ""))
        if plan is not None:
            distribution.use(plan)  # before the model is built: its variables are laid out on every device
        keras.utils.set_random_seed(seed)  # weight initialisation and the dropout layers' seed generators
        model = keras_model.Crossformer(**config, training_args={k: v for k, v in args.items()
                                                                 if k not in keras_model.ORIGINAL_MODEL_ARGUMENTS})
        try:
            result = fit_original(model, splits, args["batch_size"], args["train_epochs"], args["patience"],
                                  args["learning_rate"], args["lradj"], seed=seed, verbose=options.verbose, log=log,
                                  jit_compile=options.jit_compile, checkpoint=checkpoint, plan=plan)
        except KeyboardInterrupt:
            raise Interrupted(interrupted_message(checkpoint)) from None
        model.scale_statistic = scaler
        report = {"setting": setting, "seed": seed, "missing": options.missing, "windows": result.windows,
                  "dropped_windows": {part: split.dropped for part, split in splits.items()},
                  "test": result.metrics, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                  "resumed_after": result.resumed_after, "history": result.history, "seconds": result.seconds,
                  "devices": plan.devices if plan else 1, "processes": plan.processes if plan else 1}
        if writes:
            _write_folder(folder, {"model.keras": lambda path, trained=model: inference_copy(trained).save(path),
                                   "args.json": _json_bytes(args),
                                   "scale_statistic.json": _json_bytes(scaler.as_lists()),
                                   "metrics.json": _json_bytes(report)})
            checkpoint.path.unlink(missing_ok=True)
        if plan is not None:
            plan.wait_for_all(f"{setting} written")  # nobody leaves (or starts the next run) before process 0 wrote
    m = result.metrics
    log(f"test: mse {m['mse']:.7f} mae {m['mae']:.7f} rmse {m['rmse']:.7f} ({result.windows['test']} windows; "
        f"best epoch {result.best_epoch} of {len(result.history)}; {result.seconds:.0f} s) -> {folder}")
    return report


def interrupted_message(checkpoint):
    done = checkpoint.epochs_saved
    if not done:
        return "stopped before the first epoch ended; nothing to resume"
    return (f"stopped after epoch {done}, which is saved in {checkpoint.path}: run the same command with --resume "
            "to continue")


def train(options=None, log=print, **overrides):
    """Run `crossformer train`: ``itr`` runs of the original recipe, each written to CHECKPOINTS/SETTING/.

    ``options`` is a TrainingOptions (default: the original's defaults), ``overrides`` replace its fields
    (``train(data="ETTh1", root_path="data", in_len=168)``). Every argument and the data are checked before
    anything is written (ConfigError / DataError). Returns one report dict per run (setting, seed, window
    counts, test metrics, best epoch, history, seconds)."""
    options = TrainingOptions(**{**(asdict(options) if options else {}), **overrides})
    # First: joining the processes of a run must come before JAX computes anything.
    plan = distribution.start(options.distribute, options.coordinator, options.num_processes, options.process_id)
    try:
        if plan is not None:
            if options.jit_compile is False:
                raise ConfigError("--distribute data trains with XLA (--jit-compile on or auto): op by "
                                               "op, every operation would be a step of its own across the devices")
            if not plan.writes:
                options = TrainingOptions(**dict(asdict(options), verbose=0))
                log = _silent
        options = TrainingOptions(**dict(asdict(options), jit_compile=bool(plan) if options.jit_compile is None
                                         else options.jit_compile))
        args, csv_path, splits, scaler, config = _prepare(options)
        if plan is None or plan.writes:
            Path(args["checkpoints"]).mkdir(parents=True, exist_ok=True)
        if plan is not None:
            log(f"data-parallel over {plan.devices} devices ({plan.processes} process"
                f"{'es' if plan.processes > 1 else ''}): global batch {args['batch_size']}, each step padded to "
                f"{plan.padded_batch(args['batch_size'])} windows")
        return [_run(options, args, index, (csv_path, splits, scaler, config), log, plan)
                for index in range(args["itr"])]
    finally:
        if plan is not None:
            distribution.stop()


def _silent(message):
    """The log of a process other than 0 in a multi-process run: process 0 speaks for the run."""
