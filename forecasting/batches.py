"""Windows fed to Keras in batches, as the original's DataLoader feeds them (batch 32, last batch kept,
train and validation reshuffled every epoch, test in order)."""
import math

import keras
import numpy as np

from converter.errors import ConfigError
from converter.validation import require_int


class WindowBatches(keras.utils.PyDataset):
    """(x, y) batches of a SeriesSplit's windows; len() is the exact number of batches (the last one partial).

    A shuffled order is a function of (seed, epoch) alone, not of how many reshuffles came before: training
    pins the epoch (set_epoch) before each epoch's first batch, so a resumed run reads exactly the order an
    uninterrupted one reads, however often Keras calls on_epoch_end (fit() calls it once at the start, too)."""

    def __init__(self, split, batch_size=32, shuffle=False, seed=0, dtype="float32"):
        super().__init__()
        require_int(batch_size, "batch_size", 1)
        if len(split) < 1:
            raise ConfigError(f"no windows: {len(split.values)} rows hold no in_len {split.in_len} + out_len "
                             f"{split.out_len} window")
        self.split, self.batch_size, self.shuffle, self.dtype = split, batch_size, shuffle, dtype
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        """Use epoch ``epoch``'s order (0-based): a permutation drawn from default_rng((*seed, epoch)), where
        ``seed`` is an int or a tuple of ints (one stream per split)."""
        self.epoch = epoch
        self.order = np.arange(len(self.split))
        if self.shuffle:
            np.random.default_rng((*np.ravel(self.seed).tolist(), epoch)).shuffle(self.order)

    def __len__(self):
        return math.ceil(len(self.split) / self.batch_size)

    def __getitem__(self, index):
        x, y = self.split.windows_at(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return x.astype(self.dtype), y.astype(self.dtype)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)  # a new order each epoch, as DataLoader(shuffle=True)


def make_batches(split, batch_size=32, shuffle=False, seed=0, dtype="float32"):
    """WindowBatches of a SeriesSplit (see the class)."""
    return WindowBatches(split, batch_size, shuffle, seed, dtype)
