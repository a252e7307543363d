"""Test metrics as the original computes them (docs/pipeline.md#metrics; the original is utils/metrics.py
and the test loop of cross_exp/exp_crossformer.py), and `crossformer evaluate`."""
import json
from pathlib import Path

import numpy as np

from converter.atomic import atomic_write, check_output
from converter.errors import CheckpointError
from converter.validation import require_choice, require_int

from .batches import make_batches
from .data import load_splits, resolve_split
from .table import read_table
from .validation import MISSING_POLICIES, check_variable_count

METRIC_NAMES = ("mae", "mse", "rmse", "mape", "mspe")


def batch_metrics(pred, true):
    """MAE, MSE, RMSE, MAPE, MSPE of one batch (utils/metrics.py: plain means over all elements)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    error = pred - true
    mse = np.mean(error ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = error / true
    return np.array([np.mean(np.abs(error)), mse, np.sqrt(mse), np.mean(np.abs(relative)), np.mean(relative ** 2)])


def weighted_metrics(per_batch, sizes):
    """The original test(): each batch's metrics times its size, summed, over the number of windows. For MAE,
    MSE, MAPE and MSPE that is the global mean; RMSE stays the size-weighted mean of per-batch RMSEs."""
    totals = sum(metrics * size for metrics, size in zip(per_batch, sizes))
    return dict(zip(METRIC_NAMES, (float(v) for v in totals / sum(sizes))))


def predict_batches(model, batches):
    """[(prediction, truth)] per batch, in order, in inference mode (graph-compiled predict_on_batch)."""
    return [(np.asarray(model.predict_on_batch(x)), y) for x, y in (batches[i] for i in range(len(batches)))]


def evaluate_model(model, split, batch_size=32, inverse=None):
    """Test metrics of a Keras Crossformer on a SeriesSplit, as the original's test()/eval() computes them.

    ``inverse`` (a ScaleStatistic) maps predictions and truths back to the data's scale first (--inverse)."""
    per_batch, sizes = [], []
    for pred, true in predict_batches(model, make_batches(split, batch_size, dtype=model.compute_dtype)):
        if inverse is not None:
            pred, true = inverse.denormalize(pred), inverse.denormalize(true)
        per_batch.append(batch_metrics(pred, true))
        sizes.append(len(pred))
    return weighted_metrics(per_batch, sizes), sum(sizes)


def mean_batch_loss(model, batches):
    """vali(): the unweighted mean over batches of each batch's MSE."""
    return float(np.mean([np.mean((pred.astype(np.float64) - true) ** 2) for pred, true in
                          predict_batches(model, batches)]))


def _test_split(model, checkpoint, table, split_spec, missing):
    """The test SeriesSplit and scaler of ``table`` for a model (or a RunPreview of one)."""
    if model.scale_statistic is None:
        raise CheckpointError(f"{checkpoint} carries no scale statistic (scale_statistic.pkl/.json)")
    config = model.crossformer_config
    check_variable_count(len(table.names), config["data_dim"], table.path)
    splits, scaler = load_splits(table.path, config["in_len"], config["out_len"], split_spec, ("test",),
                                 model.scale_statistic, missing, "evaluate", table)
    return splits, scaler


def default_output(checkpoint):
    """results/NAME/metrics.json (the original's results/SETTING/)."""
    # A folder's or .keras file's name without .keras; an artifact's whole name, so that etth1.tflite and etth1.xml
    # keep apart.
    name = Path(checkpoint).stem if Path(checkpoint).suffix == ".keras" else Path(checkpoint).name
    return Path("results") / name / "metrics.json"


def evaluate(checkpoint, data=None, root_path=None, data_split=None, inverse=False, batch_size=32, output=None,
             legacy_mix=False, force=False, missing="error", log=print):
    """Test metrics of a checkpoint (one of our run folders, a .keras file, or an original folder converted and
    verified now) on a CSV, written as JSON to ``output`` (default results/NAME/metrics.json, its folders made
    when the metrics are ready; an existing file is kept unless ``force``); returns them.

    ``data`` is a CSV path or a dataset name under ``root_path`` (default: the run's args.json); ``data_split``
    overrides the run's split; ``inverse`` measures in the data's own scale; ``missing`` is the missing-value
    policy (forecasting.validation) for the test rows."""
    from .sources import data_file, describe_source, load_run

    require_int(batch_size, "batch_size", 1)
    require_choice(missing, "missing", MISSING_POLICIES)
    out = check_output(output or default_output(checkpoint), force, suffix=".json", make_parents=not output)
    # The data is checked against what the model file says before the model is loaded, so bad data costs no
    # model load (an original folder has to be converted first, an artifact is its own description).
    description, args, model = describe_source(checkpoint, legacy_mix)
    csv_path = data_file(data, root_path, args)
    split_spec = resolve_split(data_split if data_split else args.get("data_split"), data, csv_path)
    table = read_table(csv_path)
    splits, scaler = _test_split(description, checkpoint, table, split_spec, missing)
    model = model or load_run(checkpoint, legacy_mix=legacy_mix)[0]
    config = model.crossformer_config
    metrics, windows = evaluate_model(model, splits["test"], batch_size, inverse=scaler if inverse else None)
    payload = {"checkpoint": str(checkpoint), "data": str(csv_path), "data_split": list(split_spec),
               "in_len": config["in_len"], "out_len": config["out_len"], "inverse": bool(inverse),
               "missing": missing, "windows": windows, "dropped_windows": splits["test"].dropped,
               "batch_size": batch_size, **metrics}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=1) + "\n"))
    dropped = f", {splits['test'].dropped} with missing values left out" if splits["test"].dropped else ""
    log("  ".join(f"{k} {v:.7f}" for k, v in metrics.items()) + f"  ({windows} test windows of {csv_path.name}"
        f"{dropped}{', original scale' if inverse else ', normalised'}) -> {out}")
    return payload
