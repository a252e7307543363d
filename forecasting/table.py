"""Reading a data CSV as the original does (first column the date, every other column a variable), refusing
what it cannot use with one line that names the file, the line and the column.

Missing values are kept as NaN: whether they matter depends on the rows a command uses, which the command
decides (forecasting.validation). What counts as missing is what pandas.read_csv, the original's reader,
reads as NaN.
"""
import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from converter.errors import DataError

# pandas.read_csv's default na_values (pandas/_libs/parsers.pyx, STR_NA_VALUES): the original reads these as NaN.
MISSING_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
DATE_EXAMPLE = "2016-07-01 00:00:00"


@dataclass
class Table:
    """A data CSV: ``values`` float64 [rows, variables] (NaN where a cell is missing), the variable ``names``,
    the first column's ``stamps`` (text), and ``lines``, the file line of each row (the header is line 1)."""

    path: Path
    values: np.ndarray
    names: list
    stamps: list
    lines: np.ndarray

    def where(self, row, column=None):
        """'line N' (and ', column NAME') of a data row: how messages point into the file."""
        place = f"{self.path} line {self.lines[row]}"
        return place if column is None else f"{place}, column {self.names[column]}"


def _text(path):
    """The file's text (UTF-8, a byte-order mark allowed); DataError when it is missing, unreadable or binary."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file")
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if not raw.strip():
        raise DataError(f"{path} is empty")
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        raise DataError(f"{path} is not a text file (a NUL byte on line {line})")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line}); save it as "
                        "UTF-8 CSV") from None


def _check_header(path, header):
    if len(header) < 2:
        hint = next((f" (is it separated by {name} instead of commas?)" for mark, name in
                     ((";", "semicolons"), ("\t", "tabs")) if mark in header[0]), "")
        raise DataError(f"{path}: the header has {len(header)} column; a date column and at least one variable "
                        f"column are needed{hint}")
    for number, name in enumerate(header, start=1):
        if not name.strip():
            raise DataError(f"{path}: column {number} of the header has no name")
        if header.index(name) + 1 != number:
            raise DataError(f"{path}: column name {name!r} appears twice (columns {header.index(name) + 1} and "
                            f"{number})")


def _rows(path, text):
    """(header, [(line, cells)]) with blank lines skipped; DataError for a row of the wrong width."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: not valid CSV ({error})") from None
    _check_header(path, header)
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(f"{path} line {line} has {len(row)} columns, the header {len(header)}")
    return header, rows


def _cell(path, line, name, text):
    """One cell as float64: NaN when missing; DataError for text that is not a finite number."""
    if text.strip() in MISSING_MARKERS:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path} line {line}, column {name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path} line {line}, column {name}: {text!r} is not a finite number")
    return value


def _values(path, header, rows):
    cells = [row[1:] for _, row in rows]
    try:  # the fast path: every cell a number (NumPy parses 'nan' as NaN, which is what pandas reads too)
        values = np.asarray(cells, dtype=np.float64)
        if np.isfinite(values[~np.isnan(values)]).all():
            return values
    except ValueError:
        pass
    return np.asarray([[_cell(path, line, name, text) for name, text in zip(header[1:], row[1:])]
                       for line, row in rows], dtype=np.float64)


def _check_dates(path, header, rows):
    """The first column must be the timestamp: numbers there mean the date column is missing."""
    for line, row in rows:
        text = row[0].strip()
        if _is_date(text):
            continue
        if _is_number(text):
            raise DataError(f"{path}: the first column ({header[0]}) holds numbers ({text!r} on line {line}), not "
                            "dates; the first column must be the timestamp (it is not a variable)")
        raise DataError(f"{path} line {line}, column {header[0]}: {text!r} is not a date (ISO 8601, e.g. "
                        f"{DATE_EXAMPLE})")


def _is_date(text):
    try:
        datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_table(path):
    """The Table of a CSV whose first column is the date; blank lines are skipped. DataError (one line naming
    the file, line and column) for anything that is not such a table."""
    path = Path(path)
    header, rows = _rows(path, _text(path))
    _check_dates(path, header, rows)
    values = _values(path, header, rows)
    return Table(path, values, header[1:], [row[0] for _, row in rows], np.asarray([line for line, _ in rows]))
