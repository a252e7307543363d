"""Training the Keras Crossformer as the original pipeline trains (docs/pipeline.md#training-recipe; the
original is cross_exp/exp_crossformer.py and utils/tools.py).

Adam (keras_model.TorchAdam, PyTorch's update), MSE on normalised data, batch 32, train/val shuffled each
epoch and test not, no dropped last batch; after each epoch the validation and test losses (unweighted means
of per-batch MSE), early stopping on the validation loss (patience 3; a tie counts as an improvement, as in
the original's code), then the learning-rate schedule; finally the best weights are restored and the test
metrics computed per batch and weighted by batch size.
"""
import time
from dataclasses import dataclass

import keras

from keras_model.losses import MeanSquaredError
from keras_model.optimizers import TorchAdam
from keras_model.scaling import ScaleStatistic

from .batches import make_batches
from .data import load_split
from .evaluation import evaluate_model, mean_batch_loss

LR_SCHEDULES = {"type1": (2, 4, 6, 8, 10), "type2": (5, 10, 15, 20, 25)}  # epochs after which the rate halves


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


class OriginalEpochEnd(keras.callbacks.Callback):
    """After each epoch, what the original's loop does: validation and test loss, early stopping with its tie
    rule, then the learning-rate schedule. ``on_best(epoch, weights)`` keeps the best weights."""

    def __init__(self, train_steps, val_batches, test_batches, patience, learning_rate, lradj, on_best, log=print):
        super().__init__()
        self.train_steps, self.val_batches, self.test_batches = train_steps, val_batches, test_batches
        self.learning_rate, self.lradj, self.on_best, self.log = learning_rate, lradj, on_best, log
        self.stopping = OriginalEarlyStopping(patience)
        self.history = []
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        vali_loss = mean_batch_loss(self.model, self.val_batches)
        self.val_batches.on_epoch_end()  # not fit()'s dataset, so reshuffled here, as the original's val loader is
        test_loss = mean_batch_loss(self.model, self.test_batches)
        train_loss = float((logs or {}).get("loss", float("nan")))
        self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "vali_loss": vali_loss,
                             "test_loss": test_loss, "seconds": time.perf_counter() - self.started})
        self.log(f"Epoch: {epoch + 1}, Steps: {self.train_steps} | Train Loss: "
                 f"{train_loss:.7f} Vali Loss: {vali_loss:.7f} Test Loss: {test_loss:.7f}")
        verdict = self.stopping.step(vali_loss)
        if verdict == "best":
            self.on_best(epoch + 1, self.model.get_weights())
        else:
            self.log(f"EarlyStopping counter: {self.stopping.counter} out of {self.stopping.patience}")
            if verdict == "stop":
                self.log("Early stopping")
                self.model.stop_training = True
                return
        new_rate = learning_rate_for(epoch + 1, self.learning_rate, self.lradj)
        if new_rate is not None:
            self.model.optimizer.learning_rate.assign(new_rate)
            self.log(f"Updating learning rate to {new_rate}")


@dataclass
class TrainResult:
    model: object
    metrics: dict
    windows: dict
    history: list
    best_epoch: int
    seconds: float


def fit_original(model, csv_path, data_split, batch_size=32, epochs=20, patience=3, learning_rate=1e-4,
                 lradj="type1", seed=0, verbose=1, log=print, jit_compile=False):
    """Train a freshly built keras_model.Crossformer on a CSV the original's way; returns a TrainResult with
    the best weights restored and the test metrics. The model's scale_statistic is set from the training rows."""
    config = model.crossformer_config
    splits = {}
    for part in ("train", "val", "test"):
        splits[part], scaler = load_split(csv_path, part, config["in_len"], config["out_len"], data_split)
    windows = {part: len(split) for part, split in splits.items()}
    for part, count in windows.items():
        log(f"{part} {count}")
    train_batches = make_batches(splits["train"], batch_size, shuffle=True, seed=seed, dtype=model.compute_dtype)
    val_batches = make_batches(splits["val"], batch_size, shuffle=True, seed=seed + 1, dtype=model.compute_dtype)
    test_batches = make_batches(splits["test"], batch_size, dtype=model.compute_dtype)
    model.compile(optimizer=TorchAdam(learning_rate=learning_rate),
                  loss=MeanSquaredError(dtype=model.compute_dtype), jit_compile=jit_compile)
    best = {}
    callback = OriginalEpochEnd(len(train_batches), val_batches, test_batches, patience, learning_rate, lradj,
                                lambda epoch, weights: best.update(epoch=epoch, weights=weights), log)
    started = time.perf_counter()
    # The progress bar first, so each epoch's bar is finished before the original-style epoch line prints.
    progress = [keras.callbacks.ProgbarLogger()] if verbose else []
    model.fit(train_batches, epochs=epochs, verbose=verbose, callbacks=progress + [callback])
    model.set_weights(best["weights"])
    model.scale_statistic = ScaleStatistic(scaler.mean.copy(), scaler.std.copy())
    # Measured on the model as saved (uncompiled), so `crossformer evaluate` of the run folder runs the same
    # program; on JAX the compiled model predicts op by op (jit_compile off), the saved one through XLA.
    metrics, _ = evaluate_model(inference_copy(model), splits["test"], batch_size)
    return TrainResult(model, metrics, windows, callback.history, best["epoch"], time.perf_counter() - started)


def inference_copy(model):
    """The trained model without its optimizer: what a run folder keeps (a third of the size; no Adam state)."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
