"""`crossformer predict`: the out_len steps after a CSV's history, in the data's own scale, with continued
timestamps, a CSV and optionally a plot of history, forecast and (when the CSV has it) the truth."""
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from converter.atomic import atomic_write, check_output
from converter.errors import CheckpointError, ConfigError
from keras_model.scaling import ScaleStatistic

from .data import check_variable_count, read_table


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
    if last is None or before is None or last <= before:
        return [f"+{i}" for i in range(1, steps + 1)]
    return [str(last + (last - before) * i) for i in range(1, steps + 1)]


def forecast(source, csv_path, output, end=None, variables=None, plot=None, force=False, legacy_mix=False,
             log=print):
    """Forecast from the ``in_len`` rows before ``end`` (default: the CSV's last rows) and write the CSV
    ``output`` (and the PNG ``plot``, of ``variables``: default the last column). ``source`` is a .keras
    file, one of our run folders or an original checkpoint folder. Returns the Forecast."""
    from .runs import load_run

    output = check_output(output, force, suffix=".csv")
    if plot:
        check_output(plot, force, suffix=".png")
    model, _ = load_run(source, legacy_mix=legacy_mix)
    config = model.crossformer_config
    values, names, stamps = read_table(csv_path)
    end = end if end is not None else len(values)
    if not config["in_len"] <= end <= len(values):
        raise ConfigError(f"--end {end}: the history needs {config['in_len']} rows before it "
                          f"({csv_path} has {len(values)})")
    check_variable_count(len(names), config["data_dim"], csv_path)
    if model.scale_statistic is None:
        raise CheckpointError(f"{source} carries no scale statistic, so forecasts cannot be put back in the "
                              "data's scale")
    chosen = variables.split(",") if variables else [names[-1]]
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise ConfigError(f"--variables: {', '.join(unknown)} not among {', '.join(names)}")

    history = values[end - config["in_len"]:end]
    scaler = ScaleStatistic.from_dict(model.scale_statistic)  # a Keras model's or a deployment artifact's
    normalised = scaler.normalize(history).astype(model.compute_dtype)[None]
    predicted = scaler.denormalize(np.asarray(model.predict_on_batch(normalised))[0].astype(np.float64))
    truth = values[end:end + config["out_len"]] if end + config["out_len"] <= len(values) else None
    result = Forecast(predicted, future_stamps(stamps[:end], config["out_len"]), names, truth,
                      (end - config["in_len"], end - 1))
    if plot:
        atomic_write(plot, lambda tmp: plot_forecast(tmp, stamps[:end], history, result, chosen))
    atomic_write(output, lambda tmp: Path(tmp).write_text(forecast_csv(result)))
    message = f"forecast of {config['out_len']} steps after {stamps[end - 1]} (history rows {end - config['in_len']}" \
              f"..{end - 1} of {Path(csv_path).name}) -> {output}"
    if truth is not None:
        message += f"; against the known truth: MAE {np.mean(np.abs(predicted - truth)):.4f}, MSE " \
                   f"{np.mean((predicted - truth) ** 2):.4f} (data scale)"
    if plot:
        message += f"; plot -> {plot}"
    log(message)
    return result


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
