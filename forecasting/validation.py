"""What the pipeline refuses, in one place: training options outside their domain, splits that cannot be
built, data that does not fit the model, and missing values in the rows a command uses (with the --missing
policy that may fill or skip them). Every check raises ConfigError or DataError with one line naming the
argument, or the file, line and column.

--missing, per command (the rows a command uses: train all three blocks; evaluate the test block; predict
the history; parity --data the first test windows; plus the training rows whenever a scaler is fit):
- error (default): the first missing cell in those rows is named, nothing runs;
- ffill: each column is forward-filled down the whole file first (so a gap takes the last value observed
  before it, never a later one); a gap with no earlier value in its column is refused;
- drop-windows: every window whose input or target rows touch a missing cell is left out (the scaler is fit
  on the training rows' observed values); a command left with no window is refused. predict has one window,
  its history: drop-windows refuses a history with a gap (ffill fills it).
"""
import numpy as np

from converter.errors import ConfigError, DataError
from converter.validation import (MISSING_POLICIES, require_bool, require_choice, require_int, require_real,
                                  require_seed, require_text)

LR_SCHEDULE_NAMES = ("type1", "type2", "fixed")
JIT_COMPILE_VALUES = (False, True, "auto", None)  # None: off on one device, on when data-parallel (runs.train)
VERBOSE_LEVELS = (0, 1, 2)


def check_training_options(options):
    """Every TrainingOptions field within its domain (the model's own arguments are checked by
    keras_model.config when the configuration is validated)."""
    for name in ("data", "root_path", "data_path", "checkpoints"):
        require_text(getattr(options, name), name)
    for name in ("batch_size", "train_epochs", "patience", "itr"):
        require_int(getattr(options, name), name, 1)
    for name in ("num_workers", "gpu"):
        require_int(getattr(options, name), name, 0)
    require_real(options.learning_rate, "learning_rate", 0, low_open=True)
    # The original treats any other --lradj as "fixed": a typo (typ1) would silently train without a schedule.
    require_choice(options.lradj, "lradj", LR_SCHEDULE_NAMES)
    require_seed(options.seed, "seed", runs=options.itr)
    require_choice(options.missing, "missing", MISSING_POLICIES)
    require_choice(options.jit_compile, "jit_compile", JIT_COMPILE_VALUES)
    require_choice(options.verbose, "verbose", VERBOSE_LEVELS)
    for name in ("baseline", "save_pred", "use_gpu", "use_multi_gpu", "force", "resume"):
        require_bool(getattr(options, name), name)


def check_split(values, text=None):
    """Three numbers the original can split by: row counts (first > 1, all whole) or ratios (all in [0, 1],
    train + test <= 1; the original ignores the middle ratio, validation takes the rest)."""
    shown = f"--data_split {text if text is not None else ','.join(map(str, values))}"
    if len(values) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ConfigError(f"{shown}: expected three numbers, ratios or row counts")
    if not all(np.isfinite(values)) or min(values) < 0:
        raise ConfigError(f"{shown}: expected three non-negative numbers")
    if values[0] > 1:
        if any(float(v) != int(v) for v in values):
            raise ConfigError(f"{shown}: row counts (the first is > 1) must be whole numbers")
    elif max(values) > 1:
        raise ConfigError(f"{shown}: ratios (the first is <= 1) must all be <= 1")
    elif values[0] + values[2] > 1:
        raise ConfigError(f"{shown}: the train and test ratios add up to more than 1")
    return list(values)


def check_variable_count(found, data_dim, source, expected_by="the model has"):
    """ConfigError when data with ``found`` variables does not fit a model of ``data_dim`` variables."""
    if found != data_dim:
        raise ConfigError(f"{source} has {found} variables but {expected_by} {data_dim}")


def check_variables(text, names):
    """--variables: comma-separated column names of the file -> list (default: the last column)."""
    if text is None:
        return [names[-1]]
    chosen = [part.strip() for part in str(text).split(",")]
    if "" in chosen:
        raise ConfigError(f"--variables {text!r}: an empty name (two commas, or one at an end)")
    repeated = sorted({v for v in chosen if chosen.count(v) > 1})
    if repeated:
        raise ConfigError(f"--variables: {', '.join(repeated)} given twice")
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise ConfigError(f"--variables: {', '.join(unknown)} not among {', '.join(names)}")
    return chosen


# ------------------------------------------------------------------------------------------ missing values
def _first_missing(values, start, end):
    """(row, column, count) of the first NaN in rows [start, end), or None."""
    gaps = np.argwhere(np.isnan(values[start:end]))
    return None if len(gaps) == 0 else (start + gaps[0][0], gaps[0][1], len(gaps))


def forward_fill(values):
    """Each column's NaNs replaced by the last value above them (leading NaNs stay)."""
    rows = np.where(np.isnan(values), 0, np.arange(len(values))[:, None])
    np.maximum.accumulate(rows, axis=0, out=rows)
    return values[rows, np.arange(values.shape[1])]


def apply_missing_policy(table, policy, used, purpose):
    """The table's values ready for a command that reads rows ``used`` [(start, end), ...] for ``purpose``
    ("train", "evaluate", ...): checked (error), forward-filled (ffill) or left with NaNs whose windows the
    caller drops (drop-windows)."""
    require_choice(policy, "missing", MISSING_POLICIES)
    values = forward_fill(table.values) if policy == "ffill" else table.values
    if policy == "drop-windows":
        return values
    for start, end in used:
        found = _first_missing(values, start, end)
        if found is None:
            continue
        row, column, count = found
        if policy == "ffill":
            raise DataError(f"{table.where(row, column)}: missing value with no earlier value in its column to "
                            "carry forward (--missing ffill); fill it in the file or use --missing drop-windows")
        raise DataError(f"{table.where(row, column)}: missing value ({count} missing cells in the rows {purpose} "
                        f"uses, lines {table.lines[start]}..{table.lines[end - 1]}); fill them in the file, or pass "
                        "--missing ffill or --missing drop-windows")
    return values


def complete_window_starts(values, in_len, out_len):
    """Start rows of the windows (in_len + out_len rows) of a block that touch no missing value."""
    length = in_len + out_len
    gaps = np.concatenate([[0], np.cumsum(np.isnan(values).any(axis=1))])
    starts = np.arange(max(len(values) - length + 1, 0))
    return starts[gaps[starts + length] == gaps[starts]]


def check_scaler_rows(table, values, start, end):
    """The training rows a scaler is fit on must give every column a mean and a non-zero std."""
    for column in range(values.shape[1]):
        seen = values[start:end, column][~np.isnan(values[start:end, column])]
        lines = f"lines {table.lines[start]}..{table.lines[end - 1]}"
        if len(seen) == 0:
            raise DataError(f"{table.path}: column {table.names[column]} has no value in the training rows ({lines}), "
                            "so it cannot be normalised")
        if seen.min() == seen.max():
            raise DataError(f"{table.path}: column {table.names[column]} is constant over the training rows ({lines}): "
                            "its std is 0, so normalising it divides by zero")
