"""The original pipeline's data semantics (docs/pipeline.md#data-splits-scaler-windows; the original is
data/data_loader.py, Dataset_MTS).

CSV with the first (date) column dropped and every other column a variable; split borders so that validation
and test inputs start in_len before their block; a scaler fit on the training rows (population std, ddof=0)
applied to the whole frame; windows of stride 1.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import CheckpointError, ConfigError, DataError
from keras_model.scaling import ScaleStatistic

from .table import read_table
from .validation import (apply_missing_policy, check_scaler_rows, check_split, check_variable_count,
                         complete_window_starts)

# --data names the original knows: file, variables, split (counts, or ratios when <= 1).
NAMED_DATASETS = {
    "ETTh1": ("ETTh1.csv", 7, (8640, 2880, 2880)),
    "ETTm1": ("ETTm1.csv", 7, (34560, 11520, 11520)),
    "WTH": ("WTH.csv", 12, (20160, 7200, 7200)),
    "ECL": ("ECL.csv", 321, (10800, 2160, 2880)),
    "ILI": ("national_illness.csv", 7, (0.7, 0.1, 0.2)),
    "Traffic": ("traffic.csv", 862, (0.7, 0.1, 0.2)),
}
DEFAULT_SPLIT = (0.7, 0.1, 0.2)
SPLIT_PARTS = {"train": 0, "val": 1, "test": 2}  # the original's flag argument of Dataset_MTS


def read_series(path):
    """The CSV's values as float64 [rows, variables] with the first (date) column dropped, and the column names."""
    table = read_table(path)
    return table.values, table.names


def parse_split(text):
    """'0.7,0.1,0.2' or '8640,2880,2880' -> numbers (the original eval()s each part; this only parses)."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        values = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--data_split {text}: expected three numbers, ratios or row counts") from None
    return check_split(values, text)


def resolve_split(data_split=None, dataset=None, csv_path=None):
    """The split a job uses: ``data_split`` when given (text such as '0.7,0.1,0.2' or a sequence), else the
    named dataset's, else the one the original uses for a file of this name, else 0.7/0.1/0.2."""
    if data_split is not None and data_split != "":
        return parse_split(data_split) if isinstance(data_split, str) else check_split(list(data_split))
    if dataset in NAMED_DATASETS:
        return list(NAMED_DATASETS[dataset][2])
    for file_name, _, split in NAMED_DATASETS.values():
        if csv_path is not None and Path(csv_path).name == file_name:
            return list(split)
    return list(DEFAULT_SPLIT)


def split_sizes(n_rows, data_split):
    """(train, val, test) row counts: absolute counts if the first entry is > 1, else ratios."""
    if data_split[0] > 1:
        sizes = tuple(int(v) for v in data_split)
    else:
        train, test = int(n_rows * data_split[0]), int(n_rows * data_split[2])
        sizes = (train, n_rows - train - test, test)
    if sum(sizes) > n_rows or min(sizes) < 0:
        raise ConfigError(f"data split {list(data_split)} needs {sum(sizes)} rows but the data has {n_rows}")
    return sizes


def borders(n_rows, in_len, data_split):
    """[(start, end)] rows of the train / val / test blocks; val and test start in_len early."""
    train, val, test = split_sizes(n_rows, data_split)
    starts = [0, train - in_len, train + val - in_len]
    ends = [train, train + val, train + val + test]
    return list(zip(starts, ends))


@dataclass
class SeriesSplit:
    """One split's normalised rows and its windows (x = rows[i:i+in_len], y = the next out_len rows). With
    ``starts`` only the windows starting at those rows exist (--missing drop-windows); ``dropped`` counts
    the windows left out."""

    values: np.ndarray  # float64 [rows, D], already scaled
    in_len: int
    out_len: int
    starts: np.ndarray = None
    dropped: int = 0

    def __len__(self):
        if self.starts is not None:
            return len(self.starts)
        return max(len(self.values) - self.in_len - self.out_len + 1, 0)

    def window(self, index):
        x, y = self.windows_at([index])
        return x[0], y[0]

    def windows(self, start, stop):
        """x [n, in_len, D], y [n, out_len, D] for windows start..stop-1 (stride 1)."""
        return self.windows_at(np.arange(start, stop))

    def windows_at(self, indices):
        """x [n, in_len, D], y [n, out_len, D] for the windows numbered ``indices``."""
        index = np.asarray(indices)[:, None]
        if self.starts is not None:
            index = self.starts[index]
        return self.values[index + np.arange(self.in_len)], self.values[index + self.in_len + np.arange(self.out_len)]


def _given_scaler(scale_statistic, table):
    scaler = ScaleStatistic(np.asarray(scale_statistic["mean"], np.float64),
                            np.asarray(scale_statistic["std"], np.float64))
    if scaler.mean.shape != (table.values.shape[1],):
        raise ConfigError(f"the scale statistic has {scaler.mean.shape[0]} variables but {table.path} has "
                          f"{table.values.shape[1]}")
    if not (np.isfinite(scaler.mean).all() and np.isfinite(scaler.std).all() and (scaler.std > 0).all()):
        raise CheckpointError("the checkpoint's scale statistic has a non-finite mean or a std that is not > 0")
    return scaler


def _fitted_scaler(table, values, start, end):
    check_scaler_rows(table, values, start, end)
    rows = values[start:end]
    if np.isnan(rows).any():  # --missing drop-windows: the observed values' statistic
        return ScaleStatistic(np.nanmean(rows, axis=0), np.nanstd(rows, axis=0))
    return ScaleStatistic.fit(rows)


def _split(table, normalised, part, block, in_len, out_len, drop):
    start, end = block
    values = normalised[start:end]
    split = SeriesSplit(values, in_len, out_len)
    if drop and np.isnan(values).any():
        starts = complete_window_starts(values, in_len, out_len)
        split = SeriesSplit(values, in_len, out_len, starts, len(split) - len(starts))
    if len(split) == 0:
        where = f"{table.path}: the {part} split ({end - start} rows"
        if end > start:
            where += f", lines {table.lines[start]}..{table.lines[end - 1]}"
        if split.dropped:
            raise DataError(f"{where}) has no complete window: all {split.dropped} touch a missing value "
                            "(--missing drop-windows)")
        raise DataError(f"{where}) holds no window of in_len {in_len} + out_len {out_len} rows")
    return split


def load_splits(path, in_len, out_len, data_split=DEFAULT_SPLIT, parts=tuple(SPLIT_PARTS), scale_statistic=None,
                missing="error", purpose="this command", table=None):
    """({part: SeriesSplit}, ScaleStatistic) for the 'train' / 'val' / 'test' parts of a CSV, as Dataset_MTS
    builds them, with missing values handled by the ``missing`` policy (forecasting.validation).

    With ``scale_statistic`` (a {'mean', 'std'} dict, e.g. a checkpoint's) the scaler is not refit."""
    table = table if table is not None else read_table(path)
    blocks = borders(len(table.values), in_len, data_split)
    if any(blocks[SPLIT_PARTS[part]][0] < 0 for part in parts):
        raise ConfigError(f"in_len={in_len} is longer than the training block ({blocks[0][1]} rows)")
    used = [blocks[SPLIT_PARTS[part]] for part in parts] + ([blocks[0]] if scale_statistic is None else [])
    values = apply_missing_policy(table, missing, used, purpose)
    if scale_statistic is not None:
        scaler = _given_scaler(scale_statistic, table)
    else:
        scaler = _fitted_scaler(table, values, *blocks[0])
    normalised = scaler.normalize(values)
    splits = {part: _split(table, normalised, part, blocks[SPLIT_PARTS[part]], in_len, out_len,
                           missing == "drop-windows") for part in parts}
    return splits, scaler


def load_split(path, part, in_len, out_len, data_split=DEFAULT_SPLIT, scale_statistic=None, missing="error"):
    """(SeriesSplit, ScaleStatistic) of one part (see load_splits)."""
    splits, scaler = load_splits(path, in_len, out_len, data_split, (part,), scale_statistic, missing)
    return splits[part], scaler


def first_test_windows(csv_path, model_config, count, data_split, scale_statistic=None, missing="error"):
    """The inputs x [count, in_len, D] of the first ``count`` test windows of a CSV, normalised as the
    original pipeline does (with ``scale_statistic`` when given, else fit on the training rows)."""
    table = read_table(csv_path)
    check_variable_count(len(table.names), model_config["data_dim"], csv_path)
    splits, _ = load_splits(csv_path, model_config["in_len"], model_config["out_len"], data_split, ("test",),
                            scale_statistic, missing, "parity", table)
    if len(splits["test"]) < count:
        raise ConfigError(f"{csv_path} has {len(splits['test'])} test windows, fewer than --samples {count}")
    return splits["test"].windows(0, count)[0]
