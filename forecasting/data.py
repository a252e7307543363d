"""The original pipeline's data semantics (docs/pipeline.md#data-splits-scaler-windows; the original is
data/data_loader.py, Dataset_MTS).

CSV with the first (date) column dropped and every other column a variable; split borders so that validation
and test inputs start in_len before their block; a scaler fit on the training rows (population std, ddof=0)
applied to the whole frame; windows of stride 1.
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import ConfigError, DataError
from keras_model.scaling import ScaleStatistic

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


def read_table(path):
    """(values float64 [rows, variables], variable names, first-column stamps) of a CSV whose first column is
    the date; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path} is empty") from None
        rows = [row for row in reader if row]
    if len(header) < 2 or not rows:
        raise DataError(f"{path} needs a date column, at least one variable and one row")
    ragged = next((number for number, row in enumerate(rows, start=2) if len(row) != len(header)), None)
    if ragged is not None:
        raise DataError(f"{path}: row {ragged} has {len(rows[ragged - 2])} columns, the header {len(header)}")
    try:
        values = np.asarray([row[1:] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise DataError(f"{path}: non-numeric value ({error})") from None
    return values, header[1:], [row[0] for row in rows]


def read_series(path):
    """The CSV's values as float64 [rows, variables] with the first (date) column dropped, and the column names."""
    values, names, _ = read_table(path)
    return values, names


def parse_split(text):
    """'0.7,0.1,0.2' or '8640,2880,2880' -> numbers (the original eval()s each part; this only parses)."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        values = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--data_split {text!r}: expected three numbers, ratios or row counts") from None
    if len(values) != 3 or min(values) < 0:
        raise ConfigError(f"--data_split {text!r}: expected three non-negative numbers")
    return values


def resolve_split(data_split=None, dataset=None, csv_path=None):
    """The split a job uses: ``data_split`` when given (text such as '0.7,0.1,0.2' or a sequence), else the
    named dataset's, else the one the original uses for a file of this name, else 0.7/0.1/0.2."""
    if data_split is not None and data_split != "":
        return parse_split(data_split) if isinstance(data_split, str) else list(data_split)
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
    """One split's normalised rows and its windows (x = rows[i:i+in_len], y = the next out_len rows)."""

    values: np.ndarray  # float64 [rows, D], already scaled
    in_len: int
    out_len: int

    def __len__(self):
        return max(len(self.values) - self.in_len - self.out_len + 1, 0)

    def window(self, index):
        x = self.values[index:index + self.in_len]
        return x, self.values[index + self.in_len:index + self.in_len + self.out_len]

    def windows(self, start, stop):
        """x [n, in_len, D], y [n, out_len, D] for windows start..stop-1 (stride 1)."""
        return self.windows_at(np.arange(start, stop))

    def windows_at(self, indices):
        """x [n, in_len, D], y [n, out_len, D] for the windows starting at ``indices``."""
        index = np.asarray(indices)[:, None]
        return self.values[index + np.arange(self.in_len)], self.values[index + self.in_len + np.arange(self.out_len)]


def load_split(path, part, in_len, out_len, data_split=DEFAULT_SPLIT, scale_statistic=None):
    """(SeriesSplit, ScaleStatistic) for the 'train' / 'val' / 'test' part of a CSV, as Dataset_MTS builds it.

    With ``scale_statistic`` (a {'mean', 'std'} dict, e.g. a checkpoint's) the scaler is not refit."""
    values, _ = read_series(path)
    (train_start, train_end), *_ = blocks = borders(len(values), in_len, data_split)
    if scale_statistic is not None:
        scaler = ScaleStatistic(np.asarray(scale_statistic["mean"], np.float64),
                                np.asarray(scale_statistic["std"], np.float64))
        if scaler.mean.shape != (values.shape[1],):
            raise ConfigError(f"the scale statistic has {scaler.mean.shape[0]} variables but {path} has "
                              f"{values.shape[1]}")
    else:
        scaler = ScaleStatistic.fit(values[train_start:train_end])
    start, end = blocks[SPLIT_PARTS[part]]
    if start < 0:
        raise ConfigError(f"in_len={in_len} is longer than the training block ({blocks[0][1]} rows)")
    return SeriesSplit(scaler.normalize(values)[start:end], in_len, out_len), scaler


def check_variable_count(found, data_dim, source, expected_by="the model has"):
    """ConfigError when data with ``found`` variables does not fit a model of ``data_dim`` variables."""
    if found != data_dim:
        raise ConfigError(f"{source} has {found} variables but {expected_by} {data_dim}")


def first_test_windows(csv_path, model_config, count, data_split, scale_statistic=None):
    """The inputs x [count, in_len, D] of the first ``count`` test windows of a CSV, normalised as the
    original pipeline does (with ``scale_statistic`` when given, else fit on the training rows)."""
    split, _ = load_split(csv_path, "test", model_config["in_len"], model_config["out_len"], data_split,
                          scale_statistic)
    check_variable_count(split.values.shape[1], model_config["data_dim"], csv_path)
    if len(split) < count:
        raise ConfigError(f"{csv_path} has {len(split)} test windows, fewer than --samples {count}")
    return split.windows(0, count)[0]
