"""Training the Keras Crossformer as the original pipeline trains (docs/pipeline.md#training-recipe; the
original is cross_exp/exp_crossformer.py and utils/tools.py).

Adam (keras_model.TorchAdam, PyTorch's update), MSE on normalised data, batch 32, train/val shuffled each
epoch and test not, no dropped last batch; after each epoch the validation and test losses (unweighted means
of per-batch MSE), early stopping on the validation loss (patience 3; a tie counts as an improvement, as in
the original's code), then the learning-rate schedule; finally the best weights are restored and the test
metrics computed per batch and weighted by batch size.
"""
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from keras_model.losses import MeanSquaredError
from keras_model.optimizers import TorchAdam

from .batches import make_batches
from .distribution import padded_batches
from .distribution import stop as stop_distribution
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
    """Around each epoch, what the original's loop does: the epoch's batch order (pinned to the epoch, so a
    resumed run reads the same order), then after it the validation and test loss, early stopping with its
    tie rule (the best epoch's weights kept), and the learning-rate schedule."""

    def __init__(self, train_batches, val_batches, test_batches, patience, learning_rate, lradj, log=print,
                 padded_rows=None):
        super().__init__()
        self.train_batches, self.val_batches, self.test_batches = train_batches, val_batches, test_batches
        self.padded_rows = padded_rows  # every training batch's size when they are padded (data-parallel)
        self.step_losses, self.tracked = [], (0.0, 0)
        self.learning_rate, self.lradj, self.log = learning_rate, lradj, log
        self.stopping = OriginalEarlyStopping(patience)
        self.history, self.best_epoch, self.best_weights = [], 0, None
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.train_batches.set_epoch(epoch)
        self.started = time.perf_counter()
        self.step_losses, self.tracked = [], (0.0, 0)

    def on_train_batch_end(self, batch, logs=None):
        # Keras logs the running mean of the step losses, each weighted by its batch's row count: the step's
        # own loss is the difference of the running totals (exact to rounding; in float64 to ~1e-16 relative).
        mean, (total, count) = float((logs or {}).get("loss", float("nan"))), self.tracked
        rows = self.tracker_rows(batch)
        self.tracked = (mean * (count + rows), count + rows)
        self.step_losses.append((self.tracked[0] - total) / rows)

    def tracker_rows(self, batch):
        """The rows Keras weighs step ``batch``'s loss by: its batch's (a padded batch's whole size, padding
        included, under data-parallel training)."""
        return self.padded_rows or min(self.train_batches.batch_size,
                                       len(self.train_batches.split) - batch * self.train_batches.batch_size)

    def train_loss(self, logs):
        """The epoch's training loss as the single-device run logs it: the step losses weighted by their real
        row counts (under data-parallel training Keras's own mean weighs the padded batch by its padded size)."""
        if not self.padded_rows:
            return float((logs or {}).get("loss", float("nan")))
        size, total = self.train_batches.batch_size, len(self.train_batches.split)
        rows = [min(size, total - step * size) for step in range(len(self.step_losses))]
        return float(np.dot(self.step_losses, rows) / sum(rows))

    def on_epoch_end(self, epoch, logs=None):
        self.val_batches.set_epoch(epoch)  # not fit()'s dataset: a new order each epoch, as the original's val loader
        vali_loss = mean_batch_loss(self.model, self.val_batches)
        test_loss = mean_batch_loss(self.model, self.test_batches)
        train_loss = self.train_loss(logs)
        self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "vali_loss": vali_loss,
                             "test_loss": test_loss, "seconds": time.perf_counter() - self.started,
                             "step_losses": list(self.step_losses)})
        self.log(f"Epoch: {epoch + 1}, Steps: {len(self.train_batches)} | Train Loss: "
                 f"{train_loss:.7f} Vali Loss: {vali_loss:.7f} Test Loss: {test_loss:.7f}")
        verdict = self.stopping.step(vali_loss)
        if verdict == "best":
            self.best_epoch, self.best_weights = epoch + 1, self.model.get_weights()
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

    def capture(self, state):
        """Fill a TrainingState with this loop's state (history, early stopping, best epoch and weights)."""
        state.history = [dict(entry) for entry in self.history]
        state.early_stopping = {"best": self.stopping.best, "counter": self.stopping.counter}
        state.best_epoch, state.best_weights = self.best_epoch, list(self.best_weights)
        return state

    def restore(self, state):
        self.history = [dict(entry) for entry in state.history]
        self.stopping.best, self.stopping.counter = state.early_stopping["best"], state.early_stopping["counter"]
        self.best_epoch, self.best_weights = state.best_epoch, list(state.best_weights)


@dataclass
class TrainResult:
    model: object
    metrics: dict
    windows: dict
    history: list
    best_epoch: int
    seconds: float
    resumed_after: list = field(default_factory=list)


def fit_original(model, splits, batch_size=32, epochs=20, patience=3, learning_rate=1e-4, lradj="type1", seed=0,
                 verbose=1, log=print, jit_compile=False, checkpoint=None, plan=None):
    """Train a freshly built keras_model.Crossformer the original's way on ``splits`` ({"train", "val",
    "test"} SeriesSplits, as load_splits returns them); returns a TrainResult with the best weights restored
    and the test metrics.

    ``checkpoint`` (a resume.Checkpoint) writes the resumable state after every epoch and, when it holds one,
    continues from it. ``plan`` (a distribution.DataParallelPlan, its distribution set before ``model`` was
    built) trains data-parallel: padded batches with sample weights, the loss their weighted mean."""
    train_batches = make_batches(splits["train"], batch_size, shuffle=True, seed=(seed, 0), dtype=model.compute_dtype)
    val_batches = make_batches(splits["val"], batch_size, shuffle=True, seed=(seed, 1), dtype=model.compute_dtype)
    test_batches = make_batches(splits["test"], batch_size, dtype=model.compute_dtype)
    # Padding (weight 0) must not count in a padded batch's mean: sum(weight * loss) / sum(weight).
    reduction = "mean_with_sample_weight" if plan is not None else "sum_over_batch_size"
    model.compile(optimizer=TorchAdam(learning_rate=learning_rate),
                  loss=MeanSquaredError(dtype=model.compute_dtype, reduction=reduction), jit_compile=jit_compile)
    # Built here, not on the first step: variables created while tf.function traces the step make it trace the
    # whole step twice (measured on the resume tests' small configuration: first step 21 s -> 8 s).
    model.optimizer.build(model.trainable_variables)
    loop = OriginalEpochEnd(train_batches, val_batches, test_batches, patience, learning_rate, lradj, log,
                            padded_rows=plan.padded_batch(batch_size) if plan is not None else None)
    done, stopped, callbacks = 0, False, [loop]
    if checkpoint is not None:
        done, stopped = checkpoint.restore(model, loop)
        callbacks.append(checkpoint.callback(model, loop))
    started = time.perf_counter()
    if not stopped and done < epochs:
        # The progress bar first, so each epoch's bar is finished before the original-style epoch line prints.
        progress = [keras.callbacks.ProgbarLogger()] if verbose else []
        # shuffle=False: the windows are already shuffled per (seed, epoch); fit()'s own shuffle would also
        # permute the batches, drawing on Python's global `random`, which a resumed process cannot replay.
        feed = train_batches if plan is None else padded_batches(train_batches, plan)
        model.fit(feed, epochs=epochs, initial_epoch=done, shuffle=False, verbose=verbose,
                  callbacks=progress + callbacks)
    seconds = time.perf_counter() - started + (checkpoint.seconds_before if checkpoint is not None else 0.0)
    if plan is not None:
        stop_distribution()  # what follows (the copy that is saved, the test metrics) runs on one local device
    model.set_weights(loop.best_weights)
    # Measured on the model as saved (uncompiled), so `crossformer evaluate` of the run folder runs the same
    # program; on JAX the compiled model predicts op by op (jit_compile off), the saved one through XLA.
    metrics, _ = evaluate_model(inference_copy(model), splits["test"], batch_size)
    return TrainResult(model, metrics, {part: len(split) for part, split in splits.items()}, loop.history,
                       loop.best_epoch, seconds, checkpoint.resumed_after if checkpoint is not None else [])
def inference_copy(model):
    """The trained model without its optimizer: what a run folder keeps (a third of the size; no Adam state)."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
