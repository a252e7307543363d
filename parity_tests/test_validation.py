"""Bad input, command by command: each case ends with exit 2 and one line on stderr that names the problem
(`crossformer CMD: error: ...`), no traceback, and nothing written."""
import math

import numpy as np
import pytest

import keras_model
from forecasting.data import load_split
from forecasting.table import read_table
from forecasting.validation import complete_window_starts, forward_fill

from conftest import ETTH1_CSV, ETTH1_FOLDER

LINES = ETTH1_CSV.read_text().splitlines()
SLICE = LINES[:301]  # header + 300 hourly rows: 0.7/0.1/0.2 -> train rows 0..209, test block rows 216..299
SMALL = dict(data_dim=7, in_len=24, out_len=12, seg_len=6, win_size=2, factor=2, d_model=8, d_ff=8, n_heads=2,
             e_layers=1)


def with_cell(lines, row, column, text):
    """A copy of CSV ``lines`` with data row ``row`` (0-based, after the header), column ``column`` set."""
    lines = list(lines)
    cells = lines[row + 1].split(",")
    cells[column] = text
    lines[row + 1] = ",".join(cells)
    return lines


# name -> file content (str lines or bytes)
FILES = {
    "slice.csv": SLICE,
    "gap_train.csv": with_cell(SLICE, 10, 7, ""),  # row 10 = line 12, OT
    "gap_test.csv": with_cell(SLICE, 250, 3, "NaN"),  # in the test block: line 252, MUFL
    "gap_history.csv": with_cell(SLICE, 290, 7, "NA"),  # in predict's history (rows 276..299)
    "gap_first.csv": with_cell(SLICE, 0, 2, ""),  # a leading gap: nothing to carry forward
    "text_cell.csv": with_cell(SLICE, 3, 7, "abc"),
    "inf_cell.csv": with_cell(SLICE, 3, 1, "inf"),
    "bad_date.csv": with_cell(SLICE, 4, 0, "yesterday"),
    "no_date.csv": [",".join(line.split(",")[1:]) for line in SLICE],
    "duplicate.csv": [SLICE[0].replace("HULL", "HUFL")] + SLICE[1:],
    "unnamed.csv": [SLICE[0].replace("HULL", "")] + SLICE[1:],
    "semicolons.csv": [line.replace(",", ";") for line in SLICE],
    "ragged.csv": SLICE[:3] + [SLICE[3].rsplit(",", 1)[0]] + SLICE[4:],
    "header_only.csv": SLICE[:1],
    "empty.csv": [],
    "latin1.csv": (SLICE[0].replace("OT", "Temp\xe9rature") + "\n" + "\n".join(SLICE[1:]) + "\n").encode("latin-1"),
    "binary.csv": bytes(range(256)) * 8,
    "five_columns.csv": [",".join(line.split(",")[:6]) for line in SLICE],
    "short.csv": SLICE[:41],  # 40 rows: no window of 24 + 12 in the test block
    "constant.csv": [SLICE[0]] + [",".join(line.split(",")[:7] + ["1.0"]) for line in SLICE[1:]],
    "gappy_windows.csv": [SLICE[0]] + [line if row % 20 else ",".join(line.split(",")[:7] + [""])
                                       for row, line in enumerate(SLICE[1:])],  # a gap every 20 rows
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for name, content in FILES.items():
        data = content if isinstance(content, bytes) else ("\n".join(content) + "\n" if content else "")
        (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)
    (folder / "a_folder.csv").mkdir()
    model = keras_model.Crossformer(**SMALL)
    values = np.asarray([line.split(",")[1:] for line in SLICE[1:211]], np.float64)
    model.scale_statistic = {"mean": values.mean(0), "std": values.std(0)}
    model.save(folder / "small.keras")
    (folder / "existing.json").write_text("{}\n")
    (folder / "damaged.tflite").write_bytes(bytes(range(256)) * 4)
    return folder


TRAIN = ["train", "--data", "slice", "--root-path", "{in}", "--data-path", "slice.csv", "--in-len", "24", "--out-len",
         "12", "--seg-len", "6", "--d-model", "8", "--d-ff", "8", "--n-heads", "2", "--e-layers", "1",
         "--checkpoints", "{out}/runs", "--verbose", "0"]
EVALUATE = ["evaluate", "{in}/small.keras", "--json", "{out}/m.json", "--data"]
PREDICT = ["predict", "{in}/small.keras", "-o", "{out}/f.csv", "--input"]
PARITY = ["parity", str(ETTH1_FOLDER), "--samples", "2", "--json", "{out}/p.json"]

CASES = [  # (id, argv, what the message must say)
    # train: arguments
    ("train-lr-negative", TRAIN + ["--learning-rate", "-1"], "--learning_rate must be > 0, got -1.0"),
    ("train-lr-zero", TRAIN + ["--learning-rate", "0"], "--learning_rate must be > 0"),
    ("train-lr-nan", TRAIN + ["--learning-rate", "nan"], "--learning_rate must be a finite number"),
    ("train-batch-size", TRAIN + ["--batch-size", "0"], "--batch_size must be >= 1, got 0"),
    ("train-epochs", TRAIN + ["--train-epochs", "0"], "--train_epochs must be >= 1"),
    ("train-patience", TRAIN + ["--patience", "0"], "--patience must be >= 1"),
    ("train-itr", TRAIN + ["--itr", "-2"], "--itr must be >= 1"),
    ("train-num-workers", TRAIN + ["--num_workers", "-1"], "--num_workers must be >= 0"),
    ("train-seed-negative", TRAIN + ["--seed", "-1"], "--seed must be >= 0"),
    ("train-seed-too-large", TRAIN + ["--seed", str(2 ** 32)], "--seed must be <= 4294967295"),
    ("train-lradj", TRAIN + ["--lradj", "typ1"], "--lradj must be one of type1, type2, fixed, got 'typ1'"),
    ("train-dropout", TRAIN + ["--dropout", "1.5"], "dropout must be in [0, 1)"),
    ("train-in-len-zero", TRAIN + ["--in-len", "0"], "in_len must be >= 1"),
    ("train-heads", TRAIN + ["--n-heads", "16"], "n_heads=16 exceeds d_model=8"),
    ("train-in-len-not-int", TRAIN + ["--in-len", "2x"], "argument --in_len/--in-len: invalid int value: '2x'"),
    ("train-backend", TRAIN + ["--backend", "theano"], "argument --backend: invalid choice: 'theano'"),
    ("train-distribute-choice", TRAIN + ["--distribute", "model"], "argument --distribute: invalid choice: 'model'"),
    ("train-missing-choice", TRAIN + ["--missing", "zero"], "argument --missing: invalid choice: 'zero'"),
    ("train-unknown-flag", TRAIN + ["--epochs", "3"], "unrecognized arguments: --epochs 3"),
    ("train-split-two", TRAIN + ["--data-split", "0.7,0.3"], "--data_split 0.7,0.3: expected three numbers"),
    ("train-split-ratios", TRAIN + ["--data-split", "0.8,0.1,0.5"], "train and test ratios add up to more than 1"),
    ("train-split-rows", TRAIN + ["--data-split", "1000,100,100"], "needs 1200 rows but the data has 300"),
    ("train-split-fractional-rows", TRAIN + ["--data-split", "100.5,50,50"], "must be whole numbers"),
    ("train-data-dim", TRAIN + ["--data-dim", "5"], "has 7 variables but --data_dim is 5"),
    ("train-in-len-too-long", TRAIN + ["--in-len", "240"], "in_len=240 is longer than the training block (210 rows)"),
    ("train-no-val-window", TRAIN + ["--out-len", "60"], "the val split (54 rows, lines 188..241) holds no window"),
    # train: data
    ("train-no-file", TRAIN + ["--data-path", "nothing.csv"], "nothing.csv: no such data file"),
    ("train-gap", TRAIN + ["--data-path", "gap_train.csv"], "gap_train.csv line 12, column OT: missing value"),
    ("train-ffill-leading-gap", TRAIN + ["--data-path", "gap_first.csv", "--missing", "ffill"],
     "line 2, column HULL: missing value with no earlier value in its column to carry forward"),
    ("train-constant-column", TRAIN + ["--data-path", "constant.csv"], "column OT is constant over the training rows"),
    ("train-text-cell", TRAIN + ["--data-path", "text_cell.csv"], "line 5, column OT: 'abc' is not a number"),
    # evaluate
    ("evaluate-batch-size", EVALUATE + ["{in}/slice.csv", "--batch-size", "0"], "--batch_size must be >= 1"),
    ("evaluate-no-checkpoint", ["evaluate", "{in}/none", "--data", "{in}/slice.csv", "--json", "{out}/m.json"],
     "no such checkpoint folder, .keras file or exported artifact"),
    ("evaluate-variables", EVALUATE + ["{in}/five_columns.csv"],
     "five_columns.csv has 5 variables but the model has 7"),
    ("evaluate-gap", EVALUATE + ["{in}/gap_test.csv"], "gap_test.csv line 252, column MUFL: missing value"),
    ("evaluate-all-windows-dropped", EVALUATE + ["{in}/gappy_windows.csv", "--missing", "drop-windows"],
     "has no complete window: all 49 touch a missing value"),
    ("evaluate-short", EVALUATE + ["{in}/short.csv"], "the test split (32 rows, lines 10..41) holds no window"),
    ("evaluate-split", EVALUATE + ["{in}/slice.csv", "--data-split", "0.5,0.1,0.6"], "add up to more than 1"),
    ("evaluate-json-suffix", ["evaluate", "{in}/small.keras", "--data", "{in}/slice.csv", "--json", "{out}/m.txt"],
     "m.txt: the output must end in .json"),
    ("evaluate-json-exists", ["evaluate", "{in}/small.keras", "--data", "{in}/slice.csv", "--json",
                              "{in}/existing.json"], "existing.json exists; pass --force to overwrite it"),
    ("evaluate-json-folder", ["evaluate", "{in}/small.keras", "--data", "{in}/slice.csv", "--json",
                              "{out}/no/m.json"], "is not an existing folder"),
    ("evaluate-latin1", EVALUATE + ["{in}/latin1.csv"], "latin1.csv is not UTF-8 text (byte 0xe9 on line 1)"),
    ("evaluate-binary", EVALUATE + ["{in}/binary.csv"], "binary.csv is not a text file (a NUL byte on line 1)"),
    ("evaluate-empty", EVALUATE + ["{in}/empty.csv"], "empty.csv is empty"),
    ("evaluate-header-only", EVALUATE + ["{in}/header_only.csv"], "has a header but no data rows"),
    ("evaluate-folder", EVALUATE + ["{in}/a_folder.csv"], "a_folder.csv is a folder, not a CSV file"),
    # predict
    ("predict-end-short", PREDICT + ["{in}/slice.csv", "--end", "10"], "--end 10: the history needs 24 rows"),
    ("predict-end-beyond", PREDICT + ["{in}/slice.csv", "--end", "301"], "--end 301: the history needs 24 rows"),
    ("predict-end-zero", PREDICT + ["{in}/slice.csv", "--end", "0"], "--end must be >= 1, got 0"),
    ("predict-variables-unknown", PREDICT + ["{in}/slice.csv", "--variables", "OT,XX"], "--variables: XX not among"),
    ("predict-variables-empty", PREDICT + ["{in}/slice.csv", "--variables", "OT,,HUFL"], "an empty name"),
    ("predict-variables-twice", PREDICT + ["{in}/slice.csv", "--variables", "OT,OT"], "OT given twice"),
    ("predict-output-suffix", ["predict", "{in}/small.keras", "--input", "{in}/slice.csv", "-o", "{out}/f.txt"],
     "f.txt: the output must end in .csv"),
    ("predict-plot-suffix", PREDICT + ["{in}/slice.csv", "--plot", "{out}/p.jpg"],
     "p.jpg: the output must end in .png"),
    ("predict-no-input", ["predict", "{in}/small.keras", "-o", "{out}/f.csv"],
     "the following arguments are required: --input"),
    ("predict-gap", PREDICT + ["{in}/gap_history.csv"], "gap_history.csv line 292, column OT: missing value"),
    ("predict-drop-windows-gap", PREDICT + ["{in}/gap_history.csv", "--missing", "drop-windows"],
     "cannot leave out predict's only window"),
    ("predict-bad-date", PREDICT + ["{in}/bad_date.csv"], "line 6, column date: 'yesterday' is not a date"),
    ("predict-no-date", PREDICT + ["{in}/no_date.csv"], "the first column (HUFL) holds numbers"),
    ("predict-duplicate", PREDICT + ["{in}/duplicate.csv"], "column name 'HUFL' appears twice (columns 2 and 3)"),
    ("predict-unnamed", PREDICT + ["{in}/unnamed.csv"], "column 3 of the header has no name"),
    ("predict-semicolons", PREDICT + ["{in}/semicolons.csv"], "separated by semicolons instead of commas"),
    ("predict-ragged", PREDICT + ["{in}/ragged.csv"], "ragged.csv line 4 has 7 columns, the header 8"),
    ("predict-inf", PREDICT + ["{in}/inf_cell.csv"], "line 5, column HUFL: 'inf' is not a finite number"),
    ("predict-variables", PREDICT + ["{in}/five_columns.csv"], "has 5 variables but the model has 7"),
    # parity (the SRC checkpoint: ETTh1, in_len 96, 7 variables, split 8640/2880/2880)
    ("parity-samples", PARITY + ["--samples", "0"], "--samples must be >= 1, got 0"),
    ("parity-batch", PARITY + ["--batch", "0"], "--batch must be >= 1, got 0"),
    ("parity-seed", PARITY + ["--seed", "-3"], "--seed must be >= 0"),
    ("parity-json-suffix", ["parity", str(ETTH1_FOLDER), "--json", "{out}/p.txt"], "the output must end in .json"),
    ("parity-data-rows", PARITY + ["--data", "{in}/slice.csv"], "needs 14400 rows but the data has 300"),
    ("parity-data-variables", PARITY + ["--data", "{in}/five_columns.csv"], "has 5 variables but the model has 7"),
    # export (format, quantization and output are checked before the source is converted)
    ("export-format", ["export", str(ETTH1_FOLDER), "--format", "coreml", "-o", "{out}/m.onnx"],
     "unknown format 'coreml'"),
    ("export-quantize", ["export", str(ETTH1_FOLDER), "--format", "saved_model", "--quantize", "dynamic", "-o",
                         "{out}/sm"], "--quantize dynamic is not available for saved_model"),
    ("export-suffix", ["export", str(ETTH1_FOLDER), "--format", "onnx", "-o", "{out}/m.tflite"],
     "the output must end in .onnx"),
    ("export-no-source", ["export", "{in}/none", "--format", "onnx", "-o", "{out}/m.onnx"],
     "none: no such file or directory"),
    ("export-not-a-model", ["export", "{in}/slice.csv", "--format", "onnx", "-o", "{out}/m.onnx"],
     "slice.csv is not a PyTorch checkpoint"),
    ("evaluate-damaged-artifact", ["evaluate", "{in}/damaged.tflite", "--data", "{in}/slice.csv", "--json",
                                   "{out}/m.json"], "damaged.tflite"),
    # summary, the top level
    ("summary-depth", ["summary", str(ETTH1_FOLDER), "--depth", "-1"], "--depth must be >= 0, got -1"),
    ("no-command", [], "the following arguments are required: COMMAND"),
    ("unknown-command", ["fit"], "argument COMMAND: invalid choice: 'fit'"),
]


def run_command(capfd, argv):
    from crossformer.main import main

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's errors end the parse with SystemExit
        code = exit_.code
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, expected, inputs, tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)  # evaluate's default results/ would land here
    before = sorted(p.name for p in inputs.iterdir())
    argv = [a.replace("{in}", str(inputs)).replace("{out}", str(out)) for a in argv]
    code, stdout, err = run_command(capfd, argv)
    command = argv[0] if argv and argv[0] in ("train", "evaluate", "predict", "parity", "summary", "export") else ""
    assert code == 2, (code, stdout, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"crossformer {command}: error: ".replace(" :", ":")), err
    assert expected in err, err
    assert sorted(tmp_path.iterdir()) == [out] and not any(out.iterdir()), list(tmp_path.rglob("*"))
    assert sorted(p.name for p in inputs.iterdir()) == before and (inputs / "existing.json").read_text() == "{}\n"


def test_the_table_covers_every_command_forty_times_over():
    per_command = {}
    for _, argv, _ in CASES:
        per_command[argv[0] if argv else "(none)"] = per_command.get(argv[0] if argv else "(none)", 0) + 1
    commands = ("train", "evaluate", "predict", "parity", "export")
    assert len(CASES) >= 40 and all(per_command.get(c, 0) >= 5 for c in commands), per_command


# ------------------------------------------------------------------------------------------ what is accepted
def test_missing_policies_fill_forward_and_drop_exactly_the_windows_that_touch_a_gap(inputs):
    table = read_table(inputs / "gappy_windows.csv")
    assert np.isnan(table.values[::20, 6]).all() and not np.isnan(np.delete(table.values, np.s_[::20], 0)).any()
    filled = forward_fill(table.values)
    assert filled[20, 6] == table.values[19, 6] and math.isnan(filled[0, 6])  # carried down; nothing above row 0
    starts = complete_window_starts(np.array([[0.0], [np.nan], [0], [0], [0], [np.nan], [0], [0], [0]]), 2, 1)
    assert starts.tolist() == [2, 6]  # windows of 3 rows inside the gaps at rows 1 and 5
    split, scaler = load_split(inputs / "gap_test.csv", "test", 24, 12, [0.7, 0.1, 0.2], missing="drop-windows")
    assert len(split) + split.dropped == 49 and split.dropped == 35  # row 250 = block row 34: windows 0..34 hold it
    assert not np.isnan(split.windows(0, len(split))[0]).any()
    ffilled, _ = load_split(inputs / "gap_test.csv", "test", 24, 12, [0.7, 0.1, 0.2], missing="ffill")
    assert len(ffilled) == 49 and not np.isnan(ffilled.values).any()


def test_a_gap_outside_the_rows_used_is_no_error_and_blank_lines_are_skipped(inputs, tmp_path, capfd):
    code, _, err = run_command(capfd, ["predict", str(inputs / "small.keras"), "--input", str(inputs / "gap_train.csv"),
                                       "-o", str(tmp_path / "f.csv")])
    assert code == 0, err  # the gap is at row 10, the history rows 276..299
    table = read_table(inputs / "slice.csv")
    (tmp_path / "blank.csv").write_text("\n".join(SLICE[:5] + [""] + SLICE[5:]) + "\n\n")
    with_blank = read_table(tmp_path / "blank.csv")
    np.testing.assert_array_equal(with_blank.values, table.values)
    assert with_blank.lines[4] == 7 and table.lines[4] == 6  # messages name the file's own line numbers
