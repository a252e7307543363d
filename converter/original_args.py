"""The original main_crossformer.py command line (docs/pipeline.md#command-line-and-argsjson): every argument,
in args.json order, with its default. `crossformer train` takes them; `export-torch --folder` writes args.json
with them."""

STORE_TRUE, BOOL_VALUE = "store_true", "bool-value"  # a switch, and the original's `type=bool` --use_gpu
ORIGINAL_ARGUMENTS = [  # (name, type, default, help)
    ("data", str, "ETTh1", "dataset name (ETTh1, ETTm1, WTH, ECL, ILI, Traffic set file, D and split) or custom"),
    ("root_path", str, "./datasets/", "folder of the data file"),
    ("data_path", str, "ETTh1.csv", "data file (CSV, date column first)"),
    ("data_split", str, "0.7,0.1,0.2", "train/val/test split: ratios or row counts"),
    ("checkpoints", str, "./checkpoints/", "where the run's folder is written"),
    ("in_len", int, 96, "input length T"),
    ("out_len", int, 24, "forecast length tau"),
    ("seg_len", int, 6, "segment length"),
    ("win_size", int, 2, "segment merge window"),
    ("factor", int, 10, "routers per segment (c)"),
    ("data_dim", int, 7, "number of variables D"),
    ("d_model", int, 256, "hidden width"),
    ("d_ff", int, 512, "MLP width"),
    ("n_heads", int, 4, "heads"),
    ("e_layers", int, 3, "encoder layers"),
    ("dropout", float, 0.2, "dropout"),
    ("baseline", STORE_TRUE, False, "add the input's per-series mean to the forecast"),
    ("num_workers", int, 0, "accepted for compatibility (batches are built in-process)"),
    ("batch_size", int, 32, "batch size"),
    ("train_epochs", int, 20, "epochs at most"),
    ("patience", int, 3, "early-stopping patience"),
    ("learning_rate", float, 1e-4, "initial learning rate"),
    ("lradj", str, "type1", "learning-rate schedule: type1, type2 or fixed"),
    ("itr", int, 1, "repeated runs"),
    ("save_pred", STORE_TRUE, False, "accepted for compatibility"),
    ("use_gpu", BOOL_VALUE, False, "accepted for compatibility (Keras picks its devices itself)"),
    ("gpu", int, 0, "accepted for compatibility"),
    ("use_multi_gpu", STORE_TRUE, False, "accepted for compatibility"),
    ("devices", str, "0,1,2,3", "accepted for compatibility"),
]
ORIGINAL_DEFAULTS = {name: default for name, _, default, _ in ORIGINAL_ARGUMENTS}
