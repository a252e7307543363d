"""The training data's scaler, which travels with a model: the original's StandardScaler.

Mean and population standard deviation (ddof=0, no epsilon) of the training rows, per variable; normalise
before the model, denormalise its forecasts (docs/pipeline.md#data-splits-scaler-windows). NumPy only.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ScaleStatistic:
    """float64 ``mean`` and ``std`` [D] of the training rows."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows):
        """The statistic of training rows [N, D], as StandardScaler.fit computes it."""
        rows = np.asarray(rows, np.float64)
        return cls(rows.mean(0), rows.std(0))

    @classmethod
    def from_dict(cls, statistic, data_dim=None):
        """From {"mean": [D], "std": [D]} (lists or arrays); ValueError when the shapes are not [D]."""
        arrays = {}
        for key in ("mean", "std"):
            value = np.asarray(statistic[key], dtype=np.float64)
            expected = (data_dim,) if data_dim is not None else (len(np.atleast_1d(statistic["mean"])),)
            if value.shape != expected:
                raise ValueError(f"scale_statistic {key} has shape {value.shape}, expected {expected} for data_dim")
            arrays[key] = value
        return cls(arrays["mean"], arrays["std"])

    def normalize(self, values):
        """(values - mean) / std over the last (variable) axis: StandardScaler.transform."""
        return (np.asarray(values, np.float64) - self.mean) / self.std

    def denormalize(self, values):
        """values * std + mean: back to the data's scale (StandardScaler.inverse_transform)."""
        return np.asarray(values, np.float64) * self.std + self.mean

    def as_dict(self):
        """{"mean": array copy, "std": array copy}."""
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    def as_lists(self):
        """{"mean": [...], "std": [...]}: JSON-ready; Python floats round-trip float64 exactly."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
