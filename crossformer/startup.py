"""The process environment the commands run in: backend settings, and TensorFlow's start-up chatter kept
off the user's terminal."""
import os
import re
import sys
import threading

# TensorFlow's C++ start-up chatter (absl INFO lines before logging is initialised): not for users' eyes.
ABSL_PREFIX = r"\d{4} \S+\s+\d+ \S+:\d+\] "  # "0000 00:00:1795541527.147683    3978 port.cc:153] "
STARTUP_NOISE = re.compile(rf"^(WARNING: All log messages before absl::InitializeLog|[IW]{ABSL_PREFIX}|"
                           rf"To enable the following instructions:|E{ABSL_PREFIX}.*(cuInit|cuda|cudnn|cublas|cufft)|"
                           r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU)",
                           re.IGNORECASE)


class StartupNoiseFilter:
    """Route fd 2 through a pipe whose reader drops TensorFlow's C++ start-up chatter (absl lines written
    before logging is initialised, which no environment variable silences) and passes everything else on.
    Python's own stderr (our messages, warnings) bypasses the pipe, so its order and immediacy are kept."""

    def __enter__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("JAX_ENABLE_X64", "1")  # --dtype float64 under KERAS_BACKEND=jax; no effect elsewhere
        sys.stderr.flush()
        self.saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self.python_stderr, sys.stderr = sys.stderr, os.fdopen(os.dup(self.saved), "w", buffering=1)
        self.pump = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self.pump.start()
        return self

    def _pump(self, read_fd):
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in pipe:
                if not STARTUP_NOISE.match(raw.decode("utf-8", "replace")):
                    os.write(self.saved, raw)

    def __exit__(self, *exc):
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = self.python_stderr
        os.dup2(self.saved, 2)  # drops the pipe's last write end: the pump reads to EOF and stops
        self.pump.join(timeout=5)
        os.close(self.saved)
        return False


def configured_backend():
    """The Keras backend this process will get, read as Keras reads it (KERAS_BACKEND, else KERAS_HOME's or
    ~/.keras's keras.json, else tensorflow) without importing Keras: a command can refuse a backend before paying
    for its start-up."""
    import json

    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(os.path.expanduser(home), "keras.json")) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"
