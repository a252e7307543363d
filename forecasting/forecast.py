"""`crossformer predict`: the out_len steps after a CSV's history, in the data's own scale, with continued
timestamps, a CSV and optionally a plot of history, forecast and (when the CSV has it) the truth."""
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from converter.atomic import atomic_write_all, check_output
from converter.errors import CheckpointError, ConfigError, DataError
from converter.validation import require_choice, require_int
from keras_model.scaling import ScaleStatistic

from .table import read_table
from .validation import MISSING_POLICIES, apply_missing_policy, check_variable_count, check_variables


@dataclass
class Forecast:
    values: np.ndarray  # [out_len, D] in the data's scale
    stamps: list  # the forecast steps' timestamps (or "+1", "+2", ... when the dates do not parse)
    names: list  # the variables (CSV columns after the date)
    truth: np.ndarray = None  # the rows that follow the history in the CSV, when it has them
    history_rows: tuple = None  # (first, last) row index of the history


def _parse_time(text):
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def future_stamps(stamps, steps):
    """Timestamps continuing the series at its last step; plain step numbers when the dates do not parse."""
    last, before = (_parse_time(stamps[-1]), _parse_time(stamps[-2])) if len(stamps) > 1 else (None, None)
    try:
        if last is None or before is None or last <= before:
            return [f"+{i}" for i in range(1, steps + 1)]
    except TypeError:  # one stamp with a time zone, one without: no step between them
        return [f"+{i}" for i in range(1, steps + 1)]
    return [str(last + (last - before) * i) for i in range(1, steps + 1)]


def _history(table, end, in_len, missing):
    """The history rows' values [in_len, D], with missing values handled by the policy."""
    used = [(end - in_len, end)]
    if missing == "drop-windows" and np.isnan(table.values[end - in_len:end]).any():
        row, column = np.argwhere(np.isnan(table.values[end - in_len:end]))[0]
        raise DataError(f"{table.where(end - in_len + row, column)}: missing value in the history; --missing "
                        "drop-windows cannot leave out predict's only window (use --missing ffill, or another --end)")
    return apply_missing_policy(table, missing, used, "predict")[end - in_len:end]


def _check_data(model, source, table, end, variables, missing):
    """(the variables to plot, the history's end row) for a model (or a RunPreview of one)."""
    config = model.crossformer_config
    check_variable_count(len(table.names), config["data_dim"], table.path)
    if model.scale_statistic is None:
        raise CheckpointError(f"{source} carries no scale statistic, so forecasts cannot be put back in the "
                              "data's scale")
    chosen = check_variables(variables, table.names)
    rows = len(table.values)
    end = end if end is not None else rows
    if not config["in_len"] <= end <= rows:
        raise ConfigError(f"--end {end}: the history needs {config['in_len']} rows before it ({table.path} has {rows})")
    _history(table, end, config["in_len"], missing)
    return chosen, end


def forecast(source, csv_path, output, end=None, variables=None, plot=None, force=False, legacy_mix=False,
             missing="error", log=print):
    """Forecast from the ``in_len`` rows before ``end`` (default: the CSV's last rows) and write the CSV
    ``output`` (and the PNG ``plot``, of ``variables``: default the last column). ``source`` is a .keras
    file, one of our run folders or an original checkpoint folder; ``missing`` the missing-value policy for
    the history rows (forecasting.validation). Returns the Forecast."""
    from .sources import describe_source, load_run

    output = check_output(output, force, suffix=".csv")
    if plot:
        plot = check_output(plot, force, suffix=".png")
        if plot.resolve() == output.resolve():
            raise ConfigError(f"--plot and --output name the same file {plot}")
    if end is not None:
        require_int(end, "end", 1)
    require_choice(missing, "missing", MISSING_POLICIES)
    table = read_table(csv_path)
    # Checked against what the model file says before the model is loaded (see evaluate).
    description, _, model = describe_source(source, legacy_mix)
    chosen, end = _check_data(description, source, table, end, variables, missing)
    model = model or load_run(source, legacy_mix=legacy_mix)[0]
    config = model.crossformer_config
    history = _history(table, end, config["in_len"], missing)
    scaler = ScaleStatistic.from_dict(model.scale_statistic)  # a Keras model's or a deployment artifact's
    normalised = scaler.normalize(history).astype(model.compute_dtype)[None]
    predicted = scaler.denormalize(np.asarray(model.predict_on_batch(normalised))[0].astype(np.float64))
    truth = table.values[end:end + config["out_len"]] if end + config["out_len"] <= len(table.values) else None
    result = Forecast(predicted, future_stamps(table.stamps[:end], config["out_len"]), table.names, truth,
                      (end - config["in_len"], end - 1))
    outputs = [(output, lambda tmp: Path(tmp).write_text(forecast_csv(result)))]
    if plot:
        outputs.append((plot, lambda tmp: plot_forecast(tmp, table.stamps[:end], history, result, chosen)))
    atomic_write_all(outputs)
    log(_summary(result, config, table.stamps[end - 1], csv_path, output, plot))
    return result


def _summary(result, config, last_stamp, csv_path, output, plot):
    first, last = result.history_rows
    message = f"forecast of {config['out_len']} steps after {last_stamp} (history rows {first}..{last} of " \
              f"{Path(csv_path).name}) -> {output}"
    if result.truth is not None and np.isnan(result.truth).any():
        message += "; the truth has missing values, so it is not compared"
    elif result.truth is not None:
        message += f"; against the known truth: MAE {np.mean(np.abs(result.values - result.truth)):.4f}, MSE " \
                   f"{np.mean((result.values - result.truth) ** 2):.4f} (data scale)"
    if plot:
        message += f"; plot -> {plot}"
    return message


def forecast_csv(result):
    """The forecast as CSV text: a date column, then one column per variable (full float64 precision)."""
    lines = ["date," + ",".join(result.names)] + [f"{stamp}," + ",".join(repr(float(v)) for v in row)
                                                  for stamp, row in zip(result.stamps, result.values)]
    return "\n".join(lines) + "\n"


def plot_forecast(path, stamps, history, result, chosen):
    """A PNG of history, forecast and (when known) truth for the ``chosen`` variables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps_back = np.arange(-len(history) + 1, 1)
    steps_ahead = np.arange(1, len(result.values) + 1)
    figure, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.8 * len(chosen)), squeeze=False)
    for axis, name in zip(axes[:, 0], chosen):
        column = result.names.index(name)
        axis.plot(steps_back, history[:, column], color="0.35", label="history")
        axis.plot(steps_ahead, result.values[:, column], color="tab:blue", label="forecast")
        if result.truth is not None:
            axis.plot(steps_ahead, result.truth[:, column], color="tab:orange", linestyle="--", label="truth")
        axis.axvline(0.5, color="0.7", linewidth=0.8)
        axis.set_ylabel(name)
        axis.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel(f"steps relative to {stamps[-1]}")
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
