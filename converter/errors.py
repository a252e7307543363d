"""Errors the converter reports to a user as one line (exit code 2 on the command line)."""


class CrossformerInputError(ValueError):
    """Bad input: the message is one line that names the problem."""


class CheckpointError(CrossformerInputError):
    """A checkpoint (folder, weights file, args.json, scale_statistic.pkl) that cannot be read safely."""


class ConfigError(CrossformerInputError):
    """A configuration that is missing, contradicts the tensors, or cannot run."""


class OutputError(CrossformerInputError):
    """An output location that cannot be written (exists without --force, unwritable, wrong suffix)."""


class DataError(CrossformerInputError):
    """A data file (CSV) that cannot be used."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) caught where there is something to say: the message is one line on what was kept."""
