"""Test metrics as the original computes them (docs/pipeline.md#metrics; the original is utils/metrics.py
and the test loop of cross_exp/exp_crossformer.py), and `crossformer evaluate`."""
import json
from pathlib import Path

import numpy as np

from converter.atomic import atomic_write, check_output
from converter.errors import CheckpointError

from .batches import make_batches
from .data import check_variable_count, load_split, resolve_split

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


def evaluate(checkpoint, data=None, root_path=None, data_split=None, inverse=False, batch_size=32, output=None,
             legacy_mix=False, log=print):
    """Test metrics of a checkpoint (one of our run folders, a .keras file, or an original folder converted and
    verified now) on a CSV, written as JSON to ``output`` (default results/NAME/metrics.json); returns them.

    ``data`` is a CSV path or a dataset name under ``root_path`` (default: the run's args.json); ``data_split``
    overrides the run's split; ``inverse`` measures in the data's own scale."""
    from .runs import data_file, load_run

    # A folder's or .keras file's name without .keras; an artifact's whole name, so that etth1.tflite and etth1.xml
    # keep apart.
    name = Path(checkpoint).stem if Path(checkpoint).suffix == ".keras" else Path(checkpoint).name
    out = Path(output) if output else Path("results") / name / "metrics.json"
    if not output:
        out.parent.mkdir(parents=True, exist_ok=True)
    check_output(out, force=True)
    model, run_args = load_run(checkpoint, legacy_mix=legacy_mix)
    csv_path = data_file(data, root_path, run_args)
    split_spec = resolve_split(data_split if data_split else run_args.get("data_split"), data, csv_path)
    if model.scale_statistic is None:
        raise CheckpointError(f"{checkpoint} carries no scale statistic (scale_statistic.pkl/.json)")
    config = model.crossformer_config
    split, scaler = load_split(csv_path, "test", config["in_len"], config["out_len"], split_spec,
                               model.scale_statistic)
    check_variable_count(split.values.shape[1], config["data_dim"], csv_path)
    metrics, windows = evaluate_model(model, split, batch_size, inverse=scaler if inverse else None)
    payload = {"checkpoint": str(checkpoint), "data": str(csv_path), "data_split": list(split_spec),
               "in_len": config["in_len"], "out_len": config["out_len"], "inverse": bool(inverse),
               "windows": windows, "batch_size": batch_size, **metrics}
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=1) + "\n"))
    log("  ".join(f"{k} {v:.7f}" for k, v in metrics.items()) + f"  ({windows} test windows of {csv_path.name}"
        f"{', original scale' if inverse else ', normalised'}) -> {out}")
    return payload
