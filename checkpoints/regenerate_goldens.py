"""Regenerate the regression-gate goldens from reference_torch. The only writer of checkpoints/*/.

    .venv/bin/python checkpoints/regenerate_goldens.py            # rewrites checkpoints/<case>/
    .venv/bin/python checkpoints/regenerate_goldens.py --out DIR  # writes elsewhere (the suite checks that
                                                                  # this reproduces the committed files)

Each case folder holds: config.json (model arguments, seed, batch), weights.safetensors (float32 state_dict),
inputs.npy (float64 seeded series) and expected_float32.npz / expected_float64.npz: every module's output in
one chained reference_torch forward pass, keyed "<module>|<call>|<output>", plus "__order__" (module names
in order of first completion). The tests never write here.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from converter.parity import capture_torch, display_name, flatten_arrays  # noqa: E402
from reference_torch.testing import perturbed_model  # noqa: E402

CASES = {
    # non-divisible lengths (input front-pad, 13-segment merge padded to 15), win_size 3
    "config_b": (dict(data_dim=3, in_len=50, out_len=13, seg_len=4, win_size=3, factor=3, d_model=16, d_ff=24,
                      n_heads=2, e_layers=2), 2),
    # d_model not divisible by n_heads, baseline on, three merging blocks
    "baseline_uneven_heads": (dict(data_dim=4, in_len=20, out_len=7, seg_len=3, win_size=2, factor=2, d_model=10,
                                   d_ff=12, n_heads=4, e_layers=3, baseline=True), 2),
    # one-step segments, no merging, a single head and router
    "seg1_win1": (dict(data_dim=2, in_len=6, out_len=3, seg_len=1, win_size=1, factor=1, d_model=8, d_ff=8,
                       n_heads=1, e_layers=2), 2),
    # the pre-December-2023 release's head-mixing attention (docs/model.md#the-legacy-mix-attention)
    "legacy_mix": (dict(data_dim=3, in_len=30, out_len=10, seg_len=4, win_size=2, factor=2, d_model=12, d_ff=12,
                        n_heads=3, e_layers=2, legacy_mix=True), 2),
    # Time-Series-Library's variant (docs/model.md#time-series-library-variant) with lengths that are not
    # multiples of its seg_len 12
    "tslib": (dict(data_dim=3, in_len=40, out_len=14, seg_len=12, win_size=2, factor=3, d_model=8, d_ff=8,
                   n_heads=2, e_layers=2, variant="tslib"), 2),
}
SEED = 0


def module_outputs(model, x):
    records, order = capture_torch(model, x)
    arrays = {"__order__": np.array([display_name(name) for name in order])}
    for name in order:
        for call, record in enumerate(records[name]):
            for index, array in enumerate(flatten_arrays(record.output)):
                arrays[f"{display_name(name)}|{call}|{index}"] = array
    return arrays


def write_case(folder, config, batch):
    folder.mkdir(parents=True, exist_ok=True)
    model = perturbed_model(config, SEED)
    x = np.random.default_rng(SEED).standard_normal((batch, config["in_len"], config["data_dim"]))
    (folder / "config.json").write_text(json.dumps({"config": config, "seed": SEED, "batch": batch,
                                                    "torch": torch.__version__}, indent=1) + "\n")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "weights.safetensors")
    np.save(folder / "inputs.npy", x)
    for dtype in ("float32", "float64"):
        np.savez_compressed(folder / f"expected_{dtype}.npz",
                            **module_outputs(model.to(getattr(torch, dtype)), x.astype(dtype)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints", help="where the case folders go")
    args = parser.parse_args(argv)
    for name, (config, batch) in CASES.items():
        write_case(args.out / name, config, batch)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
