"""Argument domains: the checks every library function runs on its numeric and choice arguments before any
work, so a Python caller gets the same ConfigError (one line naming the argument) as the command line.

Arguments are named as the command line spells them, with underscores (``--batch_size``): every command
accepts that spelling, and it is also the Python keyword and the args.json key.
"""
import math
import numbers
import re

from .errors import ConfigError


def flag(name):
    """How a message names an argument: its underscore flag (a name already starting with - is kept)."""
    return name if name.startswith("-") else f"--{name}"


def require_int(value, name, minimum=None, maximum=None):
    """``value`` as an int within [minimum, maximum]; ConfigError naming ``name`` otherwise (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{flag(name)} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag(name)} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{flag(name)} must be <= {maximum}, got {value}")
    return int(value)


def require_real(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float within the interval (open ends where asked); ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{flag(name)} must be a finite number, got {value!r}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ConfigError(f"{flag(name)} must be {' and '.join(part for part in (left, right) if part)}, got {value!r}")
    return float(value)


def require_choice(value, name, choices):
    """``value`` if it is one of ``choices``; ConfigError listing them otherwise."""
    if value not in choices:
        raise ConfigError(f"{flag(name)} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def require_bool(value, name):
    if not isinstance(value, bool):
        raise ConfigError(f"{flag(name)} must be true or false, got {value!r}")
    return value


def require_text(value, name):
    """A non-empty string (a path or a name)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{flag(name)} must be a non-empty text, got {value!r}")
    return value


# What the commands that read data do with missing values (forecasting.validation says how); here, in the
# lightest module, so the command line can offer the choices without importing the pipeline.
MISSING_POLICIES = ("error", "ffill", "drop-windows")
SEED_LIMIT = 2 ** 32  # keras.utils.set_random_seed seeds NumPy's legacy generator, which takes [0, 2**32)


def require_seed(value, name="seed", runs=1):
    """A seed that ``runs`` consecutive runs (seed, seed + 1, ...) can all use."""
    return require_int(value, name, 0, SEED_LIMIT - runs)


def check_parity_arguments(samples, batch, seed):
    """`crossformer parity`'s numbers: --samples and --batch >= 1, --seed a valid seed."""
    require_int(samples, "samples", 1)
    require_int(batch, "batch", 1)
    require_seed(seed)


def check_depth(depth):
    """`crossformer summary --depth`: 0 (every level) or a positive depth."""
    return require_int(depth, "depth", 0)


def require_data_parallel_backend(backend):
    """ConfigError unless ``backend`` can train data-parallel (`train --distribute data`); checked by the command
    line before Keras starts, and again by forecasting.distribution with the backend Keras started."""
    if backend != "jax":
        raise ConfigError(f"--distribute data needs the JAX backend (KERAS_BACKEND=jax), not {backend}: Keras's "
                          "distribution API runs on JAX only")


DISTRIBUTE_CHOICES = ("none", "data")
ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")  # HOST:PORT, HOST a name, IPv4 or [IPv6]


def check_process_options(distribute, coordinator=None, num_processes=None, process_id=None):
    """ConfigError for multi-process options that cannot work; checked before anything is imported or written."""
    if distribute not in DISTRIBUTE_CHOICES:
        raise ConfigError(f"--distribute must be one of {', '.join(DISTRIBUTE_CHOICES)}, not {distribute!r}")
    given = [name for name, value in (("--coordinator", coordinator), ("--num-processes", num_processes),
                                      ("--process-id", process_id)) if value is not None]
    if distribute != "data":
        if given:
            raise ConfigError(f"{given[0]} needs --distribute data")
        return
    if not given:
        return
    if len(given) < 3:
        missing = next(n for n in ("--coordinator", "--num-processes", "--process-id") if n not in given)
        raise ConfigError(f"a run over several processes needs --coordinator, --num-processes and --process-id "
                          f"({missing} is missing)")
    if not isinstance(coordinator, str) or not ADDRESS.match(coordinator):
        raise ConfigError(f"--coordinator must be HOST:PORT (process 0's address), not {coordinator!r}")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"--num-processes must be a whole number >= 1, not {num_processes!r}")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id must be in 0..{num_processes - 1}, not {process_id!r}")
