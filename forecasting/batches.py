"""Windows fed to Keras in batches, as the original's DataLoader feeds them (batch 32, last batch kept,
train and validation reshuffled every epoch, test in order)."""
import math

import keras
import numpy as np

from converter.errors import ConfigError


class WindowBatches(keras.utils.PyDataset):
    """(x, y) batches of a SeriesSplit's windows; len() is the exact number of batches (the last one partial)."""

    def __init__(self, split, batch_size=32, shuffle=False, seed=0, dtype="float32"):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"the batch size must be >= 1, got {batch_size}")
        if len(split) < 1:
            raise ConfigError(f"no windows: {len(split.values)} rows hold no in_len {split.in_len} + out_len "
                              f"{split.out_len} window")
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


def make_batches(split, batch_size=32, shuffle=False, seed=0, dtype="float32"):
    """WindowBatches of a SeriesSplit (see the class)."""
    return WindowBatches(split, batch_size, shuffle, seed, dtype)
