"""The original Crossformer pipeline in Keras, on top of the converter: data windows and the scaler (data,
batches), the training recipe (training), run folders and `train` (runs), metrics and `evaluate`
(evaluation), and `forecast` with its plot (forecast). Plain Python functions with typed arguments; the
command line (package crossformer) only parses and prints.

    from forecasting import TrainingOptions, train, evaluate, forecast
"""
from .evaluation import evaluate
from .forecast import Forecast, forecast
from .runs import TrainingOptions, train
from .sources import load_run

__all__ = ["Forecast", "TrainingOptions", "evaluate", "forecast", "load_run", "train"]
