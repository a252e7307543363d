"""One module per command, each with register(subparsers) and run(args) -> exit code."""
from . import convert, evaluate, export, export_torch, parity, predict, summary, train

COMMANDS = (convert, export_torch, parity, summary, export, train, evaluate, predict)  # in --help order
