"""The `crossformer` command line (also `python -m crossformer`): one module per command under commands/,
each thin: parse its arguments, call the library (converter, forecasting), print. main.py holds the exit
codes and the one-line error reporting; startup.py quiets TensorFlow's start-up chatter.

Nothing here is imported by the libraries below it.
"""
