"""Training, evaluation and forecasting with the Keras Crossformer, as the original pipeline does them.

The original's semantics (spec 3.3-3.5, cross_exp/exp_crossformer.py): Adam (here keras_model.TorchAdam,
PyTorch's update), MSE on normalised data, batch 32, train/val shuffled each epoch and test not, no dropped
last batch; after each epoch the validation and test losses (unweighted means of per-batch MSE), early
stopping on the validation loss (patience 3; the checkpoint is saved when the loss is not worse than the
best, i.e. `score < best` counts up, a tie saves), then the learning-rate schedule (type1 halves after
epochs 2, 4, 6, 8, 10; type2 after 5, 10, 15, 20, 25; anything else keeps it); finally the best weights are
restored and the test metrics computed per batch and weighted by batch size.
"""
import math
import time
from dataclasses import dataclass

import numpy as np

from .data import load_split
from .errors import ConfigError

METRIC_NAMES = ("mae", "mse", "rmse", "mape", "mspe")
LR_SCHEDULES = {"type1": (2, 4, 6, 8, 10), "type2": (5, 10, 15, 20, 25)}


def _keras():
    import keras

    return keras


def make_batches(split, batch_size=32, shuffle=False, seed=0, dtype="float32"):
    """A keras.utils.PyDataset of (x, y) windows whose len() is the exact number of batches (last one partial)."""
    keras = _keras()
    if batch_size < 1:
        raise ConfigError(f"the batch size must be >= 1, got {batch_size}")
    if len(split) < 1:
        raise ConfigError(f"no windows: {len(split.values)} rows hold no in_len {split.in_len} + out_len "
                          f"{split.out_len} window")

    class WindowBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.split, self.batch_size, self.shuffle, self.dtype = split, batch_size, shuffle, dtype
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(split))
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self):
            return math.ceil(len(self.split) / self.batch_size)

        def __getitem__(self, index):
            x, y = self.split.windows_at(self.order[index * self.batch_size:(index + 1) * self.batch_size])
            return x.astype(self.dtype), y.astype(self.dtype)

        def on_epoch_end(self):
            if self.shuffle:  # a new order each epoch, as DataLoader(shuffle=True)
                self.rng.shuffle(self.order)

    return WindowBatches()


# ---------------------------------------------------------------------------------------------- metrics
def batch_metrics(pred, true):
    """MAE, MSE, RMSE, MAPE, MSPE of one batch (utils/metrics.py: plain means over all elements)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    error = pred - true
    mse = np.mean(error ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = error / true
    return np.array([np.mean(np.abs(error)), mse, np.sqrt(mse), np.mean(np.abs(relative)), np.mean(relative ** 2)])


def weighted_metrics(per_batch, sizes):
    """The original test(): each batch's metrics times its size, summed, over the number of windows. For MAE,
    MSE, MAPE and MSPE that is the global mean; RMSE stays the size-weighted mean of per-batch RMSEs."""
    totals = sum(metrics * size for metrics, size in zip(per_batch, sizes))
    return dict(zip(METRIC_NAMES, (float(v) for v in totals / sum(sizes))))


def predict_batches(model, batches):
    """[(prediction, truth)] per batch, in order, in inference mode (graph-compiled predict_on_batch)."""
    return [(np.asarray(model.predict_on_batch(x)), y) for x, y in (batches[i] for i in range(len(batches)))]


def evaluate_model(model, split, batch_size=32, inverse=None):
    """Test metrics of a Keras Crossformer on a SeriesSplit, as the original's test()/eval() computes them.

    ``inverse`` (a Scaler) maps predictions and truths back to the data's scale first (--inverse)."""
    per_batch, sizes = [], []
    for pred, true in predict_batches(model, make_batches(split, batch_size, dtype=model.compute_dtype)):
        if inverse is not None:
            pred, true = inverse.inverse_transform(pred), inverse.inverse_transform(true)
        per_batch.append(batch_metrics(pred, true))
        sizes.append(len(pred))
    return weighted_metrics(per_batch, sizes), sum(sizes)


def mean_batch_loss(model, batches):
    """vali(): the unweighted mean over batches of each batch's MSE."""
    return float(np.mean([np.mean((pred.astype(np.float64) - true) ** 2) for pred, true in
                          predict_batches(model, batches)]))


# ---------------------------------------------------------------------------------------------- training
def learning_rate_for(epoch, learning_rate, lradj):
    """The rate adjust_learning_rate sets after 1-based ``epoch``, or None when it leaves it alone."""
    halvings = LR_SCHEDULES.get(lradj, ())
    return learning_rate * 0.5 ** (halvings.index(epoch) + 1) if epoch in halvings else None


class OriginalEarlyStopping:
    """utils/tools.py's EarlyStopping (delta 0): score = -vali_loss; a score below the best counts towards
    patience, anything else (a tie included) is a new best that resets the count and saves the checkpoint."""

    def __init__(self, patience):
        self.patience, self.best, self.counter = patience, None, 0

    def step(self, vali_loss):
        """'best' (save now), 'worse' (counting) or 'stop' (patience used up)."""
        score = -vali_loss
        if self.best is not None and score < self.best:
            self.counter += 1
            return "stop" if self.counter >= self.patience else "worse"
        self.best, self.counter = score, 0
        return "best"


def original_epoch_callback(train_steps, val_batches, test_batches, patience, learning_rate, lradj, on_best,
                            log=print):
    """One callback doing, after each epoch, what the original's loop does (validation and test loss, early
    stopping with its tie rule, then the learning-rate schedule). on_best(epoch, weights) keeps the best."""
    keras = _keras()

    class OriginalEpochEnd(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stopping = OriginalEarlyStopping(patience)
            self.history = []
            self.started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            vali_loss = mean_batch_loss(self.model, val_batches)
            val_batches.on_epoch_end()  # not fit()'s dataset, so reshuffled here, as the original's val loader is
            test_loss = mean_batch_loss(self.model, test_batches)
            train_loss = float((logs or {}).get("loss", float("nan")))
            self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "vali_loss": vali_loss,
                                 "test_loss": test_loss, "seconds": time.perf_counter() - self.started})
            log(f"Epoch: {epoch + 1}, Steps: {train_steps} | Train Loss: "
                f"{train_loss:.7f} Vali Loss: {vali_loss:.7f} Test Loss: {test_loss:.7f}")
            verdict = self.stopping.step(vali_loss)
            if verdict == "best":
                on_best(epoch + 1, self.model.get_weights())
            else:
                log(f"EarlyStopping counter: {self.stopping.counter} out of {patience}")
                if verdict == "stop":
                    log("Early stopping")
                    self.model.stop_training = True
                    return
            new_rate = learning_rate_for(epoch + 1, learning_rate, lradj)
            if new_rate is not None:
                self.model.optimizer.learning_rate.assign(new_rate)
                log(f"Updating learning rate to {new_rate}")

    return OriginalEpochEnd()


@dataclass
class TrainResult:
    model: object
    metrics: dict
    windows: dict
    history: list
    best_epoch: int
    seconds: float


def train(model, csv_path, data_split, batch_size=32, epochs=20, patience=3, learning_rate=1e-4, lradj="type1",
          seed=0, verbose=1, log=print, jit_compile=False):
    """Train a freshly built keras_model.Crossformer on a CSV the original's way; returns a TrainResult with
    the best weights restored and the test metrics. The model's scale_statistic is set from the training rows."""
    from keras_model.losses import MeanSquaredError
    from keras_model.optimizers import TorchAdam

    keras = _keras()
    config = model.crossformer_config
    splits = {}
    for flag in ("train", "val", "test"):
        splits[flag], scaler = load_split(csv_path, flag, config["in_len"], config["out_len"], data_split)
    windows = {flag: len(split) for flag, split in splits.items()}
    for flag, count in windows.items():
        log(f"{flag} {count}")
    train_batches = make_batches(splits["train"], batch_size, shuffle=True, seed=seed, dtype=model.compute_dtype)
    val_batches = make_batches(splits["val"], batch_size, shuffle=True, seed=seed + 1, dtype=model.compute_dtype)
    test_batches = make_batches(splits["test"], batch_size, dtype=model.compute_dtype)
    model.compile(optimizer=TorchAdam(learning_rate=learning_rate),
                  loss=MeanSquaredError(dtype=model.compute_dtype), jit_compile=jit_compile)
    best = {}
    callback = original_epoch_callback(len(train_batches), val_batches, test_batches, patience, learning_rate, lradj,
                                       lambda epoch, weights: best.update(epoch=epoch, weights=weights), log)
    started = time.perf_counter()
    # The progress bar first, so each epoch's bar is finished before the original-style epoch line prints.
    progress = [keras.callbacks.ProgbarLogger()] if verbose else []
    model.fit(train_batches, epochs=epochs, verbose=verbose, callbacks=progress + [callback])
    model.set_weights(best["weights"])
    model._scale_statistic = {"mean": scaler.mean.copy(), "std": scaler.std.copy()}
    # Measured on the model as saved (uncompiled), so `crossformer evaluate` of the run folder runs the same
    # program; on JAX the compiled model predicts op by op (jit_compile off), the saved one through XLA.
    metrics, _ = evaluate_model(inference_copy(model), splits["test"], batch_size)
    return TrainResult(model, metrics, windows, callback.history, best["epoch"], time.perf_counter() - started)


def inference_copy(model):
    """The trained model without its optimizer: what a run folder keeps (a third of the size; no Adam state)."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def setting_name(args):
    """The original's run name: Crossformer_{data}_il{in}_ol{out}_sl{seg}_win{w}_fa{c}_dm{dm}_nh{H}_el{N}_itr{i}."""
    return (f"Crossformer_{args['data']}_il{args['in_len']}_ol{args['out_len']}_sl{args['seg_len']}_win"
            f"{args['win_size']}_fa{args['factor']}_dm{args['d_model']}_nh{args['n_heads']}_el{args['e_layers']}"
            f"_itr{args['itr_index']}")
