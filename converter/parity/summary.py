"""Per-module parameter counts, torchinfo and Keras side by side (`crossformer summary`)."""
import numpy as np

from ..validation import require_int
from .capture import keras_layer_for, torch_modules
from .report import display_name


def trainable_count(layer):
    """Parameters as PyTorch counts them: trainable weights only (TSLib's pe is a buffer there, a non-trainable
    weight in Keras; for the original variant this equals count_params())."""
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def parameter_summary(torch_model, keras_model, max_depth=None):
    """Rows (path, class, torchinfo params, Keras params) for every module with parameters, and the totals
    (sum of numel, torchinfo total, Keras count_params)."""
    import torchinfo

    if max_depth is not None:
        require_int(max_depth, "depth", 1)
    config = torch_model.crossformer_config
    summary = torchinfo.summary(torch_model, input_size=(1, config["in_len"], config["data_dim"]), depth=100,
                                verbose=0, device="cpu")
    names = {id(module): name for name, module in torch_model.named_modules()}
    counted = {}
    for info in summary.summary_list:
        counted.setdefault(id(info.module), info.num_params)
    rows = []
    for name, module in torch_modules(torch_model).items():
        depth = name.count(".") + 1 if name else 0
        torchinfo_params = counted.get(id(module))
        if torchinfo_params is None and names.get(id(module)) == "":
            torchinfo_params = summary.total_params
        if not any(True for _ in module.parameters()) or (max_depth is not None and depth > max_depth):
            continue
        layer = keras_layer_for(keras_model, name)
        rows.append((display_name(name), type(module).__name__, torchinfo_params,
                     trainable_count(layer) if layer is not None else None))
    totals = (sum(p.numel() for p in torch_model.parameters()), summary.total_params, trainable_count(keras_model),
              keras_model.count_params())
    return rows, totals


def format_summary(rows, totals):
    table = [("module", "class", "torchinfo", "keras", "")]
    for name, kind, torch_count, keras_count in rows:
        same = torch_count == keras_count
        table.append((name, kind, f"{torch_count:,}" if torch_count is not None else "-",
                      f"{keras_count:,}" if keras_count is not None else "missing", "" if same else "DIFFERENT"))
    numel, torchinfo_total, keras_total, keras_stored = totals
    table.append(("total", "", f"{torchinfo_total:,}", f"{keras_total:,}",
                  "" if numel == torchinfo_total == keras_total else "DIFFERENT"))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = ["  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    buffers = keras_stored - keras_total
    lines.append(f"sum(p.numel()) = {numel:,}; torchinfo total_params = {torchinfo_total:,}; "
                 f"Keras count_params() = {keras_stored:,}" + (
                     f" ({buffers:,} of them TSLib's stored pe rows, a buffer in PyTorch)" if buffers else ""))
    return "\n".join(lines)
